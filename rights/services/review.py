"""Staff decisions on cases: approve, reject (with reasons), decide each URL on its own, restore
wrongly removed content. Every decision writes its statement of reasons in its own transaction
(rights.services.decisions).

Each decision is a transition (audited, locked) followed by a kick of the deadline engine, which
carries out what the decision implies: removal, or restoring content the fail-safe disabled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import replace

from django.contrib.auth import get_user_model
from django.db import transaction

from rights import audit, clock, sor_templates
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, TakedownRequest, Target
from rights.normalise import visible_text
from rights.permissions import DECIDE_APPEAL, DECIDE_CASE, RESTORE_CASE
from rights.services.abuse import case_unfounded_withdraw
from rights.services.decisions import SorInput, sor_check, sor_draft, sor_record
from rights.services.notifications import notify
from rights.services.scheduling import case_kick
from rights.services.suppression import suppressions_release
from rights.states import CLOSED_CASE_STATES, OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import transition


def _staff(user_id: int) -> str:
    return f"staff:{user_id}"


def _check_decider(case: TakedownRequest, user_id: int, *, restore: bool = False) -> None:
    """The staff member holds the permission for this decision, whichever door they use (the
    console's pages check it too, the `takedown` command only here); and an appeal is decided
    by someone other than the decider whose decision it contests."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True, is_staff=True).first()
    appeal = bool(case.appeal_round) and case.state not in CLOSED_CASE_STATES
    needed = RESTORE_CASE if restore else DECIDE_APPEAL if appeal else DECIDE_CASE
    if user is None or not user.has_perm(needed):
        act = "restore content" if restore else "decide appeals" if appeal else "decide cases"
        raise DomainError(f"this staff account may not {act}", code="not_permitted")
    if case.appeal_round and user_id == case.first_decided_by_id:
        raise DomainError(
            "an appeal is decided by someone other than the first decider; ask a colleague",
            code="same_decider",
        )


def _scope(targets: list[Target], outcomes: Mapping[int, str]) -> dict[int, str]:
    """Each target's outcome once the decision is carried out: decided now, or as it stands."""
    return {t.pk: outcomes.get(t.pk, t.state) for t in targets}


def _approve(
    case: TakedownRequest, user_id: int, statement: SorInput | None, rejected: Set[int]
) -> TakedownRequest:
    """Approve the locked case: its open targets are removed by the engine, except `rejected`
    ones, which are refused now (a partial decision)."""
    now = clock.now()
    actor = _staff(user_id)
    targets = list(case.targets.order_by("pk"))
    data: dict[str, object] = {}
    if rejected:
        data = {"rejected": sorted(rejected)}
        if statement is not None:
            data["reasons_digest"] = audit.text_digest(statement.reasons)
    case = transition(
        case,
        CaseState.APPROVED,
        actor=actor,
        data=data,
        # A granted appeal replaces the refusal: its reasons no longer stand as the decision.
        # A partial decision refuses some URLs: its reasons are what the requester reads.
        update={
            "decided_by_id": user_id,
            "decided_at": now,
            "decision_reasons": statement.reasons if rejected and statement else "",
        },
    )
    outcomes: dict[int, str] = {}
    for target in targets:
        if target.state not in OPEN_TARGET_STATES:
            continue
        if target.pk in rejected:
            # Content the fail-safe disabled comes back: the engine restores it.
            transition(
                target,
                TargetState.REJECTED,
                actor=actor,
                update={"outcome_at": target.outcome_at or now},
            )
            outcomes[target.pk] = TargetState.REJECTED
        else:
            outcomes[target.pk] = TargetState.REMOVED
    if statement is None:
        kind = sor_templates.PARTIAL if rejected else sor_templates.REMOVAL
        statement = sor_draft(case, kind, now=now, targets=targets)
    sor_record(
        case=case,
        scope=_scope(targets, outcomes),
        statement=statement,
        decided_at=now,
        user_id=user_id,
        actor=actor,
        whole_domain_removal=bool(case.whole_domain),
    )
    if case.appeal_round > 0:
        # Granted on appeal: a finding that the request was manifestly unfounded falls with it.
        case_unfounded_withdraw(case=case, actor=actor)
    notify(case=case, kind="approved", audience=Audience.PARTNER)
    case_kick(case)
    return case


def _reject(
    case: TakedownRequest, user_id: int, reasons: str, statement: SorInput | None
) -> TakedownRequest:
    """Refuse what the locked case still asks for."""
    now = clock.now()
    actor = _staff(user_id)
    targets = list(case.targets.order_by("pk"))
    # An appeal against a partial removal that is turned down leaves the case as it was:
    # removed, with the refused URLs refused again.
    upheld_partial = case.state == CaseState.APPEALED and any(
        t.state == TargetState.REMOVED for t in targets
    )
    case = transition(
        case,
        CaseState.REMOVED if upheld_partial else CaseState.REJECTED,
        actor=actor,
        # The trail keeps a digest of the reasons, which may name people.
        data={"reasons_digest": audit.text_digest(reasons)},
        update={"decided_by_id": user_id, "decided_at": now, "decision_reasons": reasons},
    )
    outcomes: dict[int, str] = {}
    for target in targets:
        if target.state not in OPEN_TARGET_STATES:
            continue
        # A target the fail-safe disabled had its outcome then: keep that moment.
        transition(
            target,
            TargetState.REJECTED,
            actor=actor,
            update={"outcome_at": target.outcome_at or now},
        )
        outcomes[target.pk] = TargetState.REJECTED
    if statement is None:
        kind = sor_templates.PARTIAL if upheld_partial else sor_templates.REFUSAL
        statement = replace(sor_draft(case, kind, now=now, targets=targets), reasons=reasons)
    sor_record(
        case=case,
        scope=_scope(targets, outcomes),
        statement=statement,
        decided_at=now,
        user_id=user_id,
        actor=actor,
    )
    notify(case=case, kind="rejected", audience=Audience.REQUESTER)
    case_kick(case)
    return case


def _checked(statement: SorInput | None) -> SorInput | None:
    return sor_check(statement) if statement is not None else None


def _reasons(reasons: str, statement: SorInput | None, message: str) -> str:
    """The requester-facing reasons: the statement's, or those given alone (the bulk decision
    and the command line, whose statement is the template's with these reasons)."""
    if statement is not None:
        return statement.reasons
    reasons = visible_text(reasons)
    if not reasons:
        raise DomainError(message, field="reasons")
    return reasons


def case_approve(
    *, case: TakedownRequest, user_id: int, statement: SorInput | None = None
) -> TakedownRequest:
    """Approve every URL still open; the statement of reasons is the template's unless given."""
    statement = _checked(statement)
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        return _approve(case, user_id, statement, frozenset())


def case_reject(
    *,
    case: TakedownRequest,
    user_id: int,
    reasons: str = "",
    statement: SorInput | None = None,
) -> TakedownRequest:
    """Refuse every URL still open, with `statement` (or the template's with `reasons`)."""
    statement = _checked(statement)
    reasons = _reasons(reasons, statement, "a rejection needs its reasons")
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        return _reject(case, user_id, reasons, statement)


def case_decide(
    *,
    case: TakedownRequest,
    user_id: int,
    remove: Sequence[int],
    reject: Sequence[int],
    statement: SorInput,
) -> TakedownRequest:
    """Decide each open URL on its own: `remove` ones are removed, `reject` ones refused, in one
    decision with one statement of reasons. Every open URL is decided, each once. The case is
    approved when anything is removed (the engine removes it and closes the case removed), and
    rejected when nothing is."""
    statement = sor_check(statement)
    try:
        removing = {int(pk) for pk in remove}
        rejecting = {int(pk) for pk in reject}
    except (TypeError, ValueError) as exc:
        raise DomainError("URLs are named by their target ids", field="targets") from exc
    if removing & rejecting:
        raise DomainError("each URL is either removed or rejected, not both", field="targets")
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id)
        open_ids = set(
            case.targets.filter(state__in=OPEN_TARGET_STATES).values_list("pk", flat=True)
        )
        if not open_ids:
            raise DomainError(
                f"case {case.reference} has no URL left to decide", code="nothing_to_decide"
            )
        if (removing | rejecting) - open_ids:
            raise DomainError(
                "only this case's URLs still waiting for a decision can be decided",
                field="targets",
            )
        undecided = len(open_ids - removing - rejecting)
        if undecided:
            raise DomainError(
                f"decide every URL: {undecided} still without a decision", field="targets"
            )
        if removing:
            return _approve(case, user_id, statement, frozenset(rejecting))
        return _reject(case, user_id, statement.reasons, statement)


