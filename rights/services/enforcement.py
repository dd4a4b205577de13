"""Enforcement: the deadline engine's services.

The database is the source of truth, and its clock is the clock (`rights.clock.now()`): every
lease, due time and retry time is compared across hosts. Each case carries `next_check_at`, the
moment it next needs attention (a ladder rung, removal work, a reminder, an expiry), and the
sweeper claims due cases with `SELECT ... FOR UPDATE SKIP LOCKED` plus a lease, then hands them
to `case_advance`. Tasks are published as a fast path; anything lost is found again by the next
sweep once its lease ends.

`case_advance` works in steps that each commit on their own: the ladder (rungs are never undone
by anything that comes after them), the fail-safe in chunks of FAILSAFE_CHUNK targets (a case of
any size finishes within its budget, and a resumed fail-safe carries on where it was), then the
removal work that the case still owes, which is where the backends' configuration is read.

Lock order: the case row first, always; then its targets and items (items in id order); audit
stream heads are taken as events are appended, under the case lock. Two workers therefore
serialise on the case and never deadlock.

Remote effects (the CMS webhook) on one content item are made one at a time, and each call is
decided from the item's current state just before it starts, under the item's lock: a restore
decided earlier can never reach the CMS after a removal decided later.
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
from django.db.models import F, Max, Min, Q

from rights import audit, clock, deadlines
from rights.db import joined_atomic
from rights.deadlines import Rung
from rights.dispatch import enqueue
from rights.errors import DomainError
from rights.models import (
    Audience,
    ContentItem,
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
from rights.removal import RemovalFailed, RemovalRefused
from rights.removal.catalogue import CatalogueBackend
from rights.removal.registry import configured_backends
from rights.selectors import item_held_elsewhere
from rights.services.notifications import notify
from rights.services.suppression import suppression_create
from rights.states import CLOCK_RUNNING_STATES, CaseState, TargetState
from rights.task_names import TaskName
from rights.workflow import transition

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
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=clock.now())
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


# --- The ladder ----------------------------------------------------------------------------


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
    """Fire every due rung that applies, up to and including the fail-safe, which is carried
    out after this transaction commits; the rungs fired for this case, before and now."""
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
            # Later rungs are judged once the fail-safe has disabled what it must.
            break
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


def _review_reminder(case: TakedownRequest, now: datetime) -> datetime | None:
    """A case the fail-safe disabled still needs a decision: reviewers are reminded every
    REVIEW_REMINDER_INTERVAL until someone decides. Returns when the next reminder is due."""
    if case.state != CaseState.DISABLED_PENDING_REVIEW:
        return None
    since = (
        LadderRung.objects.filter(case=case, rung=Rung.FAILSAFE)
        .values_list("fired_at", flat=True)
        .first()
    ) or case.updated_at
    interval = timedelta(seconds=settings.REVIEW_REMINDER_INTERVAL)
    # Numbered by the intervals passed, so an engine that was down sends one, not a burst.
    number = int((now - since) / interval)
    if number >= 1 and notify(
        case=case, kind="pending_review", audience=Audience.REVIEWERS, key_suffix=str(number)
    ):
        audit.append(
            stream=case.audit_stream(),
            actor=ACTOR,
            action="review.reminded",
            data={"reminder": number},
        )
    return since + interval * (number + 1)


# --- The fail-safe -------------------------------------------------------------------------


def _failsafe_chunk(case_id: int) -> bool:
    """Disable the next FAILSAFE_CHUNK targets still pending, in one short transaction.

    True when none is left pending (the case is then disabled pending review, if undecided).
    """
    catalogue = CatalogueBackend()
    with transaction.atomic():
        now = clock.now()
        case = TakedownRequest.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.state not in CLOCK_RUNNING_STATES:
            return True
        chunk = list(
            Target.objects.select_for_update(of=("self",))
            .filter(case=case, state=TargetState.PENDING)
            .order_by("pk")[: settings.FAILSAFE_CHUNK]
        )
        # Items in id order: two fail-safes sharing items lock them in the same order.
        item_ids = {t.content_item_id for t in chunk if t.content_item_id is not None}
        items = {
            item.pk: item
            for item in ContentItem.objects.select_for_update()
            .filter(pk__in=item_ids)
            .order_by("pk")
        }
        action = RemovalAction.DISABLE
        RemovalEffect.objects.bulk_create(
            [
                RemovalEffect(
                    target=t,
                    backend=catalogue.name,
                    action=action,
                    key=_effect_key(case, t, action, catalogue.name),
                )
                for t in chunk
            ],
            ignore_conflicts=True,
        )
        effects = {
            effect.target_id: effect
            for effect in RemovalEffect.objects.filter(
                target__in=chunk, backend=catalogue.name, action=action
            )
        }
        for target in chunk:
            disabled = transition(
                target,
                TargetState.DISABLED,
                actor=ACTOR,
                data={"rung": Rung.FAILSAFE},
                update={"outcome_at": now},
                stream=case.audit_stream(),
            )
            disabled.case = case
            # The page goes 451 in this same transaction, and the effect is recorded with it so
            # that a later decision knows there is something to restore. Other backends follow
            # in target_enforce.
            effect = effects[target.pk]
            item = items.get(target.content_item_id or 0)
            if item is not None:
                catalogue.apply_locked(target=disabled, item=item, action=action, key=effect.key)
        # The chunk's effects are done together; each is recorded on the case's stream.
        fresh = [effects[t.pk] for t in chunk if effects[t.pk].done_at is None]
        RemovalEffect.objects.filter(pk__in=[e.pk for e in fresh]).update(
            attempts=F("attempts") + 1, done_at=now
        )
        for effect in fresh:
            audit.append(
                stream=case.audit_stream(),
                actor=f"system:{effect.backend}",
                action=f"effect.{effect.action}",
                data={"target": effect.target_id, "backend": effect.backend, "key": effect.key},
            )
        remaining = (
            len(chunk) == settings.FAILSAFE_CHUNK
            and case.targets.filter(state=TargetState.PENDING).exists()
        )
        if not remaining and case.state in UNDECIDED:
            transition(
                case, CaseState.DISABLED_PENDING_REVIEW, actor=ACTOR, data={"rung": "failsafe"}
            )
            notify(case=case, kind="disabled", audience=Audience.REQUESTER)
    return not remaining


def failsafe_continue(*, case_id: int, budget_seconds: float | None = None) -> bool:
    """Carry out a fired fail-safe, chunk after chunk; True once no target is left pending.

    False when the budget ran out first (at least one chunk is always done): the caller hands
    the case back, and the next run carries on with the targets still pending.
    """
    started = time.monotonic()
    while not _failsafe_chunk(case_id):
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            return False
    return True


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


def _owed(target: Target, action: str, backends: list[str]) -> bool:
    effects = list(
        RemovalEffect.objects.filter(target=target, action=action).values_list(
            "backend", "done_at", "dead_at"
        )
    )
    if any(dead is not None and done is None for _, done, dead in effects):
        return False  # a dead letter stops this target's line until staff retry it
    if action == RemovalAction.REMOVE and target.state in {
        TargetState.PENDING,
        TargetState.DISABLED,
    }:
        # Even with every effect done, the target's own outcome may not have been recorded
        # yet (a worker died in between): target_enforce finishes it.
        return True
    done = {backend for backend, done_at, _ in effects if done_at is not None}
    return bool(set(backends) - done)


def _effect_key(case: TakedownRequest, target: Target, action: str, backend: str) -> str:
    return f"{case.reference}-t{target.pk}-{action}-{backend}"


def effect_key(target: Target, action: str, backend: str) -> str:
    """The idempotency key sent with one backend's action on one target."""
    return _effect_key(target.case, target, action, backend)


