"""Intake: the one way a case comes into being, shared by every channel.

`check_takedown` validates and normalises, raising `InvalidRequest` with every field at fault;
`takedown_submit` then writes the requester, the case, its targets and the audit events in one
transaction, starts the clock (or waits for the web requester to confirm their address), and
routes the case: trusted requests are approved at once, the rest go to the review queue.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q

from rights import audit, clock, deadlines
from rights.errors import DomainError
from rights.models import (
    Audience,
    Channel,
    ContentItem,
    Outlet,
    OutletDomain,
    Requester,
    RightsContact,
    TakedownRequest,
    Target,
)
from rights.normalise import (
    NormaliseError,
    article_key,
    base_host,
    domain_within,
    has_forbidden_characters,
    host_of,
    normalise_domain,
    normalise_url,
    spellings,
)
from rights.services.enforcement import case_kick, case_schedule_expiry
from rights.services.notifications import notify
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS, STATEMENTS_VERSION, Basis
from rights.workflow import CLOSED_CASE_STATES, CaseState, TargetState, transition

MAX_NAME = 200
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read out over a phone
PUBLIC_PATH = re.compile(r"^/a/(?P<slug>[-a-zA-Z0-9_]+)/?$")


class InvalidRequest(DomainError):
    """One or more fields are at fault; `errors` maps each to a message for a person."""

    code = "invalid_request"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)

    def as_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {"code": self.code, "message": str(self), "errors": self.errors}


@dataclass(frozen=True)
class CleanRequest:
    channel: str
    email: str
    name: str
    organisation: str
    basis: str
    explanation: str
    statements: tuple[str, ...]
    urls: tuple[str, ...]
    whole_domain: str


@dataclass
class IntakeResult:
    case: TakedownRequest
    created: bool
    # (normalised URL, reference of the requester's open case that already holds it)
    merged: list[tuple[str, str]] = field(default_factory=list)


# --- Checks ------------------------------------------------------------------------------


def _clean_text(
    value: object,
    *,
    name: str,
    limit: int,
    required: bool,
    errors: dict[str, str],
    multiline: bool = False,
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors[name] = "contains characters that are not valid Unicode text"
        return ""
    text = unicodedata.normalize("NFC", value.strip())
    if has_forbidden_characters(text) or (not multiline and any(c in text for c in "\n\r\t")):
        errors[name] = "contains control or invisible formatting characters"
    elif required and not text:
        errors[name] = "is required"
    elif len(text) > limit:
        errors[name] = f"is too long: {len(text):,} characters, at most {limit:,} are accepted"
    return text


def _clean_email(value: object, errors: dict[str, str]) -> str:
    text = _clean_text(value, name="email", limit=254, required=True, errors=errors)
    if "email" in errors:
        return ""
    local, _, domain = text.rpartition("@")
    try:
        validate_email(text)
        text = f"{local}@{normalise_domain(domain, public_suffix_ok=True)}".lower()
    except (ValidationError, NormaliseError):
        errors["email"] = "is not a valid email address"
    return text


def _is_list_like(value: object) -> TypeGuard[Iterable[Any]]:
    """A list of items. Strings, bytes and mappings are iterable too, but iterating them yields
    characters, integers or keys, which would pass for a list of something else."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | Mapping)


