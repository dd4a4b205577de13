"""Abuse controls (DSA Art. 23): a record of each requester's manifestly unfounded requests, a
warning, then a suspension, and lifting it.

The order is the service's to keep, whoever asks: a warning needs at least one request found
manifestly unfounded; a suspension needs a warning first and at least ABUSE_SUSPEND_AFTER
unfounded requests; only a suspension can be lifted, and lifting it clears the warning too, so
that a requester who abuses the doors again is warned again before a second suspension (the
trail keeps every warning). Who may act is the console's check (`rights.suspend_requester`).

Each step is audited on the requester's own stream (`requester:<id>`), marking a case also on
the case's stream, with counts and references only: the requester's details live on their row
and nowhere else. Each step is mailed to the requester from the outbox, with the reasons (the
requests found unfounded) and how to contest it.

Lock order, as intake takes them: the requester's row, then the case.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from rights import audit, clock
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, AuditEvent, Requester, TakedownRequest
from rights.services.notifications import notify
from rights.states import CaseState

__all__ = [
    "MARKABLE_STATES",
    "case_mark_unfounded",
    "case_unfounded_withdraw",
    "lift_refusal",
    "requester_lift",
    "requester_stream",
    "requester_suspend",
    "requester_warn",
    "suspend_after",
    "suspend_refusal",
    "unfounded_references",
    "warn_refusal",
]

UNFOUNDED_CASE_ACTION = "case.marked_unfounded"
UNFOUNDED_ACTION = "requester.unfounded"
# A request found manifestly unfounded and then granted on appeal no longer counts.
UNFOUNDED_WITHDRAWN_CASE_ACTION = "case.unfounded_withdrawn"
UNFOUNDED_WITHDRAWN_ACTION = "requester.unfounded_withdrawn"
# A request is found manifestly unfounded once it has been refused: rejected, or naming
# nothing we publish. Marking an open or granted case would contradict its own outcome.
MARKABLE_STATES = frozenset({CaseState.REJECTED, CaseState.NOT_FOUND})


def requester_stream(requester_id: int) -> str:
    """The audit stream of a requester: abuse controls and erasure, by id only (the same
    name as `Requester.actor`; the mails read the unfounded references from it)."""
    return f"requester:{requester_id}"


def suspend_after() -> int:
    """How many manifestly unfounded requests, after a warning, allow a suspension."""
    return settings.ABUSE_SUSPEND_AFTER


def _staff(user_id: int) -> str:
    return f"staff:{user_id}"


def _lock(requester_id: int) -> Requester:
    return Requester.objects.select_for_update(no_key=True).get(pk=requester_id)


def unfounded_references(requester: Requester) -> list[str]:
    """The references of the requester's cases found manifestly unfounded, oldest first, as the
    trail records them."""
    events = AuditEvent.objects.filter(
        stream=requester_stream(requester.pk),
        action__in=[UNFOUNDED_ACTION, UNFOUNDED_WITHDRAWN_ACTION],
    ).order_by("seq")
    withdrawn = {
        str(e.data.get("case"))
        for e in events
        if e.action == UNFOUNDED_WITHDRAWN_ACTION and isinstance(e.data, dict)
    }
    return [
        str(e.data.get("case"))
        for e in events
        if e.action == UNFOUNDED_ACTION
        and isinstance(e.data, dict)
        and str(e.data.get("case")) not in withdrawn
    ]


def case_unfounded_withdraw(*, case: TakedownRequest, actor: str) -> None:
    """A request found manifestly unfounded was granted after all (on appeal): it no longer
    counts towards a warning or a suspension. In the caller's transaction, with the case
    locked; nothing happens to a case that was never marked, or whose mark was withdrawn."""
    marks = set(
        AuditEvent.objects.filter(
            stream=case.audit_stream(),
            action__in=[UNFOUNDED_CASE_ACTION, UNFOUNDED_WITHDRAWN_CASE_ACTION],
        ).values_list("action", flat=True)
    )
    if UNFOUNDED_CASE_ACTION not in marks or UNFOUNDED_WITHDRAWN_CASE_ACTION in marks:
        return
    requester = _lock(case.requester_id)
    _count_unfounded(
        case,
        requester,
        change=-1,
        actor=actor,
        actions=(UNFOUNDED_WITHDRAWN_CASE_ACTION, UNFOUNDED_WITHDRAWN_ACTION),
    )


def _count_unfounded(
    case: TakedownRequest,
    requester: Requester,
    *,
    change: int,
    actor: str,
    actions: tuple[str, str],
) -> None:
    """Change the requester's count of unfounded requests by one case, recorded on the case's
    stream and the requester's (whose events the warning and suspension mails read)."""
    requester.unfounded_count = max(0, requester.unfounded_count + change)
    requester.save(update_fields=["unfounded_count"])
    case_action, requester_action = actions
    audit.append(
        stream=case.audit_stream(),
        actor=actor,
        action=case_action,
        data={"requester": requester.actor, "unfounded_count": requester.unfounded_count},
    )
    audit.append(
        stream=requester_stream(requester.pk),
        actor=actor,
        action=requester_action,
        data={"case": case.reference, "unfounded_count": requester.unfounded_count},
    )