@dataclass(frozen=True)
class _Ladder:
    fired: set[str]
    failsafe_owed: bool
    reminder_at: datetime | None


def _ladder_step(case_id: int, now: datetime, *, due_only: bool = True) -> _Ladder | None:
    """Expiry, the due rungs and reminders, in a transaction of their own; None when there is
    nothing more to do for this case now."""
    with transaction.atomic():
        case = TakedownRequest.objects.select_for_update().filter(pk=case_id).first()
        if case is None:
            return None
        if due_only and (case.next_check_at is None or case.next_check_at > now):
            # A duplicate message for work already done: under a backlog the fast path and the
            # sweeper can both hand out the same case, and this costs a query or two.
            return None
        if case.state == CaseState.AWAITING_CONFIRMATION:
            if case.confirm_by is not None and case.confirm_by <= now:
                case = transition(case, CaseState.EXPIRED, actor=ACTOR)
                _set_next_check(case, None)
            else:
                _set_next_check(case, case.confirm_by)
            return None
        targets = list(case.targets.order_by("pk"))
        fired = _climb_ladder(case, targets, now)
        failsafe_owed = (
            Rung.FAILSAFE in fired
            and case.state in CLOCK_RUNNING_STATES
            and any(t.state == TargetState.PENDING for t in targets)
        )
        if failsafe_owed:
            # Due until it is done: if this process dies mid-way, the next sweep resumes it.
            TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=now)
        return _Ladder(
            fired=fired,
            failsafe_owed=failsafe_owed,
            reminder_at=_review_reminder(case, now),
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
        case = TakedownRequest.objects.select_for_update().filter(pk=case_id).first()
        if case is None:
            return []
        targets = list(case.targets.select_related("content_item").order_by("pk"))
        if case.state == CaseState.APPROVED:
            case = transition(case, CaseState.REMOVING, actor=ACTOR)
        if case.state == CaseState.REMOVING and all(t.state in REMOVAL_DONE for t in targets):
            case = _close_removed(case)
        backends = [backend.name for backend in configured_backends()]
        owed = [
            t.pk
            for t in targets
            if (action := desired_action(t, case.state)) is not None and _owed(t, action, backends)
        ]
        retry_at = RemovalEffect.objects.filter(
            target_id__in=owed, done_at__isnull=True, dead_at__isnull=True
        ).aggregate(at=Min("next_attempt_at"))["at"]
        candidates = [_next_rung_at(case, targets, ladder.fired), ladder.reminder_at]
        if owed:
            # Look again soon even if every task published now is lost.
            recheck = now + timedelta(seconds=max(settings.SWEEP_LEASE, settings.RETRY_FIRST))
            candidates.append(max(retry_at, recheck) if retry_at else recheck)
        _set_next_check(case, min((c for c in candidates if c is not None), default=None))
    return owed


def targets_enforce(*, target_ids: list[int], budget_seconds: float | None = None) -> list[int]:
    """Enforce targets in order while the budget lasts; returns those left over."""
    started = time.monotonic()
    for index, target_id in enumerate(target_ids):
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            return target_ids[index:]
        target_enforce(target_id=target_id)
    return []


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


def _set_next_check(case: TakedownRequest, at: datetime | None) -> None:
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=at, lease_until=None)


