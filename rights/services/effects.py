"""Effects: what the removal backends owe each target, carried out and recorded once.

Each (target, backend, action) is a `RemovalEffect` row with an idempotency key. Every effect,
the fail-safe's included, is created by `effect_rows` and recorded done by `effects_done`, on
the case's audit stream; a local backend's change commits with its record. Remote effects (the
CMS webhook) on one content item are made one at a time, and each call is decided from the
item's current state just before it starts, under the item's lock: a restore decided earlier can
never reach the CMS after a removal decided later.

Lock order, as everywhere (`rights.db.case_lock`): the case first, then targets, then items in
id order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q

from rights import audit, clock, deadlines
from rights.db import case_lock, joined_atomic
from rights.errors import DomainError
from rights.models import (
    Audience,
    ContentItem,
    RemovalAction,
    RemovalEffect,
    SuppressionKind,
    TakedownRequest,
    Target,
)
from rights.normalise import normalise_url
from rights.removal import RemovalFailed, RemovalRefused
from rights.removal.registry import configured_backends
from rights.selectors import item_held_elsewhere
from rights.services.notifications import notify
from rights.services.scheduling import case_kick, schedule_no_later
from rights.services.suppression import suppression_create
from rights.states import OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import transition

logger = logging.getLogger(__name__)

ACTOR = "system:enforcement"
# Targets with these states have reached their final outcome in a removing case.
REMOVAL_DONE = frozenset({TargetState.REMOVED, TargetState.NOT_FOUND, TargetState.REJECTED})


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
        # Rejected, or withdrawn, after the fail-safe had disabled it (in this round): the
        # content goes back up.
        target.state in {TargetState.REJECTED, TargetState.WITHDRAWN}
        and RemovalEffect.objects.filter(
            target=target, action=RemovalAction.DISABLE, round=target.case.appeal_round
        ).exists()
    )
    if restore and not item_held_elsewhere(
        content_item_id=target.content_item_id, case_id=target.case_id
    ):
        return RemovalAction.RESTORE
    return None


def effects_owed(target: Target, action: str, backends: list[str]) -> bool:
    effects = list(
        RemovalEffect.objects.filter(
            target=target, action=action, round=target.case.appeal_round
        ).values_list("backend", "done_at", "dead_at")
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
    key = f"{case.reference}-t{target.pk}-{action}-{backend}"
    return f"{key}-r{case.appeal_round}" if case.appeal_round else key


def effect_key(target: Target, action: str, backend: str) -> str:
    """The idempotency key sent with one backend's action on one target."""
    return _effect_key(target.case, target, action, backend)


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
        case = case_lock(target.case_id)
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
        rows = effect_rows(
            case=target.case, targets=[target], action=action, backends=[b.name for b in backends]
        )
        effects = {b.name: rows[(target.pk, b.name)] for b in backends}
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
                        if action == RemovalAction.REMOVE:
                            # Our copy is gone: the crawler may not bring it back, whatever the
                            # remote backends still owe (a CMS that is down or refusing).
                            _suppress_item(target.case, target)
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


def targets_enforce(*, target_ids: list[int], budget_seconds: float | None = None) -> list[int]:
    """Enforce targets in order while the budget lasts; returns those left over."""
    started = time.monotonic()
    for index, target_id in enumerate(target_ids):
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            return target_ids[index:]
        target_enforce(target_id=target_id)
    return []


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
        schedule_no_later(target.case_id, retry_at)
        return False
    return True


def effect_rows(
    *, case: TakedownRequest, targets: list[Target], action: str, backends: list[str]
) -> dict[tuple[int, str], RemovalEffect]:
    """Each target's effect row for each backend, created where missing (two queries), keyed
    by (target id, backend); each row carries its target, with the case, already loaded."""
    RemovalEffect.objects.bulk_create(
        [
            RemovalEffect(
                target=target,
                backend=name,
                action=action,
                round=case.appeal_round,
                key=_effect_key(case, target, action, name),
            )
            for target in targets
            for name in backends
        ],
        ignore_conflicts=True,
    )
    by_id = {target.pk: target for target in targets}
    rows = RemovalEffect.objects.filter(
        target__in=targets, action=action, backend__in=backends, round=case.appeal_round
    )
    effects = {}
    for effect in rows:
        effect.target = by_id[effect.target_id]
        effect.target.case = case
        effects[(effect.target_id, effect.backend)] = effect
    return effects


