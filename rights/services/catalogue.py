"""The catalogue's trust settings: who owns which content, and who speaks for an outlet.

An outlet's verified domains, whether a domain gives mailboxes to the outlet's staff only, its
rights contacts, its partner flag and an item's outlet decide which requests are trusted and so
approved at once. Every change to them is saved here, with an audit event on the outlet's stream
in the same transaction, so that any trust decision can be reconstructed later.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

import dns.exception
import dns.name
import dns.resolver
from django.conf import settings
from django.db import models, transaction

from rights import audit, clock
from rights.errors import DomainError
from rights.models import ContentItem, DomainVerification, Outlet, OutletDomain, RightsContact
from rights.normalise import NormaliseError, normalise_domain
from rights.services.suppression import may_publish
from rights.states import ContentStatus

logger = logging.getLogger(__name__)

# The fields of each record that decide trust; a change to any of them is audited.
TRUST_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Outlet: ("is_partner",),
    OutletDomain: ("outlet", "domain", "verified_at", "verification_method", "staff_mail_only"),
    RightsContact: ("outlet", "email"),
    ContentItem: ("outlet", "source_url"),
}
TrustRecord = Outlet | OutletDomain | RightsContact | ContentItem


def _kind(record: models.Model) -> str:
    return {
        Outlet: "outlet",
        OutletDomain: "domain",
        RightsContact: "rights_contact",
        ContentItem: "item",
    }[type(record)]


def _outlets(record: TrustRecord, before: Outlet | None) -> list[Outlet]:
    current = record if isinstance(record, Outlet) else _owner(record)
    found = {o.pk: o for o in (before, current) if o is not None}
    return list(found.values())


def _owner(record: TrustRecord | None) -> Outlet | None:
    if record is None or isinstance(record, Outlet) or record.outlet_id is None:
        return None
    return record.outlet


def _describe(record: TrustRecord) -> dict[str, Any]:
    """What the trail keeps of a record: identifiers, domains and flags, never an address."""
    data: dict[str, Any] = {"kind": _kind(record), "id": record.pk}
    if isinstance(record, Outlet):
        data["is_partner"] = record.is_partner
    elif isinstance(record, OutletDomain):
        data.update(
            domain=record.domain,
            verified=record.verified_at is not None,
            verification_method=record.verification_method,
            staff_mail_only=record.staff_mail_only,
        )
    elif isinstance(record, ContentItem):
        data["source_domain"] = record.source_domain
    if not isinstance(record, Outlet):
        data["outlet"] = record.outlet.slug if record.outlet_id else None  # type: ignore[union-attr]
    return data


def check_trust_record(record: TrustRecord) -> None:
    """Refuse what can never be trusted: a public suffix as an outlet's domain."""
    if isinstance(record, OutletDomain):
        try:
            record.domain = normalise_domain(record.domain)
        except NormaliseError as exc:
            raise DomainError(f"the domain {exc}", field="domain") from exc


def check_publishable(item: ContentItem) -> None:
    """Refuse a live item whose source a suppression rule covers: content taken down, added
    again (under another spelling of its source, or another slug). Asked when an item is added
    or its source changes."""
    if item.status == ContentStatus.LIVE and not may_publish(item.source_url):
        raise DomainError(
            f"{item.source_url} was taken down and is suppressed: it must not be published "
            "again (an admin lifts the rule first, with a reason, if that was a mistake)",
            field="source_url",
            code="suppressed",
        )


def trust_record_save(
    *, record: TrustRecord, actor: str, fields: Iterable[str] | None = None
) -> TrustRecord:
    """Save a record staff created (`fields` None) or edited (`fields` changed); audit any
    change to what decides trust on the outlet's stream (each outlet's, when it moved)."""
    check_trust_record(record)
    if isinstance(record, ContentItem) and (fields is None or "source_url" in fields):
        check_publishable(record)
    model = type(record)
    with transaction.atomic():
        before = (
            model._default_manager.select_for_update().filter(pk=record.pk).first()
            if record.pk is not None
            else None
        )
        if before is None:
            record.save()
            changed = list(TRUST_FIELDS[model])
            action = "trust.created"
        else:
            names = sorted(set(fields or ()))
            if not names:
                return record
            if isinstance(record, OutletDomain) and isinstance(before, OutletDomain):
                names = sorted({*names, *_verification_lapse(record, before)})
            record.save(update_fields=names)
            changed = [f for f in TRUST_FIELDS[model] if getattr(before, f) != getattr(record, f)]
            action = "trust.changed"
        if changed:
            for outlet in _outlets(record, _owner(before)):
                audit.append(
                    stream=outlet.audit_stream(),
                    actor=actor,
                    action=action,
                    data={**_describe(record), "changed": changed},
                )
    return record


VERIFICATION_FIELDS = (
    "verified_at",
    "verification_method",
    "verified_by",
    "verification_token",
    "verification_note",
)