def _clean_urls(value: object, errors: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not _is_list_like(value):
        errors["urls"] = "must be a list of URLs"
        return ()
    raw = list(value)
    limit = settings.TAKEDOWN_MAX_URLS
    if len(raw) > limit:
        errors["urls"] = (
            f"names {len(raw):,} URLs; at most {limit} are accepted in one request "
            "(ask for a whole domain instead, or send several requests)"
        )
        return ()
    seen: dict[str, None] = {}
    for index, item in enumerate(raw):
        try:
            seen.setdefault(normalise_url(item), None)
        except NormaliseError as exc:
            errors[f"urls[{index}]"] = f"{exc}"
    return tuple(seen)


def check_takedown(
    *,
    channel: str,
    email: object,
    name: object,
    basis: object,
    urls: object = (),
    whole_domain: object = "",
    explanation: object = "",
    statements: object = (),
    organisation: object = "",
) -> CleanRequest:
    """Validate and normalise a request; raise `InvalidRequest` naming every field at fault."""
    errors: dict[str, str] = {}
    if channel not in Channel.values:
        errors["channel"] = f"must be one of {', '.join(Channel.values)}"
    clean_email = _clean_email(email, errors)
    clean_name = _clean_text(name, name="name", limit=MAX_NAME, required=True, errors=errors)
    clean_org = _clean_text(
        organisation, name="organisation", limit=MAX_NAME, required=False, errors=errors
    )
    clean_explanation = _clean_text(
        explanation,
        name="explanation",
        limit=settings.TAKEDOWN_MAX_EXPLANATION,
        required=False,
        errors=errors,
        multiline=True,
    )
    clean_basis = basis if isinstance(basis, str) else ""
    if clean_basis not in Basis.values:
        errors["basis"] = f"must be one of {', '.join(Basis.values)}"
    clean_urls = _clean_urls(urls, errors)
    clean_domain = ""
    if whole_domain:
        try:
            clean_domain = normalise_domain(whole_domain)  # type: ignore[arg-type]
        except NormaliseError as exc:
            errors["whole_domain"] = str(exc)
    if (
        not clean_urls
        and not clean_domain
        and not any(
            key == "urls" or key.startswith("urls[") or key == "whole_domain" for key in errors
        )
    ):
        errors["urls"] = "name at least one URL (or a whole domain)"
    sworn: tuple[str, ...] = ()
    if not _is_list_like(statements):
        errors["statements"] = "must be a list of statement keys"
    else:
        # Read once: a generator would be empty by the second pass, hiding unknown statements.
        given = list(statements)
        sworn = tuple(dict.fromkeys(s for s in given if isinstance(s, str)))
        unknown = [s for s in given if not isinstance(s, str) or s not in STATEMENTS]
        missing = [s for s in REQUIRED_STATEMENTS.get(clean_basis, ()) if s not in sworn]
        if unknown:
            errors["statements"] = f"unknown statements: {', '.join(map(str, unknown))}"
        elif missing and "basis" not in errors:
            errors["statements"] = (
                f"a {clean_basis} request needs these statements: {', '.join(missing)}"
            )
    if errors:
        raise InvalidRequest(errors)
    return CleanRequest(
        channel=channel,
        email=clean_email,
        name=clean_name,
        organisation=clean_org,
        basis=clean_basis,
        explanation=clean_explanation,
        statements=sworn,
        urls=clean_urls,
        whole_domain=clean_domain,
    )


# --- Resolution and trust ----------------------------------------------------------------


def _public_slug(url: str) -> str | None:
    """The slug when `url` names our own copy (`/a/<slug>/`) under any everyday spelling of our
    host: either scheme, with or without `www.`, the trailing slash or an AMP ending."""
    if base_host(host_of(url)) != base_host(host_of(settings.PUBLIC_BASE_URL)):
        return None
    match = PUBLIC_PATH.match(urlsplit("//" + article_key(url)).path)
    return match["slug"] if match else None


def resolve_urls(urls: Sequence[str]) -> dict[str, ContentItem | None]:
    """Map each normalised URL to the item it names, whatever everyday spelling it uses: our
    public URL, or the primary source. Two queries for any number of URLs.

    Should the catalogue hold the same article twice (two spellings of one source), the first
    URL maps to one copy and each other copy is added under its own source URL, so that no copy
    the request names is left up.
    """
    slugs = {url: slug for url in urls if (slug := _public_slug(url)) is not None}
    by_slug = {i.slug: i for i in ContentItem.objects.filter(slug__in=slugs.values())}
    sources = [url for url in urls if url not in slugs]
    candidates = {spelling for url in sources for spelling in spellings(url)}
    by_key: dict[str, list[ContentItem]] = {}
    for item in ContentItem.objects.filter(source_url__in=candidates).order_by("pk"):
        by_key.setdefault(article_key(item.source_url), []).append(item)
    resolved: dict[str, ContentItem | None] = {}
    extra: dict[str, ContentItem] = {}
    for url in urls:
        if url in slugs:
            resolved[url] = by_slug.get(slugs[url])
            continue
        copies = by_key.get(article_key(url), [])
        resolved[url] = copies[0] if copies else None
        for copy in copies[1:]:
            extra.setdefault(copy.source_url, copy)
    for url, item in extra.items():
        resolved.setdefault(url, item)
    return resolved


def items_of_domain(domain: str) -> list[ContentItem]:
    return list(
        ContentItem.objects.filter(
            Q(source_domain=domain) | Q(source_domain__endswith="." + domain)
        ).order_by("pk")
    )


@dataclass(frozen=True)
class Trust:
    """Why a request is trusted: the rule, and what matched, for the audit trail (identifiers
    and domains only: a rights contact is named by its id, never its address)."""

    rule: str
    outlets: tuple[str, ...]
    domains: tuple[str, ...] = ()
    contacts: tuple[int, ...] = ()

    def as_data(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "outlets": list(self.outlets),
            "domains": list(self.domains),
            "contacts": list(self.contacts),
        }


def decide_trust(
    *,
    items: Sequence[ContentItem],
    outlet: Outlet | None,
    email: str,
    email_verified: bool,
) -> Trust | None:
    """Whether this request is trusted (DESIGN.md "Trust"), and why; None sends it to review.

    Trust follows ownership: every item must belong to an outlet (its `outlet`) and come from
    one of that outlet's verified domains, and the requester must speak for that outlet:
    - `partner_verified_domain`: the request came with that outlet's own partner key;
    - `rights_contact`: a verified address the outlet declared as a rights contact;
    - `staff_mail_domain`: a verified address at a domain of the outlet's that it attests gives
      mailboxes to its own staff only. A portal that also hands out free mail never attests
      that, so its mailbox holders speak for nobody.
    One item the requester cannot vouch for sends the whole case to review. Domains match
    exactly or as subdomains, never as a mere suffix, and no public suffix is ever verified.
    """
    if not items or any(item.outlet_id is None for item in items):
        return None  # nothing, or an item of nobody's
    outlet_ids = {item.outlet_id for item in items if item.outlet_id is not None}
    verified: dict[int, list[OutletDomain]] = {}
    for domain in OutletDomain.objects.filter(
        outlet_id__in=outlet_ids, verified_at__isnull=False
    ).select_related("outlet"):
        verified.setdefault(domain.outlet_id, []).append(domain)

    def owning_domain(item: ContentItem) -> OutletDomain | None:
        return next(
            (
                d
                for d in verified.get(item.outlet_id or 0, [])
                if domain_within(item.source_domain, d.domain)
            ),
            None,
        )

    owned = {item.pk: owning_domain(item) for item in items}
    if any(domain is None for domain in owned.values()):
        return None
    slugs = tuple(sorted({d.outlet.slug for d in owned.values() if d is not None}))
    if outlet is not None and outlet.is_partner and outlet_ids == {outlet.pk}:
        return Trust(
            rule="partner_verified_domain",
            outlets=slugs,
            domains=tuple(sorted({d.domain for d in owned.values() if d is not None})),
        )
    if not email_verified or not email:
        return None
    email_domain = email.rsplit("@", 1)[-1]
    contacts = dict(
        RightsContact.objects.filter(outlet_id__in=outlet_ids, email=email).values_list(
            "outlet_id", "pk"
        )
    )
    if outlet_ids <= contacts.keys():
        return Trust(
            rule="rights_contact",
            outlets=slugs,
            contacts=tuple(sorted(contacts[o] for o in outlet_ids)),
        )
    staff_domains: dict[int, str] = {}
    for outlet_id in outlet_ids:
        match = next(
            (
                d.domain
                for d in verified.get(outlet_id, [])
                if d.staff_mail_only and domain_within(email_domain, d.domain)
            ),
            None,
        )
        if match is None:
            return None
        staff_domains[outlet_id] = match
    return Trust(
        rule="staff_mail_domain", outlets=slugs, domains=tuple(sorted(set(staff_domains.values())))
    )


# --- The service -------------------------------------------------------------------------


def _new_reference() -> str:
    return "TD-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(7))


def _channel_actor(channel: str, requester: Requester, outlet: Outlet | None, actor: str) -> str:
    if actor:
        return actor
    if channel == Channel.API and outlet is not None:
        return f"partner:{outlet.slug}"
    return requester.actor


def _requester_for(clean: CleanRequest, *, email_verified: bool, now: datetime) -> Requester:
    requester, _ = Requester.objects.get_or_create(
        email=clean.email, defaults={"name": clean.name, "organisation": clean.organisation}
    )
    # Serialises intake per requester, so two identical submissions cannot both open a case.
    requester = Requester.objects.select_for_update().get(pk=requester.pk)
    if requester.suspended_at is not None:
        raise DomainError(
            "requests from this address are suspended after repeated unfounded requests; "
            "write to the takedown mailbox if you believe this is wrong",
            field="email",
            code="requester_suspended",
        )
    changed = []
    if (requester.name, requester.organisation) != (clean.name, clean.organisation):
        requester.name, requester.organisation = clean.name, clean.organisation
        changed += ["name", "organisation"]
    if email_verified and requester.email_verified_at is None:
        requester.email_verified_at = now
        changed.append("email_verified_at")
    if changed:
        requester.save(update_fields=changed)
    return requester


def _already_open(
    requester: Requester, resolved: dict[str, ContentItem | None], *, clock_starts: bool
) -> dict[str, str]:
    """URLs (or their items) already held by an open target of the requester's open cases.

    A request whose clock starts at receipt is never merged into a case still awaiting
    confirmation: that case has no clock, and may never get one.
    """
    item_ids = {item.pk: url for url, item in resolved.items() if item is not None}
    not_holding = set(CLOSED_CASE_STATES)
    if clock_starts:
        not_holding.add(CaseState.AWAITING_CONFIRMATION)
    held = Target.objects.filter(
        case__requester=requester,
        state__in=[TargetState.PENDING, TargetState.DISABLED],
    ).exclude(case__state__in=not_holding)
    held = held.filter(Q(url__in=list(resolved)) | Q(content_item_id__in=list(item_ids)))
    merged: dict[str, str] = {}
    for url, item_id, reference in held.values_list("url", "content_item_id", "case__reference"):
        if url in resolved:
            merged.setdefault(url, reference)
        if item_id in item_ids:
            merged.setdefault(item_ids[item_id], reference)
    return merged


def _route(
    case: TakedownRequest, *, outlet: Outlet | None, email_verified: bool
) -> TakedownRequest:
    """A case whose clock has started goes to approval (trusted) or to the review queue; one
    that names nothing of ours, under any spelling, is told so and closed."""
    targets = list(case.targets.select_related("content_item"))
    items = [t.content_item for t in targets if t.content_item is not None]
    if not items and not case.whole_domain:
        case = transition(
            case,
            CaseState.NOT_FOUND,
            actor="system:intake",
            data={"not_found": len(targets)},
        )
        notify(case=case, kind="not_found", audience=Audience.REQUESTER)
        return case
    trust = decide_trust(
        items=items,
        outlet=outlet,
        email=case.requester.email,
        email_verified=email_verified,
    )
    if trust is None:
        case = transition(case, CaseState.IN_REVIEW, actor="system:intake")
    else:
        case = transition(
            case,
            CaseState.APPROVED,
            actor="system:trust",
            data=trust.as_data(),
            update={"trusted": True, "decided_at": clock.now()},
        )
    # The clock is running: the requester hears so, and the deadline engine takes over.
    notify(case=case, kind="received", audience=Audience.REQUESTER)
    case_kick(case)
    return case


def _clock_fields(now: datetime) -> dict[str, object]:
    length = settings.TAKEDOWN_DEADLINE
    return {
        "clock_started_at": now,
        "deadline_seconds": length,
        "deadline_at": deadlines.deadline_at(now, length),
    }


def takedown_submit(
    *,
    channel: str,
    email: object,
    name: object,
    basis: object,
    urls: object = (),
    whole_domain: object = "",
    explanation: object = "",
    statements: object = (),
    organisation: object = "",
    outlet: Outlet | None = None,
    email_verified: bool = False,
    actor: str = "",
) -> IntakeResult:
    """Take a request in from any channel. Raises `DomainError`; on error nothing is written.

    `email_verified` is for staff, who vouch for the address they enter, and for the web form's
    confirmation step; it is never inferred from the request itself.
    """
    clean = check_takedown(
        channel=channel,
        email=email,
        name=name,
        basis=basis,
        urls=urls,
        whole_domain=whole_domain,
        explanation=explanation,
        statements=statements,
        organisation=organisation,
    )
    if channel == Channel.API and outlet is None:
        raise DomainError("an API request needs the partner outlet it came from", field="outlet")
    now = clock.now()
    with transaction.atomic():
        requester = _requester_for(clean, email_verified=email_verified, now=now)
        resolved = resolve_urls(clean.urls)
        if clean.whole_domain:
            domain_items = items_of_domain(clean.whole_domain)
            if not domain_items:
                raise InvalidRequest(
                    {"whole_domain": f"nothing republished here comes from {clean.whole_domain}"}
                )
            if len(domain_items) > settings.TAKEDOWN_MAX_DOMAIN_ITEMS:
                raise InvalidRequest(
                    {
                        "whole_domain": (
                            f"{clean.whole_domain} covers {len(domain_items):,} articles; at "
                            f"most {settings.TAKEDOWN_MAX_DOMAIN_ITEMS:,} are accepted in one "
                            "request (name a narrower domain, or write to the takedown mailbox)"
                        )
                    }
                )
            known = {item.pk for item in resolved.values() if item is not None}
            for domain_item in domain_items:
                if domain_item.pk not in known:
                    resolved.setdefault(normalise_url(domain_item.source_url), domain_item)
                    known.add(domain_item.pk)
        # Two URLs for one article (our copy and its source) make one target.
        unique: dict[str, ContentItem | None] = {}
        claimed: set[int] = set()
        for url, item in resolved.items():
            if item is not None and item.pk in claimed:
                continue
            unique[url] = item
            if item is not None:
                claimed.add(item.pk)
        awaiting = channel == Channel.WEB and not email_verified
        # A whole-domain request is never folded into earlier cases: even when they hold every
        # article there is today, only this case closes with the rule that covers tomorrow's.
        merged = (
            {}
            if clean.whole_domain
            else _already_open(requester, unique, clock_starts=not awaiting)
        )
        fresh = {url: item for url, item in unique.items() if url not in merged}
        actor_name = _channel_actor(channel, requester, outlet, actor)
        if not fresh:
            # Requester, then case, then its stream: the order takedown_confirm takes them in.
            case = TakedownRequest.objects.select_for_update().get(
                reference=next(iter(merged.values()))
            )
            audit.append(
                stream=case.audit_stream(),
                actor=actor_name,
                action="case.repeat_received",
                data={"channel": channel, "urls": len(merged)},
            )
            return IntakeResult(case=case, created=False, merged=sorted(merged.items()))

        state = CaseState.AWAITING_CONFIRMATION if awaiting else CaseState.OPEN
        extra: dict[str, object] = (
            {"confirm_by": now + timedelta(seconds=settings.CONFIRMATION_WINDOW)}
            if awaiting
            else _clock_fields(now)
        )
        case = _create_case(
            clean=clean, requester=requester, outlet=outlet, state=state, now=now, extra=extra
        )
        targets = Target.objects.bulk_create(
            Target(
                case=case,
                url=url,
                content_item=item,
                state=TargetState.PENDING if item is not None else TargetState.NOT_FOUND,
                outcome_at=None if item is not None else now,
            )
            for url, item in fresh.items()
        )
        audit.append(
            stream=case.audit_stream(),
            actor=actor_name,
            action="case.received",
            data={
                "id": case.pk,
                "channel": channel,
                "requester": requester.actor,
                "outlet": outlet.slug if outlet is not None else None,
                "basis": clean.basis,
                "statements": list(clean.statements),
                "statements_version": STATEMENTS_VERSION,
                "explanation_digest": audit.text_digest(clean.explanation),
                "whole_domain": clean.whole_domain or None,
                "state": state,
                "deadline_seconds": case.deadline_seconds,
                "deadline_at": audit.format_time(case.deadline_at) if case.deadline_at else None,
                # Items by id only: an article's URL can itself name a person.
                "targets": [[t.pk, t.content_item_id, t.state] for t in targets],
                "merged_into": sorted(set(merged.values())),
            },
        )
        if awaiting:
            case_schedule_expiry(case)
        else:
            case = _route(case, outlet=outlet, email_verified=email_verified)
    return IntakeResult(case=case, created=True, merged=sorted(merged.items()))


def _create_case(
    *,
    clean: CleanRequest,
    requester: Requester,
    outlet: Outlet | None,
    state: str,
    now: datetime,
    extra: dict[str, object],
) -> TakedownRequest:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return TakedownRequest.objects.create(
                    reference=_new_reference(),
                    channel=clean.channel,
                    requester=requester,
                    outlet=outlet,
                    basis=clean.basis,
                    explanation=clean.explanation,
                    statements=list(clean.statements),
                    statements_version=STATEMENTS_VERSION,
                    whole_domain=clean.whole_domain,
                    state=state,
                    received_at=now,
                    **extra,
                )
        except IntegrityError:
            # A reference collision (about one in 10^10 per pair): draw another.
            continue
    raise DomainError("could not allocate a case reference; try again", code="busy")


def takedown_confirm(*, case: TakedownRequest) -> TakedownRequest:
    """The web requester proved their address: the clock starts now, then the case is routed.

    A confirmation that comes after `confirm_by` is refused even if the sweeper has not yet
    expired the case: unconfirmed requests expire, they never hold a clock.
    """
    with transaction.atomic():
        now = clock.now()
        if case.confirm_by is not None and now > case.confirm_by:
            raise DomainError(
                "the time to confirm this request has passed; please send it again",
                code="confirmation_expired",
            )
        # The requester before the case, as intake takes them: no deadlock with a resubmission.
        requester = Requester.objects.select_for_update().get(pk=case.requester_id)
        case = transition(
            case,
            CaseState.OPEN,
            actor=requester.actor,
            update=_clock_fields(now),
        )
        if requester.email_verified_at is None:
            requester.email_verified_at = now
            requester.save(update_fields=["email_verified_at"])
        return _route(case, outlet=case.outlet, email_verified=True)
