"""Intake: the one way a case comes into being, shared by every door.

A door builds a `Submission` and calls `takedown_submit`, which checks it (`intake_checks`),
resolves its URLs and decides trust (`trust`), then writes the requester, the case, its targets
and the audit events in one transaction, starts the clock (or waits for the web requester to
confirm their address), and routes the case: trusted requests are approved at once, the rest go
to the review queue, and a request naming nothing of ours is told so and closed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from rights import audit, clock, deadlines, sor_templates
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, Channel, ContentItem, Outlet, Requester, TakedownRequest, Target
from rights.normalise import normalise_url
from rights.services.decisions import sor_draft, sor_record
from rights.services.intake_checks import CleanRequest, InvalidRequest, Submission, check_takedown
from rights.services.notifications import notify
from rights.services.scheduling import case_kick, case_schedule_expiry
from rights.services.trust import decide_trust, items_of_domain, resolve_urls
from rights.statements import STATEMENTS_VERSION
from rights.states import CLOSED_CASE_STATES, OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import transition

__all__ = ["IntakeResult", "InvalidRequest", "Submission", "takedown_confirm", "takedown_submit"]

REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read out over a phone
REFERENCE_PREFIX = "TD-"
REFERENCE_LENGTH = 7
# Doors anyone can knock on: they never reveal whether an address is known or suspended.
PUBLIC_CHANNELS = frozenset({Channel.WEB, Channel.EMAIL})
SUSPENDED_REASONS = (
    "Requests from this address are suspended after repeated manifestly unfounded requests. "
    "If you believe this is wrong, write to the takedown mailbox."
)


@dataclass
class IntakeResult:
    case: TakedownRequest
    created: bool
    # (normalised URL, reference of the requester's open case that already holds it); only
    # ever for a verified sender.
    merged: list[tuple[str, str]] = field(default_factory=list)


def _new_reference() -> str:
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{REFERENCE_PREFIX}{body}"


def _channel_actor(channel: str, requester: Requester, outlet: Outlet | None, actor: str) -> str:
    if actor:
        return actor
    if channel == Channel.API and outlet is not None:
        return f"partner:{outlet.slug}"
    return requester.actor


def _requester_for(clean: CleanRequest, *, verified: bool, now: datetime) -> Requester:
    """The requester, locked: intake serialises per requester, so two identical submissions
    cannot both open a case. Only a verified submission may change a verified requester's
    name or organisation: anyone can type someone else's address into a form."""
    requester, _ = Requester.objects.get_or_create(
        email=clean.email, defaults={"name": clean.name, "organisation": clean.organisation}
    )
    # FOR NO KEY UPDATE: the row's key never changes, so the foreign-key checks of other
    # transactions writing rows that point at this requester (FOR KEY SHARE) do not wait on it,
    # nor deadlock with it.
    requester = Requester.objects.select_for_update(no_key=True).get(pk=requester.pk)
    changed = []
    contact = (clean.name, clean.organisation)
    if (verified or requester.email_verified_at is None) and (
        requester.name,
        requester.organisation,
    ) != contact:
        requester.name, requester.organisation = contact
        changed += ["name", "organisation"]
    if verified and requester.email_verified_at is None:
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
        state__in=OPEN_TARGET_STATES,
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
        whole_domain=case.whole_domain,
    )
    if trust is None:
        case = transition(case, CaseState.IN_REVIEW, actor="system:intake")
    else:
        now = clock.now()
        case = transition(
            case,
            CaseState.APPROVED,
            actor="system:trust",
            data=trust.as_data(),
            update={"trusted": True, "decided_at": now},
        )
        # A decision by rule, with no person deciding: its statement of reasons says so.
        sor_record(
            case=case,
            scope={
                t.pk: TargetState.REMOVED if t.state in OPEN_TARGET_STATES else t.state
                for t in targets
            },
            statement=sor_draft(
                case, sor_templates.REMOVAL, now=now, targets=targets, automated=True
            ),
            decided_at=now,
            user_id=None,
            actor="system:trust",
            automated_decision=True,
            whole_domain_removal=bool(case.whole_domain),
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


def _source_key(clean: CleanRequest, outlet: Outlet | None) -> str | None:
    """Channel, the door's scope and its id: partners each have their own key space."""
    if not clean.external_id:
        return None
    scope = outlet.slug if clean.channel == Channel.API and outlet is not None else ""
    return f"{clean.channel}:{scope}:{clean.external_id}"


def _earlier_submission(source_key: str | None, digest: str) -> TakedownRequest | None:
    """The case a retry of this submission already made; refused if the id was used for
    another request (saying nothing of that request)."""
    if source_key is None:
        return None
    earlier = TakedownRequest.objects.filter(source_key=source_key).first()
    if earlier is not None and earlier.request_digest != digest:
        raise IdempotencyConflict()
    return earlier


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__(
            "this submission id was already used for a different request; send a new id "
            "for a new request, or repeat the first request exactly to retry it",
            field="external_id",
        )


def takedown_submit(*, submission: Submission) -> IntakeResult:
    """Take a request in from any door. Raises `DomainError`; on error nothing is written.

    A retry (the same channel, scope and external id, with the same request) returns the first
    case, `created` False. An unverified submission never merges into, appends to or reveals
    another case, and on a public door a suspended requester is answered as anyone else is:
    the case is refused at once and only the email to that address says why.
    """
    clean = check_takedown(submission)
    outlet = submission.outlet
    if clean.channel == Channel.API and outlet is None:
        raise DomainError("an API request needs the partner outlet it came from", field="outlet")
    # Staff vouch for the address they enter and the web form's confirmation proves it. A
    # partner's key proves which outlet sent the request, not who owns the address it names:
    # for that address a partner is as unverified as anyone.
    verified = submission.email_verified
    source_key = _source_key(clean, outlet)
    digest = clean.digest(outlet)
    now = clock.now()
    if submission.received_at is not None and submission.received_at < now:
        now = submission.received_at  # received before intake read it: the clock started then
    try:
        with transaction.atomic():
            requester = _requester_for(clean, verified=verified, now=now)
            earlier = _earlier_submission(source_key, digest)
            if earlier is not None:
                return IntakeResult(case=earlier, created=False)
            # Every check before the suspension is looked at, so that a public door refuses a
            # suspended address's request exactly when it would refuse anyone's.
            domain_items = _domain_items(clean)
            if requester.suspended_at is not None:
                if clean.channel not in PUBLIC_CHANNELS:
                    raise DomainError(
                        "requests from this address are suspended after repeated unfounded "
                        "requests",
                        field="email",
                        code="requester_suspended",
                    )
                return IntakeResult(
                    case=_refuse_suspended(clean, requester, outlet, source_key, digest, now),
                    created=True,
                )
            return _open_case(
                clean,
                domain_items=domain_items,
                submission=submission,
                requester=requester,
                verified=verified,
                source_key=source_key,
                digest=digest,
                now=now,
            )
    except _SourceTaken:
        # A concurrent first submission with the same id committed while this one was being
        # written: it is the case to return, if it is the same request.
        earlier = _earlier_submission(source_key, digest)
        assert earlier is not None
        return IntakeResult(case=earlier, created=False)


def _domain_items(clean: CleanRequest) -> list[ContentItem]:
    """The articles a whole-domain request covers, or `InvalidRequest` saying why it cannot."""
    if not clean.whole_domain:
        return []
    items = items_of_domain(clean.whole_domain)
    if not items:
        raise InvalidRequest(
            {"whole_domain": f"nothing republished here comes from {clean.whole_domain}"}
        )
    if len(items) > settings.TAKEDOWN_MAX_DOMAIN_ITEMS:
        raise InvalidRequest(
            {
                "whole_domain": (
                    f"{clean.whole_domain} covers {len(items):,} articles; at most "
                    f"{settings.TAKEDOWN_MAX_DOMAIN_ITEMS:,} are accepted in one request (name a "
                    "narrower domain, or write to the takedown mailbox)"
                )
            }
        )
    return items


def _open_case(
    clean: CleanRequest,
    *,
    domain_items: list[ContentItem],
    submission: Submission,
    requester: Requester,
    verified: bool,
    source_key: str | None,
    digest: str,
    now: datetime,
) -> IntakeResult:
    outlet = submission.outlet
    resolved = resolve_urls(clean.urls)
    if domain_items:
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
    awaiting = clean.channel == Channel.WEB and not submission.email_verified
    # Only a verified sender's request is folded into their open cases (and told their
    # references): anyone can type someone else's address. A whole-domain request is never
    # folded in: even when earlier cases hold every article there today, only this case
    # closes with the rule that covers tomorrow's.
    merged = (
        _already_open(requester, unique, clock_starts=not awaiting)
        if verified and not clean.whole_domain
        else {}
    )
    fresh = {url: item for url, item in unique.items() if url not in merged}
    actor_name = _channel_actor(clean.channel, requester, outlet, submission.actor)
    if not fresh:
        # Requester, then case, then its stream: the order takedown_confirm takes them in.
        held = TakedownRequest.objects.get(reference=next(iter(merged.values())))
        case = case_lock(held.pk)
        audit.append(
            stream=case.audit_stream(),
            actor=actor_name,
            action="case.repeat_received",
            data={"channel": clean.channel, "urls": len(merged)},
        )
        return IntakeResult(case=case, created=False, merged=sorted(merged.items()))

    state = CaseState.AWAITING_CONFIRMATION if awaiting else CaseState.OPEN
    extra: dict[str, object] = (
        {"confirm_by": now + timedelta(seconds=settings.CONFIRMATION_WINDOW)}
        if awaiting
        else _clock_fields(now)
    )
    case = _create_case(
        clean=clean,
        requester=requester,
        outlet=outlet,
        state=state,
        now=now,
        source_key=source_key,
        digest=digest,
        extra=extra,
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
    _audit_received(case, clean, requester, outlet, actor_name, targets, merged)
    if awaiting:
        # The clock waits for the address to be proved: the mail holds the confirmation link.
        notify(case=case, kind="confirm", audience=Audience.REQUESTER)
        case_schedule_expiry(case)
    else:
        case = _route(case, outlet=outlet, email_verified=submission.email_verified)
    return IntakeResult(case=case, created=True, merged=sorted(merged.items()))


def _audit_received(
    case: TakedownRequest,
    clean: CleanRequest,
    requester: Requester,
    outlet: Outlet | None,
    actor: str,
    targets: list[Target],
    merged: dict[str, str],
) -> None:
    audit.append(
        stream=case.audit_stream(),
        actor=actor,
        action="case.received",
        data={
            "id": case.pk,
            "channel": clean.channel,
            "requester": requester.actor,
            "outlet": outlet.slug if outlet is not None else None,
            "basis": clean.basis or None,
            "statements": list(clean.statements),
            "statements_version": case.statements_version or None,
            "sworn": bool(clean.statements),
            "explanation_digest": audit.text_digest(clean.explanation),
            "whole_domain": clean.whole_domain or None,
            "state": case.state,
            "deadline_seconds": case.deadline_seconds,
            "deadline_at": audit.format_time(case.deadline_at) if case.deadline_at else None,
            # Items by id only: an article's URL can itself name a person.
            "targets": [[t.pk, t.content_item_id, t.state] for t in targets],
            "merged_into": sorted(set(merged.values())),
        },
    )


def _refuse_suspended(
    clean: CleanRequest,
    requester: Requester,
    outlet: Outlet | None,
    source_key: str | None,
    digest: str,
    now: datetime,
) -> TakedownRequest:
    """A suspended requester at a public door: the case is recorded and refused at once, and
    only the email to that address says why (the door shows what it shows everyone)."""
    case = _create_case(
        clean=clean,
        requester=requester,
        outlet=outlet,
        state=CaseState.OPEN,
        now=now,
        source_key=source_key,
        digest=digest,
        extra={},
    )
    _audit_received(case, clean, requester, outlet, requester.actor, [], {})
    case = transition(
        case,
        CaseState.REJECTED,
        actor="system:intake",
        data={"refused": "requester_suspended"},
        update={"decided_at": now, "decision_reasons": SUSPENDED_REASONS},
    )
    notify(case=case, kind="suspended", audience=Audience.REQUESTER)
    return case


class _SourceTaken(Exception):
    """Another transaction committed a case with this submission's source key first."""


def _create_case(
    *,
    clean: CleanRequest,
    requester: Requester,
    outlet: Outlet | None,
    state: str,
    now: datetime,
    source_key: str | None,
    digest: str,
    extra: dict[str, object],
) -> TakedownRequest:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return TakedownRequest.objects.create(
                    reference=_new_reference(),
                    channel=clean.channel,
                    source_key=source_key,
                    request_digest=digest,
                    requester=requester,
                    outlet=outlet,
                    basis=clean.basis,
                    explanation=clean.explanation,
                    statements=list(clean.statements),
                    statements_version=STATEMENTS_VERSION if clean.statements else "",
                    whole_domain=clean.whole_domain,
                    state=state,
                    received_at=now,
                    **extra,
                )
        except IntegrityError:
            if source_key is not None and (
                TakedownRequest.objects.filter(source_key=source_key).exists()
            ):
                raise _SourceTaken() from None
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
