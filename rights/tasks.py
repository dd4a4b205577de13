"""Celery tasks: thin, idempotent wrappers that take primary keys and call services.

Every task is safe to run twice (acks_late with reject_on_worker_lost is on for all of them), and
accepts **kwargs so that messages from an older release survive a rolling deploy.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from rights import audit
from rights.dispatch import publish_now
from rights.mail import fetch, receive
from rights.services import catalogue, effects, enforcement, erasure, notifications, scheduling
from rights.task_names import TaskName

logger = logging.getLogger(__name__)


@shared_task(name=TaskName.SWEEP)
def sweep(**kwargs: Any) -> int:
    """Claim what is due and hand it out. Runs every SWEEP_INTERVAL from beat."""
    claimed = scheduling.sweep_claim()
    # Handed-out work goes to the `clock` queue, which workers serve in turn with the fast-path
    # queue, so a backlog there never delays a rung or a retry.
    for case_id in claimed.cases:
        if not publish_now(TaskName.CASE_ADVANCE, case_id, queue="clock"):
            break  # the broker is gone; leases expire and the next sweep tries again
    for notification_id in claimed.notifications:
        if not publish_now(TaskName.NOTIFICATION_SEND, notification_id, queue="clock"):
            break
    return len(claimed.cases) + len(claimed.notifications)


@shared_task(name=TaskName.CASE_ADVANCE)
def case_advance(case_id: int, **kwargs: Any) -> int:
    """Advance one case, then enforce its owed targets here while the time budget lasts.

    Doing the work in the same task (rather than publishing one message per target) keeps a
    backlog from multiplying: a case that is done needs no further message, and a duplicate
    message for it costs a query or two. The budget (CASE_WORK_BUDGET) keeps the task well
    inside its soft time limit even when the last call it starts runs into its timeout; a
    fail-safe cut short by it is handed back to the sweeper and resumed.
    """
    rest = enforcement.case_work(case_id=case_id, budget_seconds=settings.CASE_WORK_BUDGET)
    for target_id in rest:
        publish_now(TaskName.TARGET_ENFORCE, target_id)
    return len(rest)


@shared_task(name=TaskName.TARGET_ENFORCE)
def target_enforce(target_id: int, **kwargs: Any) -> bool:
    return effects.target_enforce(target_id=target_id)


@shared_task(name=TaskName.NOTIFICATION_SEND)
def notification_send(notification_id: int, **kwargs: Any) -> bool:
    return notifications.notification_send(notification_id=notification_id)


@shared_task(name=TaskName.AUDIT_CHECKPOINT)
def audit_checkpoint(**kwargs: Any) -> int | None:
    checkpoint = audit.checkpoint_create()
    return checkpoint.pk if checkpoint is not None else None


@shared_task(name=TaskName.REQUESTERS_RETENTION)
def requesters_retention(**kwargs: Any) -> int:
    """Erase the contact details of requesters whose every case closed more than
    REQUESTER_RETENTION_DAYS ago (GDPR Art. 5(1)(e)); a batch a run, the next run goes on."""
    return erasure.requesters_erase_expired()


@shared_task(name=TaskName.DOMAINS_RECHECK)
def domains_recheck(**kwargs: Any) -> dict[str, int]:
    """Look every TXT-verified domain's record up again; a record gone several checks in a row
    unverifies its domain (DOMAIN_RECHECK_LAPSE_AFTER)."""
    return catalogue.domains_recheck()


@shared_task(name=TaskName.MAIL_PROCESS)
def mail_process(message_id: int, **kwargs: Any) -> str:
    """Read one stored inbound message and act on it."""
    return receive.message_process(message_id=message_id)


@shared_task(name=TaskName.MAIL_PENDING)
def mail_pending(**kwargs: Any) -> int:
    """Read the messages stored but left unread (their reader died); beat, every minute."""
    pending = receive.messages_pending()
    for message_id in pending:
        receive.message_process(message_id=message_id)
    return len(pending)


@shared_task(name=TaskName.MAIL_FETCH)
def mail_fetch(**kwargs: Any) -> int:
    """One read of MAILBOX_URL (beat, every MAIL_POLL_INTERVAL, when it is set): store and move
    a batch, then hand each message to a worker to read."""
    if not settings.MAILBOX_URL:
        return 0
    try:
        result = fetch.mailbox_read()
    except fetch.MailboxError as exc:
        logger.warning("mail_fetch: %s; the next read tries again", exc)
        return 0
    for message_id in result.stored:
        publish_now(TaskName.MAIL_PROCESS, message_id)
    return len(result.stored)


@shared_task(name=TaskName.PING)
def ping(**kwargs: Any) -> str:
    """Does nothing: `celery -A config call rights.ping` proves the broker-to-worker path, and
    the benchmarks use it to measure the broker's own task rate."""
    return "pong"
