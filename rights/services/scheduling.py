"""Scheduling: when the deadline engine next looks at a case, and the sweeper's claims.

The database is the source of truth, and its clock is the clock (`rights.clock.now()`): every
lease, due time and retry time is compared across hosts. Each case carries `next_check_at`, the
moment it next needs attention (a ladder rung, removal work, a reminder, an expiry), and the
sweeper claims due cases with `SELECT ... FOR UPDATE SKIP LOCKED` plus a lease. Tasks are
published as a fast path; anything lost is found again by the next sweep once its lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from rights import clock
from rights.dispatch import enqueue
from rights.models import Notification, SweeperRun, TakedownRequest
from rights.task_names import TaskName


def _lease() -> timedelta:
    return timedelta(seconds=settings.SWEEP_LEASE)


def case_kick(case: TakedownRequest) -> None:
    """Something changed: look at this case now (sweeper) and publish the fast path."""
    cases_kick([case])


def cases_kick(cases: Sequence[TakedownRequest]) -> None:
    """`case_kick` for many cases, in one query."""
    if not cases:
        return
    TakedownRequest.objects.filter(pk__in=[case.pk for case in cases]).update(
        next_check_at=clock.now()
    )
    for case in cases:
        enqueue(TaskName.CASE_ADVANCE, case.pk)


def case_schedule_expiry(case: TakedownRequest) -> None:
    """An unconfirmed web request is looked at again when its confirmation window closes."""
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=case.confirm_by)


def case_hand_back(*, case_id: int) -> None:
    """Work on this case was cut short by a time budget: the next sweep hands it out again."""
    now = clock.now()
    TakedownRequest.objects.filter(pk=case_id).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__gt=now)
    ).update(next_check_at=now)
    TakedownRequest.objects.filter(pk=case_id).update(lease_until=None)


@dataclass(frozen=True)
class Claimed:
    cases: list[int]
    notifications: list[int]


def sweep_claim(*, now: datetime | None = None) -> Claimed:
    """Claim what is due, under a lease. Costs what is due (index ranges), not what is open."""
    now = now or clock.now()
    lease_until = now + _lease()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    with transaction.atomic():
        cases = list(
            TakedownRequest.objects.select_for_update(skip_locked=True)
            .filter(next_check_at__lte=now)
            .filter(free)
            .order_by("next_check_at")
            .values_list("pk", flat=True)[: settings.SWEEP_BATCH]
        )
        if cases:
            TakedownRequest.objects.filter(pk__in=cases).update(lease_until=lease_until)
        notifications = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(sent_at__isnull=True, next_attempt_at__lte=now)
            .filter(free)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[: settings.SWEEP_BATCH]
        )
        if notifications:
            # Not handed out again before a lease has passed, even if the message is lost;
            # `notification_send` takes its own lease when it starts.
            Notification.objects.filter(pk__in=notifications).update(next_attempt_at=lease_until)
        SweeperRun.objects.update_or_create(
            name="sweeper",
            defaults={"last_run_at": now, "last_claimed": len(cases) + len(notifications)},
        )
    return Claimed(cases=cases, notifications=notifications)


def set_next_check(case: TakedownRequest, at: datetime | None) -> None:
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=at, lease_until=None)


def schedule_no_later(case_id: int, at: datetime) -> None:
    """Make sure the sweeper comes back for the case no later than `at`."""
    TakedownRequest.objects.filter(pk=case_id).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__gt=at)
    ).update(next_check_at=at)