def _verification_lapse(record: OutletDomain, before: OutletDomain) -> tuple[str, ...]:
    """A verification proved one outlet's control of one name: renamed or moved to another
    outlet, the domain is unverified again (and lends no trust) until it is verified anew."""
    if record.domain == before.domain and record.outlet_id == before.outlet_id:
        return ()
    record.verified_at = None
    record.verification_method = ""
    record.verified_by = None
    record.verification_token = ""
    record.verification_note = ""
    return VERIFICATION_FIELDS


def trust_record_delete(*, record: TrustRecord, actor: str) -> None:
    with transaction.atomic():
        data = _describe(record)
        outlets = _outlets(record, None)
        record.delete()
        # An outlet's stream outlives the outlet: the trail keeps what it was.
        for outlet in outlets:
            audit.append(
                stream=outlet.audit_stream(), actor=actor, action="trust.deleted", data=data
            )


# --- Domain verification ---------------------------------------------------------------------

VERIFY_LABEL = "_rights-verify"
TXT_PREFIX = "rights-verify="
# A staff member waits on the page while we look: a few seconds, then a clear error.
DNS_TIMEOUT = 4.0


def domain_txt_name(domain: OutletDomain) -> str:
    """Where the outlet puts the TXT record: `_rights-verify.<domain>`."""
    return f"{VERIFY_LABEL}.{domain.domain}"


def domain_txt_value(domain: OutletDomain) -> str:
    """What the TXT record must hold ("" until verification was started)."""
    return f"{TXT_PREFIX}{domain.verification_token}" if domain.verification_token else ""


def _audit_domain(domain: OutletDomain, *, actor: str, action: str, **data: Any) -> None:
    audit.append(
        stream=domain.outlet.audit_stream(),
        actor=actor,
        action=action,
        data={**_describe(domain), **data},
    )


def _actor(user: Any) -> str:
    return f"staff:{user.pk}"


def domain_verification_start(*, domain: OutletDomain, user: Any) -> str:
    """Issue a fresh token for the TXT record and return it. A verified domain stays verified
    meanwhile: the token only matters when staff next check the record."""
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        locked = OutletDomain.objects.select_for_update().select_related("outlet").get(pk=domain.pk)
        locked.verification_token = token
        locked.save(update_fields=["verification_token"])
        _audit_domain(
            locked,
            actor=_actor(user),
            action="domain.verification_started",
            record=domain_txt_name(locked),
            staff=user.pk,
        )
    domain.verification_token = token
    return token


def check_domain_txt(
    *,
    domain: OutletDomain,
    resolver: dns.resolver.Resolver | None = None,
    timeout: float,
    token: str | None = None,
) -> None:
    """Raise DomainError unless `_rights-verify.<domain>` holds `token` (by default the token
    issued last)."""
    token = domain.verification_token if token is None else token
    expected = f"{TXT_PREFIX}{token}" if token else ""
    if not expected:
        raise DomainError(
            "no verification token has been issued for this domain: start verification first",
            code="not_started",
        )
    name = domain_txt_name(domain)
    resolver = resolver or dns.resolver.Resolver()
    try:
        answer = resolver.resolve(dns.name.from_text(name), "TXT", lifetime=timeout, search=False)
    except dns.resolver.NXDOMAIN as exc:
        raise DomainError(
            f"{name} does not exist in DNS (NXDOMAIN): create the TXT record there first",
            code="dns_nxdomain",
        ) from exc
    except dns.resolver.NoAnswer as exc:
        raise DomainError(f"{name} exists but has no TXT record", code="dns_no_txt") from exc
    except dns.exception.Timeout as exc:
        raise DomainError(
            f"no DNS answer for {name} within {timeout:g} seconds: try again later",
            code="dns_timeout",
        ) from exc
    except dns.exception.DNSException as exc:
        raise DomainError(f"the DNS lookup of {name} failed: {exc}", code="dns_failed") from exc
    found = {b"".join(record.strings).decode("utf-8", "replace") for record in answer}
    if expected not in found:
        raise DomainError(
            f"the TXT record at {name} does not hold this domain's current token "
            f"({len(found)} TXT value(s) found, none matching)",
            code="dns_token_mismatch",
        )


def _domain_verified(
    *, domain: OutletDomain, user: Any, method: str, note: str = "", token: str | None = None
) -> OutletDomain:
    with transaction.atomic():
        locked = OutletDomain.objects.select_for_update().select_related("outlet").get(pk=domain.pk)
        if token is not None and locked.verification_token != token:
            raise DomainError(
                "a new verification token was issued meanwhile: check the record again",
                code="token_changed",
            )
        locked.verified_at = clock.now()
        locked.verification_method = method
        locked.verified_by = user
        locked.verification_note = note
        locked.recheck_failures = 0
        # The token the TXT record held: the scheduled re-checks look for this one, even after
        # a new token is issued, until the new one is verified.
        locked.verified_token = token or ""
        locked.save(
            update_fields=[
                "verified_at",
                "verification_method",
                "verified_by",
                "verification_note",
                "recheck_failures",
                "verified_token",
            ]
        )
        _audit_domain(
            locked,
            actor=_actor(user),
            action="domain.verified",
            staff=user.pk,
            # A note may name people: the trail keeps a keyed digest of it.
            note_digest=audit.text_digest(note) if note else None,
        )
    return locked