def effects_done(*, case: TakedownRequest, effects: Iterable[RemovalEffect]) -> None:
    """Record effects done, each once, on the case's audit stream. The caller holds the case's
    lock, which every writer of its effects takes first: of two workers finishing the same
    effect, the second finds it done and records nothing."""
    by_id = {effect.pk: effect for effect in effects}
    fresh = list(
        RemovalEffect.objects.filter(pk__in=by_id, done_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not fresh:
        return
    RemovalEffect.objects.filter(pk__in=fresh).update(
        attempts=F("attempts") + 1, done_at=clock.now(), dead_at=None
    )
    for pk in fresh:
        effect = by_id[pk]
        audit.append(
            stream=case.audit_stream(),
            actor=f"system:{effect.backend}",
            action=f"effect.{effect.action}",
            data={"target": effect.target_id, "backend": effect.backend, "key": effect.key},
        )


def _effect_failed(effect: RemovalEffect, error: str) -> None:
    effect.attempts += 1
    effect.last_error = error[:300]
    effect.next_attempt_at = clock.now() + deadlines.retry_backoff(effect.attempts)
    effect.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    schedule_no_later(effect.target.case_id, effect.next_attempt_at)
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
    schedule_no_later(effect.target.case_id, until)


def _effect_dead(effect: RemovalEffect, error: str) -> None:
    """The other side refused for good: a dead letter, an alert to leads, an ERROR line."""
    attempts = effect.attempts + 1
    with transaction.atomic():
        case = case_lock(effect.target.case_id)
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
        case = case_lock(case_id)
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
        effects_done(case=case_lock(effect.target.case_id), effects=[effect])


def _suppress_item(case: TakedownRequest, target: Target) -> None:
    """The standing rule that keeps the target's article from being published again."""
    item = target.content_item
    if item is None:
        return
    suppression_create(
        kind=SuppressionKind.EXACT,
        value=normalise_url(item.source_url),
        actor=ACTOR,
        case=case,
        content_item=item,
    )


def case_suppress_domain(case: TakedownRequest) -> None:
    """A whole-domain case's rule, from the moment it is decided for removal: tomorrow's
    articles from the domain stay off even while today's are still being taken down."""
    if case.whole_domain:
        suppression_create(
            kind=SuppressionKind.DOMAIN, value=case.whole_domain, actor=ACTOR, case=case
        )


def _target_done(target: Target, action: str) -> None:
    if action != RemovalAction.REMOVE:
        return
    with joined_atomic():
        case = case_lock(target.case_id)
        current = (
            Target.objects.select_for_update(of=("self",))
            .select_related("content_item")
            .get(pk=target.pk)
        )
        now = clock.now()
        if current.state in OPEN_TARGET_STATES:
            # A target the fail-safe disabled met the deadline then: keep that moment.
            current = transition(
                current,
                TargetState.REMOVED,
                actor=ACTOR,
                update={"outcome_at": current.outcome_at or now},
            )
        if current.state == TargetState.REMOVED:
            _suppress_item(case, current)
        remaining = case.targets.exclude(state__in=REMOVAL_DONE).exists()
        if case.state == CaseState.REMOVING and not remaining:
            case_close(case)
            # Closed late: one more look records the breach. Closed in time: nothing is left.
            late = case.deadline_at is not None and now > case.deadline_at
            TakedownRequest.objects.filter(pk=case.pk).update(
                next_check_at=now if late else None, lease_until=None
            )


def case_close(case: TakedownRequest) -> TakedownRequest:
    """Every target has its outcome: closed removed, or, when nothing it named turned out to be
    ours under any spelling, closed not found (saying "removed" would be untrue)."""
    if not case.whole_domain and not case.targets.filter(state=TargetState.REMOVED).exists():
        case = transition(case, CaseState.NOT_FOUND, actor=ACTOR)
        notify(case=case, kind="not_found", audience=Audience.REQUESTER)
        return case
    case = transition(case, CaseState.REMOVED, actor=ACTOR)
    case_suppress_domain(case)
    # Decided URL by URL, with some refused: the message says which were not removed, and why.
    refused = case.targets.filter(state=TargetState.REJECTED).exists()
    notify(case=case, kind="partly_removed" if refused else "removed", audience=Audience.REQUESTER)
    return case
