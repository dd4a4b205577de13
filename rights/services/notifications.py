"""Notifications, sent from an outbox.

`notify` writes a row (in the caller's transaction) whose unique key makes a second `notify` for
the same event a no-op; `notification_send` claims a row with a lease, sends it, and marks it
sent. A crash between the SMTP hand-off and the mark can repeat a message: its Message-ID is
derived from the key, so mail clients fold the repeat into the original.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q

from rights import audit, clock
from rights.deadlines import retry_backoff
from rights.dispatch import enqueue
from rights.models import Audience, Notification, TakedownRequest
from rights.workflow import TargetState

logger = logging.getLogger(__name__)

MESSAGES: dict[str, tuple[str, str]] = {
    "received": (
        "We received your request {ref}",
        "We received your removal request {ref}. It will be decided, and the content named in "
        "it dealt with, by {deadline}.",
    ),
    "removed": (
        "Your request {ref}: the content has been removed",
        "The content named in your request {ref} has been removed and will not be republished.",
    ),
    "suspended": (
        "Your request {ref} was not accepted",
        "Requests from this address are suspended after repeated manifestly unfounded "
        "requests, so your request {ref} was not accepted. If you believe this is wrong, "
        "reply to this message, quoting {ref}.",
    ),
    "not_found": (
        "Your request {ref}: we do not publish what it names",
        "We looked for every address in your request {ref} on our site, under every spelling "
        "(http or https, with or without www, AMP and mobile editions, with or without the "
        "final slash), and we do not publish any of them, so there is nothing for us to "
        "remove and the request is closed.",
    ),
    "rejected": (
        "Your request {ref} has been decided",
        "Your request {ref} was reviewed and not granted. The reasons are available from the "
        "takedown team on request, quoting {ref}.",
    ),
    "restored": (
        "Case {ref}: content restored",
        "Content removed under case {ref} has been restored after review.",
    ),
    "reminder": (
        "Reminder: case {ref} is half-way to its deadline",
        "Case {ref} is half-way to its deadline and not all of it is dealt with. "
        "Deadline: {deadline}.",
    ),
    "escalation": (
        "Escalation: case {ref} is undecided with little time left",
        "Case {ref} is still undecided. The fail-safe will disable its content before the "
        "deadline ({deadline}) unless someone decides first.",
    ),
    "failsafe": (
        "Fail-safe: content of case {ref} disabled pending review",
        "Nobody decided case {ref} in time, so its content has been disabled pending review. "
        "Deadline: {deadline}.",
    ),
    "breach": (
        "BREACH: case {ref} missed its deadline",
        "Case {ref} did not reach an outcome by its deadline ({deadline}). Enforcement goes on.",
    ),
    "disabled": (
        "Your request {ref}: the content has been disabled pending review",
        "The content named in your request {ref} has been disabled pending review: it is no "
        "longer shown while our staff decide on your request. We will write again with the "
        "decision.",
    ),
    "pending_review": (
        "Reminder: case {ref} is disabled pending review and needs a decision",
        "The fail-safe disabled the content of case {ref} because nobody decided it by its "
        "deadline ({deadline}). It stays disabled until someone approves or rejects it.",
    ),
    "dead_letter": (
        "Action needed: the CMS refused a removal step of case {ref}",
        "A removal backend refused a step of case {ref} for good, so it will not be retried "
        "on its own. See Removal effects in the admin (dead letters), fix the cause, and "
        "retry it there. Our own copy is handled apart from the CMS and is not held up.",
    ),
}


def notify(*, case: TakedownRequest, kind: str, audience: str, key_suffix: str = "") -> bool:
    """Put one message in the outbox; False when it was there already (same key).

    `key_suffix` tells apart messages of one kind that recur (the n-th reminder, say).
    """
    if kind not in MESSAGES:
        raise ValueError(f"no message for {kind!r}")
    key = f"{case.reference}:{kind}:{audience}" + (f":{key_suffix}" if key_suffix else "")
    notification, created = Notification.objects.get_or_create(
        key=key,
        defaults={
            "kind": kind,
            "audience": audience,
            "case": case,
            "next_attempt_at": clock.now(),
        },
    )
    if created:
        enqueue("rights.notification_send", notification.pk)
    return created


def _address(notification: Notification) -> str:
    if notification.audience == Audience.REQUESTER:
        return notification.case.requester.email
    if notification.audience == Audience.LEADS:
        return str(settings.LEADS_EMAIL)
    return str(settings.REVIEWERS_EMAIL)


def _message(notification: Notification) -> EmailMessage:
    case = notification.case
    subject, body = MESSAGES[notification.kind]
    deadline = f"{case.deadline_at:%Y-%m-%d %H:%M} UTC" if case.deadline_at else "(not started)"
    fields = {"ref": case.reference, "deadline": deadline}
    message_id = hashlib.sha256(notification.key.encode()).hexdigest()[:32]
    text = body.format(**fields) + "\n"
    if notification.audience == Audience.REQUESTER:
        text += _not_found_note(case)
    return EmailMessage(
        subject=subject.format(**fields),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[_address(notification)],
        headers={"Message-ID": f"<{message_id}@rights>", "X-Case-Reference": case.reference},
    )


def _not_found_note(case: TakedownRequest) -> str:
    """Which of the requester's addresses are not ours, and what that means: never "removed"."""
    urls = list(
        case.targets.filter(state=TargetState.NOT_FOUND)
        .order_by("pk")
        .values_list("url", flat=True)
    )
    if not urls:
        return ""
    listed = "".join(f"  - {url}\n" for url in urls)
    return (
        "\nThese addresses are not on our site under any spelling, so nothing was removed "
        f"for them:\n{listed}"
        "If our copy of your content is at another address, reply with that address (the "
        "link under each article we republish names it), quoting "
        f"{case.reference}.\n"
    )


def notification_send(*, notification_id: int) -> bool:
    """Send one claimed notification; True when it is (or already was) sent."""
    now = clock.now()
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("case__requester")
            .filter(pk=notification_id, sent_at__isnull=True)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if notification is None:
            return False
        # Long enough for the slowest SMTP exchange, so no second worker sends meanwhile.
        notification.lease_until = now + timedelta(
            seconds=max(settings.SWEEP_LEASE, 2 * settings.EMAIL_TIMEOUT + 1)
        )
        notification.attempts += 1
        notification.save(update_fields=["lease_until", "attempts"])
    try:
        _message(notification).send(fail_silently=False)
    except Exception as exc:  # any transport error: retry later
        notification.next_attempt_at = clock.now() + retry_backoff(notification.attempts)
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
        audit.append(
            stream=notification.case.audit_stream(),
            actor="system:outbox",
            action="notification.sent",
            data={"kind": notification.kind, "audience": notification.audience},
        )
    return True