def case_mark_unfounded(*, case: TakedownRequest, user_id: int) -> Requester:
    """A reviewer finds a refused request manifestly unfounded: the requester's count goes up,
    once per case however often it is marked. Returns the requester as it is now."""
    with transaction.atomic():
        requester = _lock(case.requester_id)
        case = case_lock(case.pk)
        # The trail is the record of which cases were marked (the case holds no flag of its own).
        if AuditEvent.objects.filter(
            stream=case.audit_stream(), action=UNFOUNDED_CASE_ACTION
        ).exists():
            return requester
        if case.state not in MARKABLE_STATES:
            label = CaseState(case.state).label.lower()
            raise DomainError(
                f"case {case.reference} is {label}: only a refused request (rejected, or "
                "naming nothing we publish) can be found manifestly unfounded",
                code="not_markable",
            )
        _count_unfounded(
            case,
            requester,
            change=1,
            actor=_staff(user_id),
            actions=(UNFOUNDED_CASE_ACTION, UNFOUNDED_ACTION),
        )
    return requester


def _erased(requester: Requester) -> DomainError:
    return DomainError(
        f"{requester} was erased: there is no one to warn, suspend or write to",
        code="requester_erased",
    )


def _record_and_mail(requester: Requester, *, user_id: int, action: str, kind: str) -> None:
    """The step's audit event on the requester's stream, and its mail (about their newest case,
    whose status link every requester mail carries)."""
    event = audit.append(
        stream=requester_stream(requester.pk),
        actor=_staff(user_id),
        action=action,
        data={"unfounded_count": requester.unfounded_count, "suspend_after": suspend_after()},
    )
    newest = requester.cases.order_by("-received_at", "-pk").first()
    if newest is not None:
        notify(
            case=newest,
            kind=kind,
            audience=Audience.REQUESTER,
            key_suffix=f"{kind}-{requester.pk}-{event.seq}",
        )


def warn_refusal(requester: Requester) -> DomainError | None:
    """Why the requester cannot be warned now, or None (a check: `requester_warn` acts)."""
    if requester.erased_at is not None:
        return _erased(requester)
    if requester.suspended_at is not None:
        return DomainError(f"{requester} is suspended already", code="already_suspended")
    if requester.warned_at is not None:
        return DomainError(
            f"{requester} was warned already, on {requester.warned_at:%Y-%m-%d}",
            code="already_warned",
        )
    if requester.unfounded_count < 1:
        return DomainError(
            f"{requester} has no request found manifestly unfounded: there is nothing to "
            "warn about",
            code="nothing_unfounded",
        )
    return None


def suspend_refusal(requester: Requester) -> DomainError | None:
    """Why the requester cannot be suspended now, or None."""
    needed = suspend_after()
    if requester.erased_at is not None:
        return _erased(requester)
    if requester.suspended_at is not None:
        return DomainError(f"{requester} is suspended already", code="already_suspended")
    if requester.warned_at is None:
        return DomainError(
            f"{requester} has not been warned: a warning comes before a suspension",
            code="not_warned",
        )
    if requester.unfounded_count < needed:
        return DomainError(
            f"{requester} has {requester.unfounded_count} request(s) found manifestly "
            f"unfounded; a suspension needs at least {needed}",
            code="too_few_unfounded",
        )
    return None


def lift_refusal(requester: Requester) -> DomainError | None:
    """Why the requester's suspension cannot be lifted now, or None."""
    if requester.erased_at is not None:
        return _erased(requester)
    if requester.suspended_at is None:
        return DomainError(
            f"{requester} is not suspended: only a suspension can be lifted",
            code="not_suspended",
        )
    return None


def requester_warn(*, requester: Requester, user_id: int) -> Requester:
    """The first step: the requester is told that requests were found manifestly unfounded and
    that more will suspend the processing of their requests."""
    with transaction.atomic():
        requester = _lock(requester.pk)
        refusal = warn_refusal(requester)
        if refusal is not None:
            raise refusal
        requester.warned_at = clock.now()
        requester.save(update_fields=["warned_at"])
        _record_and_mail(requester, user_id=user_id, action="requester.warned", kind="warned")
    return requester


def requester_suspend(*, requester: Requester, user_id: int) -> Requester:
    """Requests from this requester are no longer processed (every door refuses them) until
    the suspension is lifted. Only after a warning and ABUSE_SUSPEND_AFTER unfounded requests."""
    with transaction.atomic():
        requester = _lock(requester.pk)
        refusal = suspend_refusal(requester)
        if refusal is not None:
            raise refusal
        requester.suspended_at = clock.now()
        requester.save(update_fields=["suspended_at"])
        _record_and_mail(
            requester, user_id=user_id, action="requester.suspended", kind="suspended_notice"
        )
    return requester


def requester_lift(*, requester: Requester, user_id: int) -> Requester:
    """The suspension ends: requests are processed again. The warning is cleared with it (see
    the module's docstring); the unfounded count stays."""
    with transaction.atomic():
        requester = _lock(requester.pk)
        refusal = lift_refusal(requester)
        if refusal is not None:
            raise refusal
        requester.suspended_at = None
        requester.warned_at = None
        requester.save(update_fields=["suspended_at", "warned_at"])
        _record_and_mail(requester, user_id=user_id, action="requester.lifted", kind="lifted")
    return requester
