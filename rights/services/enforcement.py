"""Enforcement: the deadline engine's services.

The database is the source of truth. Each case carries `next_check_at`, the moment it next
needs attention (a ladder rung, removal work, an expiry), and the sweeper claims due cases with
`SELECT ... FOR UPDATE SKIP LOCKED` plus a lease, then hands them to `case_advance`. Tasks are
published as a fast path; anything lost is found again by the next sweep once its lease ends.

Lock order: the case row first, always; then its targets and items (items in id order); audit
stream heads are taken as events are appended, under the case lock. Two workers therefore
serialise on the case and never deadlock.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from rights import audit, deadlines
from rights.db import joined_atomic
from rights.deadlines import Rung
from rights.dispatch import enqueue
from rights.models import (
    Audience,
    LadderRung,
    Notification,
    RemovalAction,
    RemovalEffect,
    SuppressionKind,
    SweeperRun,
    TakedownRequest,
    Target,
)
from rights.normalise import normalise_url
from rights.removal import RemovalFailed, configured_backends
from rights.removal.catalogue import CatalogueBackend
from rights.selectors import item_held_elsewhere
from rights.services.notifications import notify
from rights.services.suppression import suppression_create
from rights.workflow import (
    CLOCK_RUNNING_STATES,
    CaseState,
    TargetState,
    transition,
)

logger = logging.getLogger(__name__)

ACTOR = "system:enforcement"
# Who hears of each rung.
RUNG_AUDIENCES: dict[str, tuple[str, ...]] = {
    Rung.REMINDER: (Audience.REVIEWERS,),
    Rung.ESCALATION: (Audience.LEADS,),
    Rung.FAILSAFE: (Audience.REVIEWERS, Audience.LEADS),
    Rung.BREACH: (Audience.LEADS,),
}
# Targets with these states have reached their final outcome in a removing case.
REMOVAL_DONE = frozenset({TargetState.REMOVED, TargetState.NOT_FOUND, TargetState.REJECTED})
# Nobody has decided these yet.
UNDECIDED = frozenset({CaseState.OPEN, CaseState.IN_REVIEW})


def _lease() -> timedelta:
    return timedelta(seconds=settings.SWEEP_LEASE)


# --- Scheduling ----------------------------------------------------------------------------


def case_kick(case: TakedownRequest) -> None:
    """Something changed: look at this case now (sweeper) and publish the fast path."""
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
    enqueue("rights.case_advance", case.pk)


def case_schedule_expiry(case: TakedownRequest) -> None:
    """An unconfirmed web request is looked at again when its confirmation window closes."""
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=case.confirm_by)


@dataclass(frozen=True)
class Claimed:
    cases: list[int]
    notifications: list[int]


def sweep_claim(*, now: datetime | None = None) -> Claimed:
    """Claim what is due, under a lease. Costs what is due (index ranges), not what is open."""
    now = now or timezone.now()
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


# --- The ladder ----------------------------------------------------------------------------


def _failsafe(case: TakedownRequest, targets: list[Target], now: datetime) -> None:
    """Disable every target still pending, here and now, so the promise holds undecided."""
    catalogue = CatalogueBackend()
    # Items in id order: two fail-safes sharing items lock them in the same order.
    pending = sorted(
        (t for t in targets if t.state == TargetState.PENDING),
        key=lambda t: (t.content_item_id or 0, t.pk),
    )
    for target in pending:
        disabled = transition(
            target,
            TargetState.DISABLED,
            actor=ACTOR,
            data={"rung": Rung.FAILSAFE},
            update={"outcome_at": now},
        )
        # The page goes 451 in this same transaction, and the effect is recorded with it so that
        # a later decision knows there is something to restore. Other backends follow in
        # target_enforce.
        effect, _ = RemovalEffect.objects.get_or_create(
            target=disabled,
            backend=catalogue.name,
            action=RemovalAction.DISABLE,
            defaults={"key": effect_key(disabled, RemovalAction.DISABLE, catalogue.name)},
        )
        catalogue.apply(target=disabled, action=RemovalAction.DISABLE, key=effect.key)
        _effect_done(effect)
    if case.state in {CaseState.OPEN, CaseState.IN_REVIEW}:
        transition(case, CaseState.DISABLED_PENDING_REVIEW, actor=ACTOR, data={"rung": "failsafe"})


def _fire(case: TakedownRequest, rung: Rung, due_at: datetime, pending: int, now: datetime) -> bool:
    """Insert the rung's row; False if it had already fired (the constraint decides)."""
    try:
        with transaction.atomic():
            LadderRung.objects.create(
                case=case, rung=rung, fired_at=now, due_at=due_at, pending_targets=pending
            )
    except IntegrityError:
        return False
    audit.append(
        stream=case.audit_stream(),
        actor=ACTOR,
        action=f"ladder.{rung}",
        data={
            "due_at": audit.format_time(due_at),
            "pending_targets": pending,
            "late_seconds": int((now - due_at).total_seconds()),
        },
    )
    for audience in RUNG_AUDIENCES[rung]:
        notify(case=case, kind=str(rung), audience=audience)
    return True


