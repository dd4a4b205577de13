"""Enforcement: bringing one case up to date, in steps that each commit on their own.

`case_advance` runs the ladder (rungs are never undone by anything that comes after them), then
the fail-safe in chunks (`ladder`), then the removal work that the case still owes, which is
where the backends' configuration is read (`effects`). `case_work` also enforces the owed
targets within a time budget, as the worker's task and the standby sweeper do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min

from rights import clock
from rights.db import case_lock_if_any
from rights.deadlines import Rung
from rights.models import RemovalEffect
from rights.removal.registry import configured_backends
from rights.services.effects import (
    ACTOR,
    REMOVAL_DONE,
    case_close,
    case_suppress_domain,
    desired_action,
    effects_owed,
    targets_enforce,
)
from rights.services.ladder import climb_ladder, failsafe_continue, next_rung_at, review_reminder
from rights.services.scheduling import case_hand_back, schedule_no_later, set_next_check
from rights.states import CLOCK_RUNNING_STATES, CaseState, TargetState
from rights.workflow import transition


@dataclass(frozen=True)
class _Ladder:
    fired: set[str]
    failsafe_owed: bool
    reminder_at: datetime | None


def _ladder_step(case_id: int, now: datetime, *, due_only: bool = True) -> _Ladder | None:
    """Expiry, the due rungs and reminders, in a transaction of their own; None when there is
    nothing more to do for this case now."""
    with transaction.atomic():
        case = case_lock_if_any(case_id)
        if case is None:
            return None
        if due_only and (case.next_check_at is None or case.next_check_at > now):
            # A duplicate message for work already done: under a backlog the fast path and the
            # sweeper can both hand out the same case, and this costs a query or two.
            return None
        if case.state == CaseState.AWAITING_CONFIRMATION:
            if case.confirm_by is not None and case.confirm_by <= now:
                case = transition(case, CaseState.EXPIRED, actor=ACTOR)
                set_next_check(case, None)
            else:
                set_next_check(case, case.confirm_by)
            return None
        targets = list(case.targets.order_by("pk"))
        fired = climb_ladder(case, targets, now)
        failsafe_owed = (
            Rung.FAILSAFE in fired
            and case.state in CLOCK_RUNNING_STATES
            and any(t.state == TargetState.PENDING for t in targets)
        )
        if failsafe_owed:
            # Due until it is done: if this process dies mid-way, the next sweep resumes it.
            schedule_no_later(case.pk, now)
        return _Ladder(
            fired=fired,
            failsafe_owed=failsafe_owed,
            reminder_at=review_reminder(case, now),
        )


def case_advance(*, case_id: int, failsafe_budget: float | None = None) -> list[int]:
    """Bring one case up to date: expiry, ladder, fail-safe, removal. Returns targets owed
    backend work (the caller enforces them, here or in tasks of their own)."""
    now = clock.now()
    ladder = _ladder_step(case_id, now)
    if ladder is None:
        return []
    if ladder.failsafe_owed:
        if not failsafe_continue(case_id=case_id, budget_seconds=failsafe_budget):
            case_hand_back(case_id=case_id)
            return []
        # The rungs after the fail-safe (a late one is a breach), judged now that it is done.
        now = clock.now()
        ladder = _ladder_step(case_id, now, due_only=False) or ladder
    return _removal_step(case_id, now, ladder)


def _removal_step(case_id: int, now: datetime, ladder: _Ladder) -> list[int]:
    """What the case's decision implies: approved cases move to removing, finished ones close,
    and the targets still owed backend work are listed. The backends' configuration is read
    here, after the ladder has committed, so it can never undo a rung."""
    with transaction.atomic():
        case = case_lock_if_any(case_id)
        if case is None:
            return []
        targets = list(case.targets.select_related("content_item").order_by("pk"))
        if case.state == CaseState.APPROVED:
            case = transition(case, CaseState.REMOVING, actor=ACTOR)
            case_suppress_domain(case)
        if case.state == CaseState.REMOVING and all(t.state in REMOVAL_DONE for t in targets):
            case = case_close(case)
        backends = [backend.name for backend in configured_backends()]
        owed = [
            t.pk
            for t in targets
            if (action := desired_action(t, case.state)) is not None
            and effects_owed(t, action, backends)
        ]
        retry_at = RemovalEffect.objects.filter(
            target_id__in=owed, done_at__isnull=True, dead_at__isnull=True
        ).aggregate(at=Min("next_attempt_at"))["at"]
        candidates = [next_rung_at(case, targets, ladder.fired), ladder.reminder_at]
        if owed:
            # Look again soon even if every task published now is lost.
            recheck = now + timedelta(seconds=max(settings.SWEEP_LEASE, settings.RETRY_FIRST))
            candidates.append(max(retry_at, recheck) if retry_at else recheck)
        set_next_check(case, min((c for c in candidates if c is not None), default=None))
    return owed


def case_work(*, case_id: int, budget_seconds: float | None = None) -> list[int]:
    """Advance a case, then enforce its owed targets here while the budget lasts.

    Returns the targets left over (for the caller to hand out); none without a budget.
    """
    started = time.monotonic()
    owed = case_advance(case_id=case_id, failsafe_budget=budget_seconds)
    if budget_seconds is None:
        return targets_enforce(target_ids=owed)
    left = budget_seconds - (time.monotonic() - started)
    return targets_enforce(target_ids=owed, budget_seconds=left)
