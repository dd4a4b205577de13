"""Erasure of a requester's personal data (GDPR Art. 17), on request or by the retention rule.

What goes: the requester's name, address and organisation, and the free texts they wrote (each
case's explanation and appeal reasons), which become tombstones; the door's id of each of their
submissions (an email's Message-ID can hold an address) and the digest of each submission
(computed over their name, address and words) become keyed digests or nothing. Mail to them
still waiting in the outbox is cancelled: it would be rendered with the tombstones. The
mailbox's copies of their messages (raw bytes, sender, subject, URLs) are erased too.

What stays: the cases with their references, states, clocks and outcomes, the staff's decisions
and statements of reasons (staff wrote them), and each Target's URL. A URL can name a person,
but these name our own copies of published articles and their sources: suppression needs them
to keep removed content down, and the catalogue holds the same addresses anyway.

The audit trail is untouched: it never held the details (events name `requester:<id>` and keep
digests of texts), so `audit_verify` passes after an erasure; the erasure itself is an event on
the requester's stream and on each case's.

Lock order, as intake takes them: the requester's row, then their cases in id order.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from rights import audit, clock
from rights.errors import DomainError
from rights.mail.receive import messages_erase
from rights.models import Audience, Notification, Requester, TakedownRequest, Target
from rights.services.abuse import requester_stream
from rights.states import CLOSED_CASE_STATES

__all__ = [
    "ERASED_NAME",
    "ERASED_TEXT",
    "erase_refusal",
    "erased_email",
    "requester_erase",
    "requesters_due_for_erasure",
    "requesters_erase_expired",
    "retention_days",
]

logger = logging.getLogger(__name__)

ERASED_NAME = "[erased]"
ERASED_TEXT = "[erased]"
ERASED_URL = "https://erased.invalid/"
RETENTION_ACTOR = "system:retention"
RETENTION_REASON = "retention period passed"
CANCELLED = "cancelled: the requester was erased"
# How many requesters one retention run erases; the next run goes on with the rest.
RETENTION_BATCH = 500


def erased_email(requester_id: int) -> str:
    """A tombstone address: unique like the real one, never deliverable (RFC 2606 `.invalid`)."""
    return f"erased-{requester_id}@erased.invalid"


def retention_days() -> int:
    return settings.REQUESTER_RETENTION_DAYS


def erase_refusal(requester: Requester, open_references: list[str]) -> DomainError | None:
    """Why the requester cannot be erased now, or None (a check: `requester_erase` acts)."""
    if requester.erased_at is not None:
        return DomainError(
            f"{requester} was erased already, on {requester.erased_at:%Y-%m-%d}",
            code="already_erased",
        )
    if open_references:
        return DomainError(
            f"{requester} has open cases ({', '.join(open_references)}): decide or withdraw "
            "them first",
            code="open_cases",
        )
    return None


def requester_erase(*, requester: Requester, user_id: int | None, reason: str) -> Requester:
    """Erase the requester's personal data; `user_id` None is the retention rule.

    Refused while any of their cases is open (decide or withdraw it first: an open case still
    needs its requester's address), and for a requester erased already. `reason` is kept in
    the trail as a keyed digest only (it may name the person).
    """
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise DomainError("say why the requester is erased", field="reason")
    actor = f"staff:{user_id}" if user_id is not None else RETENTION_ACTOR
    with transaction.atomic():
        now = clock.now()
        requester = Requester.objects.select_for_update().get(pk=requester.pk)
        cases = list(
            TakedownRequest.objects.select_for_update().filter(requester=requester).order_by("pk")
        )
        refusal = erase_refusal(
            requester, [c.reference for c in cases if c.state not in CLOSED_CASE_STATES]
        )
        if refusal is not None:
            raise refusal
        for case in cases:
            case.explanation = ERASED_TEXT if case.explanation else ""
            case.appeal_reasons = ERASED_TEXT if case.appeal_reasons else ""
            case.request_digest = ""
            if case.source_key:
                # Still unique, so no new submission can take it; no longer readable.
                case.source_key = f"erased:{audit.text_digest(case.source_key)}"
            case.save(
                update_fields=[
                    "explanation",
                    "appeal_reasons",
                    "request_digest",
                    "source_key",
                    "updated_at",
                ]
            )
            audit.append(
                stream=case.audit_stream(),
                actor=actor,
                action="case.requester_erased",
                data={"requester": requester.actor},
            )
        # A URL that names no copy of ours is the requester's own text: neither suppression
        # nor any decision needs it. URLs of our copies stay (they name our content, not them).
        # A URLField holds the tombstone: one per target, as a target's URL is unique in its case.
        for target in Target.objects.filter(case__in=cases, content_item__isnull=True):
            target.url = f"{ERASED_URL}{target.pk}"
            target.save(update_fields=["url"])
        cancelled = Notification.objects.filter(
            case__requester=requester, audience=Audience.REQUESTER, sent_at__isnull=True
        ).update(sent_at=now, lease_until=None, last_error=CANCELLED)
        # What the mailbox kept of them: the raw messages they sent, and any about their cases.
        mail_erased = messages_erase(email=requester.email, case_ids=[c.pk for c in cases])
        requester.email = erased_email(requester.pk)
        requester.name = ERASED_NAME
        requester.organisation = ""
        # The proof of an address that is gone; mail to a tombstone names no one anyway.
        requester.email_verified_at = None
        requester.erased_at = now
        requester.save(
            update_fields=["email", "name", "organisation", "email_verified_at", "erased_at"]
        )
        audit.append(
            stream=requester_stream(requester.pk),
            actor=actor,
            action="requester.erased",
            data={
                "cases": [c.reference for c in cases],
                "cancelled_notifications": cancelled,
                "mail_erased": mail_erased,
                "reason_digest": audit.text_digest(reason),
                "by": "retention" if user_id is None else "staff",
            },
        )
    return requester


def requesters_due_for_erasure(now: datetime) -> QuerySet[Requester]:
    """Requesters not yet erased whose every case closed more than REQUESTER_RETENTION_DAYS
    ago. A suspended requester is kept: the suspension needs their address to stay in force,
    and lifting it first is a decision for staff."""
    cutoff = now - timedelta(days=retention_days())
    recent = TakedownRequest.objects.filter(requester=OuterRef("pk")).filter(
        ~Q(state__in=sorted(CLOSED_CASE_STATES))
        | Q(closed_at__isnull=True)
        | Q(closed_at__gte=cutoff)
    )
    return (
        Requester.objects.filter(
            erased_at__isnull=True, suspended_at__isnull=True, created_at__lt=cutoff
        )
        .filter(~Exists(recent))
        .order_by("pk")
    )


def requesters_erase_expired(*, limit: int = RETENTION_BATCH) -> int:
    """The retention rule: erase up to `limit` requesters due for it; how many were erased."""
    erased = 0
    for requester in requesters_due_for_erasure(clock.now())[:limit]:
        try:
            requester_erase(requester=requester, user_id=None, reason=RETENTION_REASON)
        except DomainError as exc:
            # A case reopened (an appeal) since the query: the next run looks again.
            logger.info("retention: %s not erased (%s)", requester, exc.code)
            continue
        erased += 1
    if erased:
        logger.info("retention: %d requester(s) erased", erased)
    return erased