def _applies(rung: str, case: TakedownRequest, targets: list[Target]) -> bool:
    """Whether a rung has anything to do for this case, judged when it falls due.

    Reminders and escalations chase an undecided case even when none of its URLs matched our
    content (someone still has to close it); the fail-safe and the breach concern targets.
    """
    pending = any(t.state == TargetState.PENDING for t in targets)
    if rung in {Rung.REMINDER, Rung.ESCALATION}:
        return pending or case.state in UNDECIDED
    if rung == Rung.FAILSAFE:
        return pending
    late = any(
        t.outcome_at is not None
        and case.deadline_at is not None
        and t.outcome_at > case.deadline_at
        for t in targets
    )
    return pending or late


def _climb_ladder(case: TakedownRequest, targets: list[Target], now: datetime) -> set[str]:
    """Fire every due rung that applies; the rungs fired for this case, before and now."""
    fired = set(case.rungs.values_list("rung", flat=True))
    if case.clock_started_at is None or case.deadline_seconds is None:
        return fired
    for rung in deadlines.due_rungs(case.clock_started_at, case.deadline_seconds, now):
        if rung in fired or not _applies(rung, case, targets):
            continue
        pending = sum(1 for t in targets if t.state == TargetState.PENDING)
        due_at = deadlines.rung_due_at(rung, case.clock_started_at, case.deadline_seconds)
        if not _fire(case, rung, due_at, pending, now):
            continue
        fired.add(rung)
        if rung == Rung.BREACH:
            transaction.on_commit(
                functools.partial(
                    logger.error,
                    "case %s breached its deadline (%d targets open)",
                    case.reference,
                    pending,
                )
            )
        if rung == Rung.FAILSAFE:
            _failsafe(case, targets, now)
            targets[:] = list(case.targets.select_related("content_item").order_by("pk"))
            case.refresh_from_db()
    return fired


def _next_rung_at(case: TakedownRequest, targets: list[Target], fired: set[str]) -> datetime | None:
    """When the next rung that still applies falls due; None when none is left."""
    if (
        case.state not in CLOCK_RUNNING_STATES
        or case.clock_started_at is None
        or case.deadline_seconds is None
    ):
        return None
    # A rung that no longer applies is passed over, as if it had fired.
    passed = fired | {rung for rung, _ in deadlines.LADDER if not _applies(rung, case, targets)}
    return deadlines.next_rung_at(case.clock_started_at, case.deadline_seconds, passed)


# --- Advancing a case ----------------------------------------------------------------------


def desired_action(target: Target, case_state: str) -> str | None:
    """What the removal backends still owe this target, judged from the states alone."""
    if target.content_item_id is None:
        return None
    if case_state == CaseState.REMOVING and target.state in {
        TargetState.PENDING,
        TargetState.DISABLED,
    }:
        return RemovalAction.REMOVE
    if target.state == TargetState.DISABLED:
        return RemovalAction.DISABLE
    restore = target.state == TargetState.RESTORED or (
        # Rejected after the fail-safe had disabled it: the content goes back up.
        target.state == TargetState.REJECTED
        and RemovalEffect.objects.filter(target=target, action=RemovalAction.DISABLE).exists()
    )
    if restore and not item_held_elsewhere(
        content_item_id=target.content_item_id, case_id=target.case_id
    ):
        return RemovalAction.RESTORE
    return None


def _owed(target: Target, action: str) -> bool:
    if action == RemovalAction.REMOVE and target.state in {
        TargetState.PENDING,
        TargetState.DISABLED,
    }:
        # Even with every effect done, the target's own outcome may not have been recorded
        # yet (a worker died in between): target_enforce finishes it.
        return True
    done = RemovalEffect.objects.filter(
        target=target, action=action, done_at__isnull=False
    ).values_list("backend", flat=True)
    return bool({b.name for b in configured_backends()} - set(done))


def effect_key(target: Target, action: str, backend: str) -> str:
    """The idempotency key sent with one backend's action on one target."""
    return f"{target.case.reference}-t{target.pk}-{action}-{backend}"


