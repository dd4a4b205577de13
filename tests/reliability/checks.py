"""What every whole-stack test checks when it is over: the promise was kept, provably."""

from __future__ import annotations

from collections import Counter

from rights import audit
from rights.models import AuditEvent, LadderRung, TakedownRequest
from rights.states import TARGET_OUTCOMES, CaseState, TargetState
from tests.stack import Stack


def assert_promise_kept(stack: Stack, references: list[str]) -> None:
    cases = list(
        TakedownRequest.objects.filter(reference__in=references).prefetch_related("targets")
    )
    assert len(cases) == len(references)
    removed = stack.receiver.effects_for("remove")
    disabled = stack.receiver.effects_for("disable")
    for case in cases:
        assert case.deadline_at is not None
        for target in case.targets.all():
            # An outcome for every target, before the deadline.
            assert target.state in TARGET_OUTCOMES, (case.reference, target.state)
            assert target.outcome_at is not None, (case.reference, target.pk)
            assert target.outcome_at <= case.deadline_at, (
                case.reference,
                target.outcome_at,
                case.deadline_at,
            )
            # Exactly one effect per target at the CMS for what happened to it.
            if target.state == TargetState.REMOVED:
                assert removed[target.pk] == 1, (case.reference, target.pk, removed[target.pk])
            if target.state == TargetState.DISABLED:
                assert disabled[target.pk] == 1, (case.reference, target.pk, disabled[target.pk])
        if case.trusted:
            assert case.state == CaseState.REMOVED, (case.reference, case.state)
        else:
            assert case.state == CaseState.DISABLED_PENDING_REVIEW, (case.reference, case.state)
    # Ladder rungs: each at most once per case (the constraint), each recorded in the trail once.
    rungs = Counter(
        (case_id, rung)
        for case_id, rung in LadderRung.objects.filter(case__reference__in=references).values_list(
            "case_id", "rung"
        )
    )
    assert all(count == 1 for count in rungs.values())
    assert not LadderRung.objects.filter(case__reference__in=references, rung="breach").exists()
    recorded = Counter(
        (stream, action)
        for stream, action in AuditEvent.objects.filter(
            stream__in=[f"case:{r}" for r in references], action__startswith="ladder."
        ).values_list("stream", "action")
    )
    assert all(count == 1 for count in recorded.values()), recorded
    assert sum(recorded.values()) == sum(rungs.values())
    untrusted = [c for c in cases if not c.trusted]
    for case in untrusted:
        assert LadderRung.objects.filter(case=case, rung="failsafe").count() == 1
    audit.verify()
