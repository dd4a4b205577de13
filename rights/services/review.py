"""Staff decisions on cases: approve, reject (with reasons), restore wrongly removed content.

Each decision is a transition (audited, locked) followed by a kick of the deadline engine, which
carries out what the decision implies: removal, or restoring content the fail-safe disabled.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from rights import audit, clock
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, TakedownRequest
from rights.services.notifications import notify
from rights.services.scheduling import case_kick
from rights.services.suppression import suppressions_release
from rights.states import CLOSED_CASE_STATES, OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import transition


def _staff(user_id: int) -> str:
    return f"staff:{user_id}"


def _check_decider(case: TakedownRequest, user_id: int) -> None:
    """An appeal is decided by someone other than the decider whose decision it contests."""
    if case.appeal_round and user_id == case.first_decided_by_id:
        raise DomainError(
            "an appeal is decided by someone other than the first decider; ask a colleague",
            code="same_decider",
        )


def case_approve(*, case: TakedownRequest, user_id: int) -> TakedownRequest:
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        case = transition(
            case,
            CaseState.APPROVED,
            actor=_staff(user_id),
            # A granted appeal replaces the refusal: its reasons no longer stand as the decision.
            update={"decided_by_id": user_id, "decided_at": clock.now(), "decision_reasons": ""},
        )
        case_kick(case)
    return case


def case_reject(*, case: TakedownRequest, user_id: int, reasons: str) -> TakedownRequest:
    reasons = reasons.strip() if isinstance(reasons, str) else ""
    if not reasons:
        raise DomainError("a rejection needs its reasons", field="reasons")
    with transaction.atomic():
        now = clock.now()
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        # An appeal against a partial removal that is turned down leaves the case as it was:
        # removed, with the refused URLs refused again.
        upheld_partial = case.state == CaseState.APPEALED and (
            case.targets.filter(state=TargetState.REMOVED).exists()
        )
        case = transition(
            case,
            CaseState.REMOVED if upheld_partial else CaseState.REJECTED,
            actor=_staff(user_id),
            # The trail keeps a digest of the reasons, which may name people.
            data={"reasons_digest": audit.text_digest(reasons)},
            update={"decided_by_id": user_id, "decided_at": now, "decision_reasons": reasons},
        )
        for target in case.targets.filter(state__in=OPEN_TARGET_STATES):
            # A target the fail-safe disabled had its outcome then: keep that moment.
            transition(
                target,
                TargetState.REJECTED,
                actor=_staff(user_id),
                update={"outcome_at": target.outcome_at or now},
            )
        notify(case=case, kind="rejected", audience=Audience.REQUESTER)
        case_kick(case)
    return case


def case_restore(*, case: TakedownRequest, user_id: int, reasons: str) -> TakedownRequest:
    """Content was removed wrongly: the case goes through appeal to restored, and back up."""
    reasons = reasons.strip() if isinstance(reasons, str) else ""
    if not reasons:
        raise DomainError("restoring content needs the reasons", field="reasons")
    actor = _staff(user_id)
    digest = {"reasons_digest": audit.text_digest(reasons)}
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        if not case.targets.filter(state=TargetState.REMOVED).exists():
            # Nothing came down, so there is nothing to restore: an appeal against a refusal
            # is decided by approving or rejecting it.
            raise DomainError(
                f"case {case.reference} removed nothing: there is nothing to restore",
                code="nothing_to_restore",
            )
        if case.state == CaseState.REMOVED:
            case = transition(case, CaseState.APPEALED, actor=actor, data=digest)
        case = transition(
            case,
            CaseState.RESTORED,
            actor=actor,
            data=digest,
            update={
                "decided_by_id": user_id,
                "decided_at": clock.now(),
                "decision_reasons": reasons,
            },
        )
        for target in case.targets.filter(state=TargetState.REMOVED):
            transition(target, TargetState.RESTORED, actor=actor)
        suppressions_release(case=case, actor=actor)
        notify(case=case, kind="restored", audience=Audience.REQUESTER)
        case_kick(case)
    return case


def case_assign(
    *, case: TakedownRequest, assignee_id: int | None, actor_id: int
) -> TakedownRequest:
    """Put a case in a colleague's hands (or one's own: a claim), or nobody's (`None`).

    An assignment says who is working on the case; it is not a lock, and anyone who may decide
    still can. It is audited on the case's stream (`case.assigned`), naming staff by id only.
    """
    if assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=assignee_id).first()
        may_decide = assignee is not None and (
            assignee.has_perm("rights.decide_case") or assignee.has_perm("rights.decide_appeal")
        )
        if assignee is None or not (assignee.is_active and assignee.is_staff and may_decide):
            raise DomainError(
                "cases are assigned to active staff who may decide them", field="assignee"
            )
    with transaction.atomic():
        case = case_lock(case.pk)
        if case.state in CLOSED_CASE_STATES:
            raise DomainError(
                f"case {case.reference} is closed: there is nothing to assign", code="case_closed"
            )
        if case.assignee_id == assignee_id:
            return case
        previous = case.assignee_id
        case.assignee_id = assignee_id
        case.save(update_fields=["assignee", "updated_at"])
        audit.append(
            stream=case.audit_stream(),
            actor=_staff(actor_id),
            action="case.assigned",
            # Not a transition: no "to" key, so audit_verify's state check passes it by.
            data={
                "assignee": _staff(assignee_id) if assignee_id is not None else None,
                "previous": _staff(previous) if previous is not None else None,
            },
        )
    return case
