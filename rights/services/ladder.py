"""The escalation ladder and the fail-safe.

Rungs are fractions of the deadline (`rights.deadlines`): reminder, escalation, fail-safe,
breach. Each fires once per case (a unique row decides) and is audited. The fail-safe disables
every target still pending, in chunks of FAILSAFE_CHUNK, each its own short transaction, so a
case of any size finishes within its budget and a resumed fail-safe carries on where it was.
Each chunk records its statement of reasons (automated, the disabled targets its scope) with it.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from rights import audit, clock, deadlines, sor_templates
from rights.db import case_lock_if_any
from rights.deadlines import Rung
from rights.models import Audience, ContentItem, LadderRung, RemovalAction, TakedownRequest, Target
from rights.removal.catalogue import CatalogueBackend
from rights.services.decisions import sor_draft, sor_record
from rights.services.effects import ACTOR, effect_rows, effects_done
from rights.services.notifications import notify
from rights.states import CLOCK_RUNNING_STATES, CaseState, TargetState
from rights.workflow import transition

logger = logging.getLogger(__name__)

# Who hears of each rung.
RUNG_AUDIENCES: dict[str, tuple[str, ...]] = {
    Rung.REMINDER: (Audience.REVIEWERS,),
    Rung.ESCALATION: (Audience.LEADS,),
    Rung.FAILSAFE: (Audience.REVIEWERS, Audience.LEADS),
    Rung.BREACH: (Audience.LEADS,),
}
# Nobody has decided these yet.
UNDECIDED = frozenset({CaseState.OPEN, CaseState.IN_REVIEW, CaseState.APPEALED})


def _fire(case: TakedownRequest, rung: Rung, due_at: datetime, pending: int, now: datetime) -> bool:
    """Insert the rung's row; False if it had already fired (the constraint decides)."""
    try:
        with transaction.atomic():
            LadderRung.objects.create(
                case=case,
                round=case.appeal_round,
                rung=rung,
                fired_at=now,
                due_at=due_at,
                pending_targets=pending,
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


def climb_ladder(case: TakedownRequest, targets: list[Target], now: datetime) -> set[str]:
    """Fire every due rung that applies, up to and including the fail-safe, which is carried
    out after this transaction commits; the rungs fired for this case, before and now."""
    fired = set(case.rungs.filter(round=case.appeal_round).values_list("rung", flat=True))
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


def next_rung_at(case: TakedownRequest, targets: list[Target], fired: set[str]) -> datetime | None:
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


def review_reminder(case: TakedownRequest, now: datetime) -> datetime | None:
    """A case the fail-safe disabled still needs a decision: reviewers are reminded every
    REVIEW_REMINDER_INTERVAL until someone decides. Returns when the next reminder is due."""
    if case.state != CaseState.DISABLED_PENDING_REVIEW:
        return None
    since = (
        LadderRung.objects.filter(case=case, round=case.appeal_round, rung=Rung.FAILSAFE)
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


def _failsafe_chunk(case_id: int) -> bool:
    """Disable the next FAILSAFE_CHUNK targets still pending, in one short transaction.

    True when none is left pending (the case is then disabled pending review, if undecided).
    """
    catalogue = CatalogueBackend()
    with transaction.atomic():
        now = clock.now()
        case = case_lock_if_any(case_id)
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
        effects = effect_rows(case=case, targets=chunk, action=action, backends=[catalogue.name])
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
            effect = effects[(target.pk, catalogue.name)]
            item = items.get(target.content_item_id or 0)
            if item is not None:
                catalogue.apply_locked(target=disabled, item=item, action=action, key=effect.key)
        effects_done(case=case, effects=effects.values())
        if chunk:
            # A restriction by rule, with no person deciding: its own statement of reasons (DSA
            # Art. 17), with these targets as its scope, in the transaction that disables them.
            sor_record(
                case=case,
                scope={target.pk: TargetState.DISABLED for target in chunk},
                statement=sor_draft(case, sor_templates.FAILSAFE, now=now),
                decided_at=now,
                user_id=None,
                actor=ACTOR,
                automated_decision=True,
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