def domain_verify_dns(
    *,
    domain: OutletDomain,
    user: Any,
    resolver: dns.resolver.Resolver | None = None,
    timeout: float = DNS_TIMEOUT,
) -> OutletDomain:
    """Verify the domain by its TXT record. The lookup runs before the transaction (no lock is
    held while we wait on the network); a failure raises DomainError and writes nothing."""
    check_domain_txt(domain=domain, resolver=resolver, timeout=timeout)
    return _domain_verified(
        domain=domain,
        user=user,
        method=DomainVerification.DNS_TXT,
        note=f"TXT record found at {domain_txt_name(domain)}",
        token=domain.verification_token,
    )


def domain_attest(*, domain: OutletDomain, user: Any, note: str) -> OutletDomain:
    """A named staff member attests that the outlet controls the domain, saying how they know."""
    note = note.strip()
    if not note:
        raise DomainError(
            "an attestation needs a note saying how you know the outlet controls the domain",
            field="note",
        )
    return _domain_verified(
        domain=domain, user=user, method=DomainVerification.STAFF_ATTESTATION, note=note
    )


# Lookups that prove a record gone (as opposed to a lookup that failed: a timeout says nothing).
RECORD_GONE = frozenset({"dns_nxdomain", "dns_no_txt", "dns_token_mismatch"})
RECHECK_ACTOR = "system:domain-recheck"


def domain_recheck(
    *,
    domain: OutletDomain,
    resolver: dns.resolver.Resolver | None = None,
    timeout: float = DNS_TIMEOUT,
) -> str:
    """Look a TXT-verified domain's record up again: "held", "gone" (counted), "lapsed" (gone
    DOMAIN_RECHECK_LAPSE_AFTER times in a row: the domain is unverified, and lends no trust, until
    staff verify it anew), or "unknown" (the lookup failed: nothing is counted). Each finding of
    the record gone, and a lapse, is audited on the outlet's stream."""
    try:
        check_domain_txt(
            domain=domain, resolver=resolver, timeout=timeout, token=domain.verified_token
        )
    except DomainError as exc:
        if exc.code not in RECORD_GONE:
            logger.warning("domain re-check of %s: %s", domain.domain, exc.message)
            return "unknown"
        gone: str | None = exc.code
    else:
        gone = None
    with transaction.atomic():
        locked = OutletDomain.objects.select_for_update().select_related("outlet").get(pk=domain.pk)
        if (
            locked.verification_method != DomainVerification.DNS_TXT
            or locked.verified_token != domain.verified_token
        ):
            return "unknown"  # verified anew, or otherwise, meanwhile: this lookup is stale
        locked.rechecked_at = clock.now()
        if gone is None:
            locked.recheck_failures = 0
            locked.save(update_fields=["rechecked_at", "recheck_failures"])
            return "held"
        locked.recheck_failures += 1
        fields = ["rechecked_at", "recheck_failures"]
        lapsed = locked.recheck_failures >= settings.DOMAIN_RECHECK_LAPSE_AFTER
        _audit_domain(
            locked,
            actor=RECHECK_ACTOR,
            action="domain.recheck_failed",
            record=domain_txt_name(locked),
            finding=gone,
            failures=locked.recheck_failures,
        )
        if lapsed:
            locked.verified_at = None
            locked.verification_method = ""
            locked.verified_by = None
            locked.verification_note = (
                f"TXT record at {domain_txt_name(locked)} gone in "
                f"{locked.recheck_failures} re-checks in a row"
            )
            fields += ["verified_at", "verification_method", "verified_by", "verification_note"]
            _audit_domain(locked, actor=RECHECK_ACTOR, action="domain.verification_lapsed")
            logger.warning(
                "domain %s is no longer verified: its TXT record is gone (%s)",
                locked.domain,
                gone,
            )
        locked.save(update_fields=fields)
        return "lapsed" if lapsed else "gone"


def domains_recheck(
    *, resolver: dns.resolver.Resolver | None = None, timeout: float = DNS_TIMEOUT
) -> dict[str, int]:
    """Re-check every TXT-verified domain, least recently checked first; counts by finding."""
    counts = {"held": 0, "gone": 0, "lapsed": 0, "unknown": 0}
    domains = OutletDomain.objects.filter(
        verification_method=DomainVerification.DNS_TXT, verified_at__isnull=False
    ).order_by(models.F("rechecked_at").asc(nulls_first=True), "pk")
    for domain in domains:
        counts[domain_recheck(domain=domain, resolver=resolver, timeout=timeout)] += 1
    return counts