def case_advance(*, case_id: int) -> list[int]:
    """Bring one case up to date: expiry, ladder, removal. Returns targets owed backend work."""
    now = timezone.now()
    with transaction.atomic():
        case = TakedownRequest.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.next_check_at is None or case.next_check_at > now:
            # Gone, or a duplicate message for work already done: under a backlog the fast
            # path and the sweeper can both hand out the same case, and this costs one query.
            return []
        if case.state == CaseState.AWAITING_CONFIRMATION:
            if case.confirm_by is not None and case.confirm_by <= now:
                case = transition(case, CaseState.EXPIRED, actor=ACTOR)
                _set_next_check(case, None)
            else:
                _set_next_check(case, case.confirm_by)
            return []
        targets = list(case.targets.select_related("content_item").order_by("pk"))
        fired = _climb_ladder(case, targets, now)
        if case.state == CaseState.APPROVED:
            case = transition(case, CaseState.REMOVING, actor=ACTOR)
        if case.state == CaseState.REMOVING and all(t.state in REMOVAL_DONE for t in targets):
            case = _close_removed(case)
        owed = [
            t.pk
            for t in targets
            if (action := desired_action(t, case.state)) is not None and _owed(t, action)
        ]
        retry_at = RemovalEffect.objects.filter(target_id__in=owed, done_at__isnull=True).aggregate(
            at=Min("next_attempt_at")
        )["at"]
        candidates = [_next_rung_at(case, targets, fired)]
        if owed:
            # Look again soon even if every task published now is lost.
            recheck = now + timedelta(seconds=max(settings.SWEEP_LEASE, settings.RETRY_FIRST))
            candidates.append(max(retry_at, recheck) if retry_at else recheck)
        _set_next_check(case, min((c for c in candidates if c is not None), default=None))
    return owed


def case_work(*, case_id: int, budget_seconds: float | None = None) -> list[int]:
    """Advance a case, then enforce its owed targets here while the budget lasts.

    Returns the targets left over (for the caller to hand out); none without a budget.
    """
    started = time.monotonic()
    owed = case_advance(case_id=case_id)
    for index, target_id in enumerate(owed):
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            return owed[index:]
        target_enforce(target_id=target_id)
    return []


def _set_next_check(case: TakedownRequest, at: datetime | None) -> None:
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=at, lease_until=None)


def _close_removed(case: TakedownRequest) -> TakedownRequest:
    case = transition(case, CaseState.REMOVED, actor=ACTOR)
    if case.whole_domain:
        suppression_create(
            kind=SuppressionKind.DOMAIN, value=case.whole_domain, actor=ACTOR, case=case
        )
    notify(case=case, kind="removed", audience=Audience.REQUESTER)
    return case


# --- Enforcing one target ------------------------------------------------------------------