def _close_removed(case: TakedownRequest) -> TakedownRequest:
    """Every target has its outcome: closed removed, or, when nothing it named turned out to be
    ours under any spelling, closed not found (saying "removed" would be untrue)."""
    if not case.whole_domain and not case.targets.filter(state=TargetState.REMOVED).exists():
        case = transition(case, CaseState.NOT_FOUND, actor=ACTOR)
        notify(case=case, kind="not_found", audience=Audience.REQUESTER)
        return case
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


def _remote_begin(
    target: Target, action: str, effect: RemovalEffect, lease: datetime
) -> datetime | None:
    """Just before a remote call: is it still the call to make, and is no other remote call in
    flight for the same content? Returns the renewed lease of the target (and the call), or None
    when the call must not be made now.

    Decided under the item's lock from the current states, not from the claim: every remote
    call on an item starts under that lock, one after another, so whatever was decided last is
    what the CMS hears last.
    """
    with transaction.atomic():
        now = clock.now()
        case = TakedownRequest.objects.select_for_update().get(pk=target.case_id)
        current = (
            Target.objects.select_for_update(of=("self",))
            .select_related("content_item")
            .get(pk=target.pk)
        )
        if current.lease_until != lease:
            return None  # our lease ran out and another worker holds the target now
        item_id = current.content_item_id
        if item_id is not None:
            ContentItem.objects.select_for_update().filter(pk=item_id).exists()
        current.case = case
        if desired_action(current, case.state) != action:
            return None  # decided otherwise since the claim; the case is looked at again
        if item_id is not None:
            busy_until = (
                RemovalEffect.objects.filter(target__content_item_id=item_id, call_until__gt=now)
                .exclude(pk=effect.pk)
                .aggregate(at=Max("call_until"))["at"]
            )
            if busy_until is not None:
                # Another case's call on the same content is in flight: ours follows it, looking
                # again soon (that call usually ends well before its lease does).
                retry = timedelta(seconds=settings.RETRY_FIRST)
                _effect_wait(effect, min(busy_until, now + retry))
                return None
        until = now + timedelta(seconds=settings.TARGET_LEASE)
        Target.objects.filter(pk=target.pk).update(lease_until=until)
        RemovalEffect.objects.filter(pk=effect.pk).update(call_until=until)
    return until


def target_enforce(*, target_id: int) -> bool:
    """Run every configured backend's outstanding action for one target, in order.

    True when all backends are done. A failing backend gets a retry time with backoff and
    stops the line (later backends wait for it), and the case is scheduled for that time; one
    that refuses for good leaves a dead letter, which also stops the line until staff retry it.
    """
    now = clock.now()
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
            if effect.dead_at is not None or (
                effect.next_attempt_at is not None and effect.next_attempt_at > now
            ):
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
                renewed = _remote_begin(target, action, effect, lease)
                if renewed is None:
                    complete = False
                    break
                lease = renewed
                try:
                    backend.apply(target=target, action=action, key=effect.key)
                finally:
                    RemovalEffect.objects.filter(pk=effect.pk).update(call_until=None)
            except RemovalRefused as exc:
                _effect_dead(effect, str(exc))
                complete = False
                break
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
        retry_at = clock.now() + deadlines.retry_backoff(1)
        _schedule_no_later(target.case_id, retry_at)
        return False
    return True