def case_restore(
    *,
    case: TakedownRequest,
    user_id: int,
    reasons: str = "",
    statement: SorInput | None = None,
) -> TakedownRequest:
    """Content was removed wrongly: the case goes through appeal to restored, and back up."""
    statement = _checked(statement)
    reasons = _reasons(reasons, statement, "restoring content needs the reasons")
    actor = _staff(user_id)
    digest = {"reasons_digest": audit.text_digest(reasons)}
    with transaction.atomic():
        case = case_lock(case.pk)
        _check_decider(case, user_id, restore=True)
        targets = list(case.targets.order_by("pk"))
        if not any(t.state == TargetState.REMOVED for t in targets):
            # Nothing came down, so there is nothing to restore: an appeal against a refusal
            # is decided by approving or rejecting it.
            raise DomainError(
                f"case {case.reference} removed nothing: there is nothing to restore",
                code="nothing_to_restore",
            )
        now = clock.now()
        if case.state == CaseState.REMOVED:
            case = transition(case, CaseState.APPEALED, actor=actor, data=digest)
        case = transition(
            case,
            CaseState.RESTORED,
            actor=actor,
            data=digest,
            update={"decided_by_id": user_id, "decided_at": now, "decision_reasons": reasons},
        )
        outcomes: dict[int, str] = {}
        for target in targets:
            if target.state == TargetState.REMOVED:
                transition(target, TargetState.RESTORED, actor=actor)
                outcomes[target.pk] = TargetState.RESTORED
        if statement is None:
            statement = replace(
                sor_draft(case, sor_templates.RESTORATION, now=now, targets=targets),
                reasons=reasons,
            )
        sor_record(
            case=case,
            scope=_scope(targets, outcomes),
            statement=statement,
            decided_at=now,
            user_id=user_id,
            actor=actor,
            restoring=True,
        )
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
