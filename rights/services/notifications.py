"""Notifications, sent from an outbox.

`notify` writes a row (in the caller's transaction) whose unique key makes a second `notify` for
the same event a no-op; `notification_send` claims a row with a lease, sends it, and marks it
sent. A crash between the SMTP hand-off and the mark can repeat a message: its Message-ID is
derived from the key, so mail clients fold the repeat into the original.

A message to someone who wrote to the takedown mailbox answers their message: it carries
In-Reply-To and References to their Message-ID, and Auto-Submitted (RFC 3834) so that their
autoresponder does not answer it. Our own Message-IDs name the case (`<digest.reference@rights>`),
so a reply to one of them is threaded into that case (`case_of_message_id`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from rights import audit, clock, links, redress
from rights.deadlines import duration_words, retry_backoff
from rights.models import (
    Audience,
    AuditEvent,
    InboundMessage,
    MailState,
    Notification,
    Requester,
    TakedownRequest,
    Transport,
)
from rights.services import webhooks
from rights.services.outbox import outbox_add
from rights.states import TargetState

logger = logging.getLogger(__name__)

# Each kind's subject; its words are the template rights/email/<kind>.txt, and requester
# messages are also sent as HTML (the same words, with the status link as a button).
SUBJECTS: dict[str, str] = {
    "confirm": "Confirm your request {ref}",
    "received": "We received your request {ref}",
    "withdrawn": "Your request {ref} has been withdrawn",
    "appealed": "We received your appeal on request {ref}",
    "status_links": "Your takedown requests",
    "removed": "Your request {ref}: the content has been removed",
    "partly_removed": "Your request {ref}: some content removed, the rest refused",
    "not_found": "Your request {ref}: we do not publish what it names",
    "suspended": "Your request {ref} was not accepted",
    "disabled": "Your request {ref}: the content has been disabled pending review",
    "rejected": "Your request {ref} has been decided",
    "restored": "Your request {ref}: content restored after review",
    "reminder": "Reminder: case {ref} is half-way to its deadline",
    "escalation": "Escalation: case {ref} is undecided with little time left",
    "failsafe": "Fail-safe: content of case {ref} disabled pending review",
    "breach": "BREACH: case {ref} missed its deadline",
    "pending_review": "Reminder: case {ref} is disabled pending review and needs a decision",
    "dead_letter": "Action needed: the CMS refused a removal step of case {ref}",
    "appealed_staff": "Appeal: case {ref} is reopened and needs a second decider",
    # Abuse controls (rights.services.abuse): about the requester, mailed with their newest case.
    "warned": "A warning about requests from this address",
    "suspended_notice": "Requests from this address are suspended",
    "lifted": "The suspension of requests from this address is lifted",
    # The mailbox (rights.mail): about an inbound message, with no case.
    "mail_help": "How to ask us to remove an article",
}
# Messages about an inbound message rather than a case (`notify_inbound`).
ABOUT_INBOUND = frozenset({"mail_help"})
# Messages about the requester rather than one case: the case they ride on says nothing more.
ABOUT_REQUESTER = frozenset({"warned", "suspended_notice", "lifted"})
# The button of a requester's HTML message: the confirmation link where there is one to press,
# otherwise the status page.
LINK_LABELS = {"confirm": "Confirm your request", "mail_help": "Open the request form"}
OUR_MESSAGE_ID = re.compile(r"^<([0-9a-f]{32})\.(TD-[0-9A-Z]{7})@rights>$")
OUR_BARE_ID = re.compile(r"^<[0-9a-f]{32}@rights>$")
# How many of a requester's cases the "status links" message lists, newest first.
STATUS_LINKS_LISTED = 20


def notify(*, case: TakedownRequest, kind: str, audience: str, key_suffix: str = "") -> bool:
    """Put one message in the outbox for the event that just happened; False when it was there
    already.

    One message per event: the key names the case's newest audit event (appended in the same
    transaction, before this call), so a retry of the same step adds nothing while the same kind
    of event happening again (content removed again after an appeal) sends again.
    `key_suffix` names the occurrence instead, for messages with no event of their own (the
    n-th reminder, say).
    """
    return notify_many(cases=[case], kind=kind, audience=audience, key_suffix=key_suffix)[0]


def notify_many(
    *, cases: Sequence[TakedownRequest], kind: str, audience: str, key_suffix: str = ""
) -> list[bool]:
    """`notify` for the same event of many cases (a batch's), in constant queries: for each
    case, in order, whether its message is new."""
    if kind not in SUBJECTS and audience != Audience.PARTNER:
        raise ValueError(f"no message for {kind!r}")
    if not cases:
        return []
    heads = audit.stream_head_seqs(case.audit_stream() for case in cases)
    occurrences = [key_suffix or f"e{heads.get(case.audit_stream(), 0)}" for case in cases]
    # Every event anyone is told of is also the filing partner's, when a partner's API filed the
    # case: here, once, rather than at each step that notifies. An event only the partner hears
    # of (a staff approval) is notified to Audience.PARTNER alone.
    partner_told = webhooks.events_record(cases=cases, kind=kind, occurrences=occurrences)
    if audience == Audience.PARTNER:
        return [partner_told > 0] * len(cases)
    erased: set[int] = set()
    if audience == Audience.REQUESTER:
        # An erased requester has no address to write to.
        erased = set(
            Requester.objects.filter(
                pk__in={case.requester_id for case in cases}, erased_at__isnull=False
            ).values_list("pk", flat=True)
        )
    now = clock.now()
    rows = {
        case.pk: Notification(
            key=f"{case.reference}:{kind}:{audience}:{occurrence}",
            kind=kind,
            audience=audience,
            case=case,
            transport=Transport.EMAIL,
            next_attempt_at=now,
        )
        for case, occurrence in zip(cases, occurrences, strict=True)
        if case.requester_id not in erased
    }
    added = {row.key for row in outbox_add(list(rows.values()))}
    return [case.pk in rows and rows[case.pk].key in added for case in cases]


def notify_inbound(*, inbound: InboundMessage, kind: str) -> bool:
    """Put one answer to an inbound message (that made no case) in the outbox, once."""
    if kind not in ABOUT_INBOUND:
        raise ValueError(f"no message about an inbound message for {kind!r}")
    row = Notification(
        key=f"mail:{inbound.pk}:{kind}",
        kind=kind,
        audience=Audience.REQUESTER,
        inbound=inbound,
        transport=Transport.EMAIL,
        next_attempt_at=clock.now(),
    )
    return bool(outbox_add([row]))


def outgoing_message_id(notification: Notification) -> str:
    """The Message-ID of a notification's email: from its key (a repeat is the same message),
    naming its case so that a reply can be threaded into it."""
    digest = hashlib.sha256(notification.key.encode()).hexdigest()[:32]
    if notification.case is None:
        return f"<{digest}@rights>"
    return f"<{digest}.{notification.case.reference}@rights>"


def is_our_message_id(message_id: str) -> bool:
    """The Message-ID has the form of one of ours (`outgoing_message_id`)."""
    return bool(OUR_MESSAGE_ID.match(message_id.strip()) or OUR_BARE_ID.match(message_id.strip()))


def case_of_message_id(message_id: str) -> TakedownRequest | None:
    """The case one of our own emails (by its Message-ID) was about, or None: the reference in
    it must match a message we really sent for that case, so a made-up id threads nothing."""
    match = OUR_MESSAGE_ID.match(message_id.strip())
    if match is None:
        return None
    digest, reference = match.groups()
    case = TakedownRequest.objects.filter(reference=reference).first()
    if case is None:
        return None
    for key in case.notifications.values_list("key", flat=True):
        if hashlib.sha256(key.encode()).hexdigest()[:32] == digest:
            return case
    return None


def _answering(notification: Notification) -> InboundMessage | None:
    """The inbound message this email answers: the one it is about, or the one that opened its
    case."""
    if notification.inbound is not None:
        return notification.inbound
    case = notification.case
    if case is None or case.channel != "email":
        return None
    return (
        InboundMessage.objects.filter(case=case, state=MailState.OPENED)
        .exclude(message_id="")
        .order_by("pk")
        .first()
    )


def _address(notification: Notification) -> str:
    if notification.case is None:
        assert notification.inbound is not None
        return notification.inbound.sender
    if notification.audience == Audience.REQUESTER:
        return notification.case.requester.email
    if notification.audience == Audience.LEADS:
        return str(settings.LEADS_EMAIL)
    return str(settings.REVIEWERS_EMAIL)


def _inbound_context(notification: Notification) -> dict[str, Any]:
    return {
        "request_url": settings.PUBLIC_BASE_URL + reverse("rights:request"),
        "public_url": settings.PUBLIC_BASE_URL,
        "promise": duration_words(settings.TAKEDOWN_DEADLINE),
        "mailbox": settings.TAKEDOWN_MAILBOX,
    }


def _context(notification: Notification) -> dict[str, Any]:
    case = notification.case
    if case is None:
        return _inbound_context(notification)
    context: dict[str, Any] = {
        "reference": case.reference,
        "deadline": f"{case.deadline_at:%Y-%m-%d %H:%M} UTC" if case.deadline_at else "not set",
        "reasons": case.decision_reasons,
    }
    if notification.audience == Audience.REQUESTER:
        # Anyone can type someone else's address: until the address is proved, a message to it
        # repeats nothing the sender typed (no name, no URLs), so the form cannot carry their
        # words to a stranger's mailbox.
        verified = case.requester.email_verified_at is not None
        targets = list(case.targets.order_by("pk"))
        appeal_until = redress.appeal_until(case, targets, clock.now())
        context.update(
            name=case.requester.name if verified else "",
            status_url=links.status_url(case),
            appeal_reasons=case.appeal_reasons,
            appeal_until=f"{appeal_until:%Y-%m-%d}" if appeal_until else "",
            promise=duration_words(settings.TAKEDOWN_DEADLINE),
            not_found=(
                [t.url for t in targets if t.state == TargetState.NOT_FOUND] if verified else []
            ),
            not_found_count=sum(1 for t in targets if t.state == TargetState.NOT_FOUND),
            removed_count=sum(1 for t in targets if t.state == TargetState.REMOVED),
            refused=[t.url for t in targets if t.state == TargetState.REJECTED] if verified else [],
            refused_count=sum(1 for t in targets if t.state == TargetState.REJECTED),
        )
        if notification.kind == "confirm":
            context["confirmation_url"] = links.confirmation_url(case)
            context["confirm_by"] = (
                f"{case.confirm_by:%Y-%m-%d %H:%M} UTC" if case.confirm_by else "soon"
            )
        if notification.kind in ABOUT_REQUESTER:
            context.update(_abuse_context(case), not_found=[], not_found_count=0)
        if notification.kind == "status_links":
            cases = case.requester.cases.order_by("-received_at", "-pk")[:STATUS_LINKS_LISTED]
            context["cases"] = [
                {
                    "reference": other.reference,
                    "received": f"{other.received_at:%Y-%m-%d}",
                    "status_url": links.status_url(other),
                }
                for other in cases
            ]
    else:
        context["case_url"] = links.staff_case_url(case)
    return context


def _abuse_context(case: TakedownRequest) -> dict[str, Any]:
    """What a warning, a suspension or its lifting tells the requester: the requests found
    manifestly unfounded, as rights.services.abuse records them on the requester's stream
    (`requester:<id>`, which is `Requester.actor`), and the rule."""
    requester = case.requester
    events = AuditEvent.objects.filter(
        stream=requester.actor, action="requester.unfounded"
    ).order_by("seq")
    return {
        "unfounded": [str(e.data.get("case")) for e in events if isinstance(e.data, dict)],
        "unfounded_count": requester.unfounded_count,
        "suspend_after": int(getattr(settings, "ABUSE_SUSPEND_AFTER", 3)),
        "mailbox": settings.TAKEDOWN_MAILBOX,
    }


def render_message(notification: Notification) -> EmailMultiAlternatives:
    """The email for one outbox row, rendered when sent: erasing a requester's details before
    then leaves nothing of them in the outbox."""
    context = _context(notification)
    case = notification.case
    subject = SUBJECTS[notification.kind].format(ref=case.reference if case else "")
    text = render_to_string(f"rights/email/{notification.kind}.txt", context).strip() + "\n"
    headers = {"Message-ID": outgoing_message_id(notification)}
    if case is not None:
        headers["X-Case-Reference"] = case.reference
    answering = _answering(notification) if notification.audience == Audience.REQUESTER else None
    if answering is not None:
        # An answer to a message is an automatic reply (RFC 3834), Message-ID or none.
        headers["Auto-Submitted"] = "auto-replied"
        if answering.message_id:
            headers["In-Reply-To"] = answering.message_id
            headers["References"] = answering.message_id
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[_address(notification)],
        headers=headers,
    )
    if notification.audience == Audience.REQUESTER:
        html = render_to_string(
            "rights/email/message.html",
            {
                "subject": subject,
                "text": text,
                "link": (
                    context.get("confirmation_url")
                    or context.get("status_url")
                    or context.get("request_url")
                ),
                "link_label": LINK_LABELS.get(notification.kind, "See your request"),
            },
        )
        message.attach_alternative(html, "text/html")
    return message


def _send_email(notification: Notification) -> None:
    render_message(notification).send(fail_silently=False)


# How each transport delivers a row. The outbox and its once-only guarantees are the same for
# every transport; a new one (partner webhooks) adds its sender here. A transport that gives up
# on a row for good raises webhooks.DeadLetter: the row is then not retried until staff retry it.
TRANSPORTS: dict[str, Callable[[Notification], None]] = {
    Transport.EMAIL: _send_email,
    Transport.WEBHOOK: webhooks.delivery_send,
}


def notification_send(*, notification_id: int) -> bool:
    """Send one claimed notification; True when it is (or already was) sent."""
    now = clock.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("case__requester", "inbound")
            .filter(pk=notification_id, sent_at__isnull=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if notification is None:
            return False
        # Long enough for the slowest SMTP exchange or webhook call, so no second worker sends
        # meanwhile.
        slowest = max(settings.EMAIL_TIMEOUT, settings.PARTNER_WEBHOOK_TIMEOUT)
        notification.lease_until = now + timedelta(
            seconds=max(settings.SWEEP_LEASE, 2 * slowest + 1)
        )
        notification.attempts += 1
        notification.save(update_fields=["lease_until", "attempts"])
    try:
        TRANSPORTS[notification.transport](notification)
    except Exception as exc:  # any transport error: retry later, unless the transport gave up
        notification.next_attempt_at = (
            None
            if isinstance(exc, webhooks.DeadLetter)
            else clock.now() + retry_backoff(notification.attempts)
        )
        notification.lease_until = None
        notification.last_error = f"{type(exc).__name__}"[:300]
        notification.save(update_fields=["next_attempt_at", "lease_until", "last_error"])
        logger.warning(
            "notification %s not sent (%s); retrying", notification.pk, type(exc).__name__
        )
        return False
    with transaction.atomic():
        marked = Notification.objects.filter(pk=notification.pk, sent_at__isnull=True).update(
            sent_at=clock.now(), lease_until=None
        )
        if not marked:
            return True  # another worker recorded it first
        about = notification.case or notification.inbound
        assert about is not None
        audit.append(
            stream=about.audit_stream(),
            actor="system:outbox",
            action="notification.sent",
            data={"kind": notification.kind, "audience": notification.audience},
        )
    return True