def _schedule_no_later(case_id: int, at: datetime) -> None:
    """Make sure the sweeper comes back for the case no later than `at`."""
    TakedownRequest.objects.filter(pk=case_id).filter(
        Q(next_check_at__isnull=True) | Q(next_check_at__gt=at)
    ).update(next_check_at=at)


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
    effect.next_attempt_at = clock.now() + deadlines.retry_backoff(effect.attempts)
    effect.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    _schedule_no_later(effect.target.case_id, effect.next_attempt_at)
    logger.warning(
        "removal backend %s failed for target %s (attempt %d): %s",
        effect.backend,
        effect.target_id,
        effect.attempts,
        error,
    )


def _effect_wait(effect: RemovalEffect, until: datetime) -> None:
    """Not an attempt: the effect waits its turn behind another call on the same content."""
    RemovalEffect.objects.filter(pk=effect.pk).update(next_attempt_at=until)
    _schedule_no_later(effect.target.case_id, until)


def _effect_dead(effect: RemovalEffect, error: str) -> None:
    """The other side refused for good: a dead letter, an alert to leads, an ERROR line."""
    attempts = effect.attempts + 1
    with transaction.atomic():
        case = TakedownRequest.objects.select_for_update().get(pk=effect.target.case_id)
        marked = RemovalEffect.objects.filter(
            pk=effect.pk, done_at__isnull=True, dead_at__isnull=True
        ).update(attempts=attempts, last_error=error[:300], dead_at=clock.now())
        if not marked:
            return
        audit.append(
            stream=case.audit_stream(),
            actor=f"system:{effect.backend}",
            action="effect.dead",
            data={
                "target": effect.target_id,
                "backend": effect.backend,
                "key": effect.key,
                "attempts": attempts,
            },
        )
        notify(
            case=case,
            kind="dead_letter",
            audience=Audience.LEADS,
            key_suffix=f"{effect.pk}.{attempts}",
        )
    logger.error(
        "removal backend %s refused target %s of case %s for good (%s): a dead letter until "
        "staff retry it",
        effect.backend,
        effect.target_id,
        case.reference,
        error,
    )


def effect_retry(*, effect_id: int, actor: str) -> RemovalEffect:
    """Staff put a dead letter back in line: it is tried again at once, then with backoff."""
    with transaction.atomic():
        case_id = (
            RemovalEffect.objects.filter(pk=effect_id).values_list("target__case_id", flat=True)
        ).first()
        if case_id is None:
            raise DomainError("no such removal effect", code="not_found")
        case = TakedownRequest.objects.select_for_update().get(pk=case_id)
        effect = RemovalEffect.objects.select_for_update().get(pk=effect_id)
        if effect.done_at is not None or effect.dead_at is None:
            raise DomainError(f"removal effect {effect.key} is not a dead letter")
        effect.dead_at = None
        effect.next_attempt_at = clock.now()
        effect.save(update_fields=["dead_at", "next_attempt_at"])
        audit.append(
            stream=case.audit_stream(),
            actor=actor,
            action="effect.retried",
            data={"target": effect.target_id, "backend": effect.backend, "key": effect.key},
        )
        case_kick(case)
    return effect


def _effect_done(effect: RemovalEffect) -> None:
    with joined_atomic():
        # The case row before its audit stream, as every writer does: no deadlock.
        TakedownRequest.objects.select_for_update().filter(pk=effect.target.case_id).exists()
        # Compare and set: of two workers finishing the same effect, one records it.
        marked = RemovalEffect.objects.filter(pk=effect.pk, done_at__isnull=True).update(
            attempts=F("attempts") + 1, done_at=clock.now(), dead_at=None
        )
        if not marked:
            return
        audit.append(
            stream=effect.target.case.audit_stream(),
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
        now = clock.now()
        if current.state in {TargetState.PENDING, TargetState.DISABLED}:
            # A target the fail-safe disabled met the deadline then: keep that moment.
            current = transition(
                current,
                TargetState.REMOVED,
                actor=ACTOR,
                update={"outcome_at": current.outcome_at or now},
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
            late = case.deadline_at is not None and now > case.deadline_at
            TakedownRequest.objects.filter(pk=case.pk).update(
                next_check_at=now if late else None, lease_until=None
            )