def _claim_target(target_id: int, now: datetime) -> tuple[Target, str, datetime] | None:
    with transaction.atomic():
        target = (
            Target.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("case", "content_item")
            .filter(pk=target_id)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if target is None:
            return None  # gone, or another worker holds it
        action = desired_action(target, target.case.state)
        if action is None:
            return None
        target.lease_until = now + timedelta(seconds=settings.TARGET_LEASE)
        target.save(update_fields=["lease_until"])
    return target, action, target.lease_until


def target_enforce(*, target_id: int) -> bool:
    """Run every configured backend's outstanding action for one target, in order.

    True when all backends are done. A failing backend gets a retry time with backoff and
    stops the line (later backends wait for it), and the case is scheduled for that time.
    """
    now = timezone.now()
    claimed = _claim_target(target_id, now)
    if claimed is None:
        return False
    target, action, lease = claimed
    complete = True
    try:
        backends = configured_backends()
        effects = _effects_for(target, action, [b.name for b in backends])
        outstanding = [(b, effects[b.name]) for b in backends if effects[b.name].done_at is None]
        for position, (backend, effect) in enumerate(outstanding):
            if effect.next_attempt_at is not None and effect.next_attempt_at > timezone.now():
                complete = False
                break
            last = position == len(outstanding) - 1
            try:
                if backend.local:
                    # A local backend's change, its record and (when last) the target's outcome
                    # commit together or not at all.
                    with transaction.atomic():
                        backend.apply(target=target, action=action, key=effect.key)
                        _effect_done(effect)
                        if last:
                            _target_done(target, action)
                    continue
                backend.apply(target=target, action=action, key=effect.key)
            except RemovalFailed as exc:
                _effect_failed(effect, str(exc))
                complete = False
                break
            except SoftTimeLimitExceeded:
                raise  # the task is out of time: stop, the lease ends and the sweeper retries
            except Exception as exc:
                # An unexpected failure is still a failed attempt: recorded, backed off, retried.
                logger.exception("removal backend %s raised for target %s", backend.name, target.pk)
                _effect_failed(effect, f"unexpected {type(exc).__name__}")
                complete = False
                break
            _effect_done(effect)
            if last and not _finish(target, action):
                complete = False
        if complete and not outstanding and not _finish(target, action):
            # Every effect was done before (a worker died before recording the outcome).
            complete = False
    finally:
        # Only our own lease: if it ran out and another worker took the target, that one's stays.
        Target.objects.filter(pk=target.pk, lease_until=lease).update(lease_until=None)
    return complete


def _finish(target: Target, action: str) -> bool:
    """Record the target's outcome once its effects are done; on failure, come back later.

    The effects are already committed (a remote call cannot be taken back), so a failure here
    schedules the case for a retry, when `target_enforce` finds every effect done and finishes.
    """
    try:
        _target_done(target, action)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.exception("recording the outcome of target %s failed; retrying", target.pk)
        retry_at = timezone.now() + deadlines.retry_backoff(1)
        TakedownRequest.objects.filter(pk=target.case_id).filter(
            Q(next_check_at__isnull=True) | Q(next_check_at__gt=retry_at)
        ).update(next_check_at=retry_at)
        return False
    return True


def _effects_for(target: Target, action: str, backends: list[str]) -> dict[str, RemovalEffect]:
    """The target's effect row for each backend, created where missing (two queries)."""
    RemovalEffect.objects.bulk_create(
        [
            RemovalEffect(
                target=target, backend=name, action=action, key=effect_key(target, action, name)
            )
            for name in backends
        ],
        ignore_conflicts=True,
    )
    rows = RemovalEffect.objects.filter(target=target, action=action, backend__in=backends)
    effects = {effect.backend: effect for effect in rows}
    for effect in effects.values():
        effect.target = target  # already loaded, with its case
    return effects


def _effect_failed(effect: RemovalEffect, error: str) -> None:
    effect.attempts += 1
    effect.last_error = error[:300]
    effect.next_attempt_at = timezone.now() + deadlines.retry_backoff(effect.attempts)
    effect.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    case_id = effect.target.case_id
    # Make sure the sweeper comes back for it: no later than the retry time.
    TakedownRequest.objects.filter(pk=case_id).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__gt=effect.next_attempt_at)
    ).update(next_check_at=effect.next_attempt_at)
    logger.warning(
        "removal backend %s failed for target %s (attempt %d): %s",
        effect.backend,
        effect.target_id,
        effect.attempts,
        error,
    )


def _effect_done(effect: RemovalEffect) -> None:
    with joined_atomic():
        # The case row before its audit stream, as every writer does: no deadlock.
        TakedownRequest.objects.select_for_update().filter(pk=effect.target.case_id).exists()
        # Compare and set: of two workers finishing the same effect, one records it.
        marked = RemovalEffect.objects.filter(pk=effect.pk, done_at__isnull=True).update(
            attempts=F("attempts") + 1, done_at=timezone.now()
        )
        if not marked:
            return
        audit.append(
            stream=f"case:{effect.target.case.reference}",
            actor=f"system:{effect.backend}",
            action=f"effect.{effect.action}",
            data={"target": effect.target_id, "backend": effect.backend, "key": effect.key},
        )


def _target_done(target: Target, action: str) -> None:
    if action != RemovalAction.REMOVE:
        return
    with joined_atomic():
        case = TakedownRequest.objects.select_for_update().get(pk=target.case_id)
        current = (
            Target.objects.select_for_update(of=("self",))
            .select_related("content_item")
            .get(pk=target.pk)
        )
        if current.state in {TargetState.PENDING, TargetState.DISABLED}:
            # A target the fail-safe disabled met the deadline then: keep that moment.
            current = transition(
                current,
                TargetState.REMOVED,
                actor=ACTOR,
                update={"outcome_at": current.outcome_at or timezone.now()},
            )
        if current.content_item is not None and current.state == TargetState.REMOVED:
            suppression_create(
                kind=SuppressionKind.EXACT,
                value=normalise_url(current.content_item.source_url),
                actor=ACTOR,
                case=case,
                content_item=current.content_item,
            )
        remaining = case.targets.exclude(state__in=REMOVAL_DONE).exists()
        if case.state == CaseState.REMOVING and not remaining:
            _close_removed(case)
            # Closed late: one more look records the breach. Closed in time: nothing is left.
            late = case.deadline_at is not None and timezone.now() > case.deadline_at
            TakedownRequest.objects.filter(pk=case.pk).update(
                next_check_at=timezone.now() if late else None, lease_until=None
            )
