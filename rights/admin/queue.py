"""The review queue: the case list as reviewers work it.

Open cases, soonest deadline first, each with its time left and how far up the escalation
ladder it has climbed; filters for a reviewer's own cases, overdue ones and appeals; claim and
assign; and decisions on many cases at once, after a page that says what will happen to each.
Every figure on a row is part of the one list query (subqueries, no per-row queries).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse

from rights import clock
from rights.admin import permissions as perms
from rights.admin.base import as_id
from rights.deadlines import Rung
from rights.errors import DomainError
from rights.models import LadderRung, TakedownRequest, Target
from rights.permissions import DECIDE_APPEAL, DECIDE_CASE, RESTORE_CASE
from rights.services import review
from rights.states import CLOSED_CASE_STATES, CaseState, TargetState, is_allowed

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

# How far up the ladder a case's current round has climbed, as a number that sorts.
RUNG_RANK: dict[str, int] = {
    Rung.REMINDER: 1,
    Rung.ESCALATION: 2,
    Rung.FAILSAFE: 3,
    Rung.BREACH: 4,
}
STAGE_LABELS: dict[int, str] = {
    0: "none",
    1: "reminder",
    2: "escalation",
    3: "fail-safe",
    4: "breached",
}
# States a case waits in for a person's decision.
AWAITING_DECISION = frozenset(
    {CaseState.OPEN, CaseState.IN_REVIEW, CaseState.DISABLED_PENDING_REVIEW, CaseState.APPEALED}
)
# Open for staff: not closed, and not an unconfirmed web request (which has no clock yet).
NOT_OPEN = sorted(CLOSED_CASE_STATES | {CaseState.AWAITING_CONFIRMATION})
OPEN = ~Q(state__in=NOT_OPEN)


def request_now(request: HttpRequest) -> datetime:
    """The service's clock, read once per request: every row and filter uses the same now."""
    now: datetime | None = getattr(request, "_rights_queue_now", None)
    if now is None:
        now = clock.now()
        request._rights_queue_now = now  # type: ignore[attr-defined]
    return now


def queue_annotate(cases: QuerySet[TakedownRequest], now: datetime) -> QuerySet[TakedownRequest]:
    """Each case's URL count, ladder stage (of its current round) and time left, in the list
    query itself: subqueries rather than joins, so that no GROUP BY spans the row."""
    rank = Case(
        *[When(rung=rung, then=Value(n)) for rung, n in RUNG_RANK.items()],
        default=Value(0),
        output_field=IntegerField(),
    )
    stage = (
        LadderRung.objects.filter(case=OuterRef("pk"), round=OuterRef("appeal_round"))
        .annotate(rank=rank)
        .order_by("-rank")
        .values("rank")[:1]
    )
    targets = (
        Target.objects.filter(case=OuterRef("pk"))
        .order_by()
        .values("case")
        .annotate(n=Count("pk"))
        .values("n")
    )
    removed = targets.filter(state=TargetState.REMOVED)
    return cases.annotate(
        target_count=Coalesce(Subquery(targets, output_field=IntegerField()), 0),
        removed_count=Coalesce(Subquery(removed, output_field=IntegerField()), 0),
        ladder_rank=Coalesce(Subquery(stage, output_field=IntegerField()), 0),
        time_left=ExpressionWrapper(
            F("deadline_at") - Value(now, output_field=DateTimeField()),
            output_field=DurationField(),
        ),
    )


def duration_words(delta: timedelta) -> str:
    """'1 d 3 h', '3 h 12 min', '42 min', 'under a minute'."""
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return "under a minute"


def time_left_words(case: TakedownRequest) -> tuple[str, bool]:
    """The time left to a case's deadline in words, and whether it is overdue."""
    if case.state in CLOSED_CASE_STATES:
        return "closed", False
    left: timedelta | None = getattr(case, "time_left", None)
    if left is None:
        return "no clock yet", False
    if left <= timedelta(0):
        return f"overdue by {duration_words(-left)}", True
    return f"{duration_words(left)} left", False


# --- Filters ---------------------------------------------------------------------------------


class QueueFilter(admin.SimpleListFilter):
    """Which cases: open ones unless asked otherwise. A search or a state filter looks through
    every case (a reviewer looking a reference up expects to find it, open or not)."""

    title = "queue"
    parameter_name = "show"

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.widened = bool(request.GET.get("q", "").strip()) or any(
            key.startswith("state") for key in request.GET
        )

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("open", "Open"),
            ("decide", "Waiting for a decision"),
            ("unconfirmed", "Not yet confirmed"),
            ("closed", "Closed"),
            ("all", "All"),
        ]

    def value(self) -> str:
        chosen = super().value()
        if chosen in {"open", "decide", "unconfirmed", "closed", "all"}:
            return str(chosen)
        return "all" if self.widened else "open"

    def choices(self, changelist: Any) -> Iterator[_ListFilterChoices]:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "open":
            return queryset.filter(OPEN)
        if value == "decide":
            return queryset.filter(state__in=sorted(AWAITING_DECISION))
        if value == "unconfirmed":
            return queryset.filter(state=CaseState.AWAITING_CONFIRMATION)
        if value == "closed":
            return queryset.filter(state__in=sorted(CLOSED_CASE_STATES))
        return queryset


class MineFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Assigned to me"), ("nobody", "Nobody")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "1":
            return queryset.filter(assignee_id=request.user.pk)
        if self.value() == "nobody":
            return queryset.filter(assignee__isnull=True)
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Overdue (past the deadline, still open)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "1":
            return queryset.filter(OPEN, deadline_at__lt=request_now(request))
        return queryset


class AppealsFilter(admin.SimpleListFilter):
    title = "appeals"
    parameter_name = "appeals"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Appeals")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "1":
            return queryset.filter(Q(state=CaseState.APPEALED) | Q(OPEN, appeal_round__gt=0))
        return queryset


# --- Decisions on many cases -------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    name: str  # the action's suffix and the page's wording
    verb: str
    done: str
    needs_reasons: bool


APPROVE = Decision("approve", "approve", "approved", needs_reasons=False)
REJECT = Decision("reject", "reject", "rejected", needs_reasons=True)
RESTORE = Decision("restore", "restore", "restored", needs_reasons=True)


def is_appeal(case: TakedownRequest) -> bool:
    return case.appeal_round > 0 and case.state not in CLOSED_CASE_STATES


def own_appeal(case: TakedownRequest, user: Any) -> bool:
    """An appeal of this user's own decision: someone else decides it."""
    return is_appeal(case) and case.first_decided_by_id == user.pk


def decision_refusal(case: TakedownRequest, decision: Decision, user: Any) -> str | None:
    """Why `user` cannot make `decision` on `case` now, or None. A preview for the confirmation
    page and a permission check per case; the services still check everything themselves."""
    label = CaseState(case.state).label.lower()
    if decision is RESTORE:
        if not user.has_perm(RESTORE_CASE):
            return "you may not restore content"
        if case.state not in (CaseState.REMOVED, CaseState.APPEALED):
            return (
                f"the case is {label}: only removed content, or a case under appeal, "
                "can be restored"
            )
        if own_appeal(case, user):
            return "an appeal is decided by someone other than the first decider; ask a colleague"
        if not getattr(case, "removed_count", 0):
            return "it removed nothing: there is nothing to restore"
        return None
    appeal = is_appeal(case)
    if not user.has_perm(DECIDE_APPEAL if appeal else DECIDE_CASE):
        return "you may not decide appeals" if appeal else "you may not decide cases"
    if own_appeal(case, user):
        return "an appeal is decided by someone other than the first decider; ask a colleague"
    to_state = CaseState.APPROVED if decision is APPROVE else CaseState.REJECTED
    if not is_allowed("rights.TakedownRequest", case.state, to_state):
        return f"the case is {label}: it cannot be {decision.done}"
    return None


def decision_effect(case: TakedownRequest, decision: Decision) -> str:
    """What the decision will do to this case, in a sentence."""
    count: int = getattr(case, "target_count", 0)
    if decision is APPROVE:
        opening = "Appeal granted" if is_appeal(case) else "Approved"
        named = "its URL names" if count == 1 else f"its {count} URLs name"
        return f"{opening}: the content {named} is taken down and kept down."
    if decision is REJECT:
        removed: int = getattr(case, "removed_count", 0)
        if case.state == CaseState.APPEALED and removed > 0:
            return "Appeal turned down: what was removed stays removed; the rest stays refused."
        opening = "Appeal turned down" if is_appeal(case) else "Rejected"
        urls = "its URL" if count == 1 else f"its {count} URLs"
        back = (
            "; the content the fail-safe took offline comes back"
            if case.state == CaseState.DISABLED_PENDING_REVIEW
            else ""
        )
        return f"{opening} for {urls}, with the statement of reasons below{back}."
    return "Restored: removed content comes back, and its suppressions are lifted."


@dataclass(frozen=True)
class Planned:
    case: TakedownRequest
    refusal: str | None
    effect: str

    @property
    def time_left(self) -> str:
        return time_left_words(self.case)[0]


@dataclass(frozen=True)
class Outcome:
    case: TakedownRequest
    done: bool
    message: str
    state_now: str


def _decide_one(case: TakedownRequest, decision: Decision, user: Any, reasons: str) -> str | None:
    """Make the decision through its service; why not, if it could not be made."""
    refusal = decision_refusal(case, decision, user)
    if refusal is not None:
        return refusal
    try:
        if decision is APPROVE:
            review.case_approve(case=case, user_id=user.pk)
        elif decision is REJECT:
            review.case_reject(case=case, user_id=user.pk, reasons=reasons)
        else:
            review.case_restore(case=case, user_id=user.pk, reasons=reasons)
    except DomainError as exc:
        return exc.message
    return None


