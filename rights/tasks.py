"""Celery tasks: thin, idempotent wrappers that take primary keys and call services.

Every task is safe to run twice (acks_late with reject_on_worker_lost is on for all of them), and
accepts **kwargs so that messages from an older release survive a rolling deploy.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from rights import audit
from rights.dispatch import publish_now
from rights.services import enforcement, notifications


@shared_task(name="rights.sweep")
def sweep(**kwargs: Any) -> int:
    """Claim what is due and hand it out. Runs every SWEEP_INTERVAL from beat."""
    claimed = enforcement.sweep_claim()
    for case_id in claimed.cases:
        if not publish_now("rights.case_advance", case_id):
            break  # the broker is gone; leases expire and the next sweep tries again
    for notification_id in claimed.notifications:
        if not publish_now("rights.notification_send", notification_id):
            break
    return len(claimed.cases) + len(claimed.notifications)


@shared_task(name="rights.case_advance")
def case_advance(case_id: int, **kwargs: Any) -> int:
    owed = enforcement.case_advance(case_id=case_id)
    for target_id in owed:
        publish_now("rights.target_enforce", target_id)
    return len(owed)


@shared_task(name="rights.target_enforce")
def target_enforce(target_id: int, **kwargs: Any) -> bool:
    return enforcement.target_enforce(target_id=target_id)


@shared_task(name="rights.notification_send")
def notification_send(notification_id: int, **kwargs: Any) -> bool:
    return notifications.notification_send(notification_id=notification_id)


@shared_task(name="rights.audit_checkpoint")
def audit_checkpoint(**kwargs: Any) -> int | None:
    checkpoint = audit.checkpoint_create()
    return checkpoint.pk if checkpoint is not None else None


@shared_task(name="rights.ping")
def ping(**kwargs: Any) -> str:
    """Does nothing: `celery -A config call rights.ping` proves the broker-to-worker path, and
    the benchmarks use it to measure the broker's own task rate."""
    return "pong"