def chosen_cases(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[TakedownRequest]
) -> list[TakedownRequest]:
    """The cases the reviewer ticked, whatever the list's filters show now: a ticked case that
    closed meanwhile is listed (and refused), never dropped without a word."""
    base: QuerySet[TakedownRequest] = model_admin.get_queryset(request)
    if request.POST.get("select_across") == "1":
        base = queryset
    else:
        chosen = [as_id(v) for v in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)]
        base = base.filter(pk__in=[pk for pk in chosen if pk is not None])
    return list(base.order_by(F("deadline_at").asc(nulls_last=True), "pk"))


def decide_many(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[TakedownRequest],
    decision: Decision,
) -> TemplateResponse:
    """The confirmation page for `decision` on the chosen cases; once confirmed, the decisions
    (each case on its own: one that cannot be decided does not hold the others back) and the
    page of what happened to each."""
    cases = chosen_cases(model_admin, request, queryset)
    reasons = request.POST.get("reasons", "")
    error = None
    if request.POST.get("post") == "yes":
        if decision.needs_reasons and not reasons.strip():
            error = (
                "Write the statement of reasons: the requester reads it, and nothing is "
                f"{decision.done} without it."
            )
        else:
            return _decided(model_admin, request, cases, decision, reasons)
    plan = [
        Planned(
            case, decision_refusal(case, decision, request.user), decision_effect(case, decision)
        )
        for case in cases
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{decision.verb.capitalize()} {len(cases)} case{'s' if len(cases) != 1 else ''}?",
        "opts": model_admin.model._meta,
        "decision": decision,
        "plan": plan,
        "possible": sum(1 for p in plan if p.refusal is None),
        "reasons": reasons,
        "error": error,
        "action_name": f"{decision.name}_selected",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "rights/admin/case_decision_confirm.html", context)


def _decided(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    cases: list[TakedownRequest],
    decision: Decision,
    reasons: str,
) -> TemplateResponse:
    refusals = {case.pk: _decide_one(case, decision, request.user, reasons) for case in cases}
    states = dict(
        TakedownRequest.objects.filter(pk__in=[c.pk for c in cases]).values_list("pk", "state")
    )
    outcomes = [
        Outcome(
            case,
            done=refusals[case.pk] is None,
            message=decision.done
            if refusals[case.pk] is None
            else f"not {decision.done}: {refusals[case.pk]}",
            state_now=CaseState(states[case.pk]).label,
        )
        for case in cases
    ]
    done = sum(1 for o in outcomes if o.done)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{done} of {len(cases)} case{'s' if len(cases) != 1 else ''} {decision.done}",
        "opts": model_admin.model._meta,
        "decision": decision,
        "outcomes": outcomes,
        "done": done,
        "refused": len(cases) - done,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "rights/admin/case_decision_done.html", context)


# --- Claim and assign ----------------------------------------------------------------------------


def assign_many(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    cases: Iterable[TakedownRequest],
    assignee: Any,
) -> None:
    """Assign each case through the service; say what happened, case by case where it did not."""
    assigned = 0
    for case in cases:
        try:
            review.case_assign(
                case=case,
                assignee_id=assignee.pk if assignee is not None else None,
                actor_id=request.user.pk,  # type: ignore[arg-type]
            )
        except DomainError as exc:
            model_admin.message_user(request, f"{case.reference}: {exc.message}", messages.WARNING)
            continue
        assigned += 1
    whom = (
        "you"
        if assignee is not None and assignee.pk == request.user.pk
        else assignee.get_username()
        if assignee is not None
        else "nobody"
    )
    model_admin.message_user(
        request, f"{assigned} case{'s' if assigned != 1 else ''} assigned to {whom}."
    )


def assign_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[TakedownRequest]
) -> TemplateResponse | None:
    """Choose a colleague (or nobody) for the chosen cases; None (back to the list) once done."""
    cases = chosen_cases(model_admin, request, queryset)
    colleagues = list(perms.deciders())
    error = None
    if request.POST.get("post") == "yes":
        raw = request.POST.get("assignee", "")
        by_id = {str(user.pk): user for user in colleagues}
        if raw == "nobody":
            assign_many(model_admin, request, cases, None)
            return None
        if raw in by_id:
            assign_many(model_admin, request, cases, by_id[raw])
            return None
        error = "Choose a colleague who may decide cases, or nobody."
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Assign {len(cases)} case{'s' if len(cases) != 1 else ''}",
        "opts": model_admin.model._meta,
        "cases": cases,
        "colleagues": colleagues,
        "error": error,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "rights/admin/case_assign.html", context)
