"""Cases and their targets: visible to staff, written only by services."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from rights import clock, sor_templates
from rights.admin import queue
from rights.admin.base import ViewOnlyAdmin, ViewOnlyInline, as_id
from rights.deadlines import Rung
from rights.errors import DomainError
from rights.models import TakedownRequest, Target
from rights.permissions import (
    ASSIGN_CASE,
    DECIDE_APPEAL,
    DECIDE_CASE,
    RESTORE_CASE,
    may_decide,
)
from rights.selectors_review import CasePage, TargetRow, case_page
from rights.services import abuse, review
from rights.services.decisions import SorInput, sor_draft
from rights.services.intake import REFERENCE_LENGTH, REFERENCE_PREFIX
from rights.statements import STATEMENTS_VERSION
from rights.states import CLOSED_CASE_STATES, CaseState, TargetState


class TargetInline(ViewOnlyInline):
    model = Target
    fields = ["url", "content_item", "state", "outcome_at"]
    readonly_fields = ["url", "content_item", "state", "outcome_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Target]:
        return super().get_queryset(request).select_related("content_item")


STATEMENT_FIELDS = ("ground", "facts", "reasons", "redress")


@dataclass
class DecisionForm:
    """One of the case page's decision forms: its statement of reasons, prefilled from the
    template for the case's basis, or as the reviewer posted it when the decision was refused."""

    name: str  # approve, reject, per_url, restore
    title: str
    button: str
    kind: str  # the template's kind of decision
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # an error of the whole decision, not of one field
    outcomes: dict[int, str] = field(default_factory=dict)  # per_url: posted choices
    open_rows: list[TargetRow] = field(default_factory=list)

    @property
    def rows(self) -> list[tuple[TargetRow, str]]:
        """per_url: each open URL with the choice posted for it (none at first)."""
        return [(row, self.outcomes.get(row.target.pk, "")) for row in self.open_rows]

    def field_id(self, name: str) -> str:
        return f"id_{self.name}-{name}"

    @property
    def fields(self) -> list[dict[str, Any]]:
        labels = {
            "ground": "Legal or contractual ground",
            "facts": "Facts and circumstances relied on",
            "reasons": "Reasons (the requester reads these)",
            "redress": "Options for redress",
        }
        return [
            {
                "name": f"{self.name}-{name}",
                "id": self.field_id(name),
                "label": labels[name],
                "value": self.values.get(name, ""),
                "error": self.errors.get(name),
                "multiline": name != "ground",
            }
            for name in STATEMENT_FIELDS
        ]


def _posted_statement(request: HttpRequest, name: str) -> SorInput:
    return SorInput(**{f: request.POST.get(f"{name}-{f}", "") for f in STATEMENT_FIELDS})


def _decision_forms(page: CasePage, request: HttpRequest) -> list[DecisionForm]:
    """The decisions this staff member may make on the case now, each with its draft."""
    case, user = page.case, request.user
    now = clock.now()
    targets = [row.target for row in page.targets]
    forms: list[DecisionForm] = []

    def add(name: str, title: str, button: str, kind: str) -> None:
        draft = sor_draft(case, kind, now=now, targets=targets)
        values = {f: getattr(draft, f) for f in STATEMENT_FIELDS}
        forms.append(DecisionForm(name, title, button, kind, values, open_rows=page.open_targets))

    appeal = queue.is_appeal(case)
    if queue.own_appeal(case, user):
        return forms  # an appeal is decided by someone other than the first decider
    may = user.has_perm(DECIDE_APPEAL if appeal else DECIDE_CASE)
    if may and case.state in queue.AWAITING_DECISION and page.open_targets:
        removed = any(r.target.state == TargetState.REMOVED for r in page.targets)
        add("approve", "Approve: remove every URL still open", "Approve", sor_templates.REMOVAL)
        upheld = case.state == CaseState.APPEALED and removed
        add(
            "reject",
            "Reject: refuse every URL still open",
            "Reject",
            sor_templates.PARTIAL if upheld else sor_templates.REFUSAL,
        )
        if len(page.open_targets) > 1:
            add(
                "per_url",
                "Decide each URL: remove some, reject others",
                "Decide these URLs",
                sor_templates.PARTIAL,
            )
    if (
        user.has_perm(RESTORE_CASE)
        and case.state in (CaseState.REMOVED, CaseState.APPEALED)
        and any(r.target.state == TargetState.REMOVED for r in page.targets)
    ):
        add(
            "restore",
            "Restore: the content was removed in error",
            "Restore",
            sor_templates.RESTORATION,
        )
    return forms


def _decide(request: HttpRequest, case: TakedownRequest, decision: str) -> str:
    """Make the posted decision through its service; what happened, in a sentence. Raises
    PermissionDenied for a decision this staff member may not make, DomainError when the
    service refuses it."""
    user_id: int = request.user.pk  # type: ignore[assignment]
    if decision == "unfounded":
        if not may_decide(request.user):
            raise PermissionDenied
        if request.POST.get("confirm") != "yes":
            # It counts towards a warning and a suspension: never marked by a stray click.
            raise DomainError(
                "tick the box to confirm that the request is manifestly unfounded",
                field="confirm",
            )
        count = abuse.case_mark_unfounded(case=case, user_id=user_id).unfounded_count
        return (
            f"{case.reference} is recorded as manifestly unfounded; the requester has "
            f"{count} such request{'s' if count != 1 else ''}."
        )
    if decision == "restore":
        if not request.user.has_perm(RESTORE_CASE):
            raise PermissionDenied
        statement = _posted_statement(request, decision)
        review.case_restore(case=case, user_id=user_id, statement=statement)
        return f"{case.reference} restored: its content comes back."
    if decision not in ("approve", "reject", "per_url"):
        raise DomainError("choose a decision", field="decision")
    if not request.user.has_perm(DECIDE_APPEAL if queue.is_appeal(case) else DECIDE_CASE):
        raise PermissionDenied
    statement = _posted_statement(request, decision)
    if decision == "approve":
        review.case_approve(case=case, user_id=user_id, statement=statement)
        return f"{case.reference} approved: its content is being removed."
    if decision == "reject":
        review.case_reject(case=case, user_id=user_id, statement=statement)
        return f"{case.reference} rejected, with the statement of reasons."
    remove, reject = [], []
    for key, value in request.POST.items():
        target_id = as_id(key.removeprefix("outcome-")) if key.startswith("outcome-") else None
        if target_id is not None:
            if value == "remove":
                remove.append(target_id)
            elif value == "reject":
                reject.append(target_id)
    review.case_decide(
        case=case, user_id=user_id, remove=remove, reject=reject, statement=statement
    )
    return (
        f"{case.reference} decided: {len(remove)} URL{'s' if len(remove) != 1 else ''} "
        f"removed, {len(reject)} rejected."
    )


# A reference as it is read out without its prefix ("7VERQPA").
REFERENCE_BODY = re.compile(f"[A-Z0-9]{{{REFERENCE_LENGTH}}}")


@admin.register(TakedownRequest)
class TakedownRequestAdmin(ViewOnlyAdmin):
    """Cases, as the review queue: open ones first, soonest deadline first.

    Read-only as a form: a case changes state through rights.workflow.transition only, which
    the actions here reach through the review services, each behind its permission.
    """

    # No requester contact details here: those stay on the requester's own page.
    list_display = [
        "reference",
        "time_left",
        "ladder_stage",
        "state",
        "basis",
        "channel",
        "trusted",
        "target_count",
        "assignee",
        "received_at",
    ]
    list_filter = [
        queue.QueueFilter,
        "state",
        "basis",
        "channel",
        queue.MineFilter,
        queue.OverdueFilter,
        queue.AppealsFilter,
        "trusted",
        "outlet",
    ]
    # A URL as the requester typed it, or as our copy's slug or its primary source names it.
    search_fields = [
        "=reference",
        "targets__url",
        "targets__content_item__source_url",
        "targets__content_item__slug",
        "requester__email",
        "requester__name",
    ]
    search_help_text = (
        "A reference (with or without TD-), a URL or part of one (ours or the original "
        "article's), or the requester's address or name (or part of either)."
    )
    list_select_related = ["outlet", "assignee"]
    ordering = [F("deadline_at").asc(nulls_last=True), "pk"]
    date_hierarchy = "received_at"
    inlines = [TargetInline]
    actions = [
        "claim_selected",
        "assign_selected",
        "approve_selected",
        "reject_selected",
        "restore_selected",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TakedownRequest]:
        return queue.queue_annotate(super().get_queryset(request), queue.request_now(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TakedownRequest], search_term: str
    ) -> tuple[QuerySet[TakedownRequest], bool]:
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().upper()
        if REFERENCE_BODY.fullmatch(term):
            # A reference read out without its prefix.
            found = found | queryset.filter(reference=f"{REFERENCE_PREFIX}{term}")
        return found, duplicates

    class Media:
        js = ["rights/console.js"]

    @admin.display(description="time left", ordering="deadline_at")
    def time_left(self, obj: TakedownRequest) -> str:
        """The time left in words; the page's script counts it down from `data-left`."""
        words, overdue = queue.time_left_words(obj)
        left = getattr(obj, "time_left", None)
        if left is None or obj.state in CLOSED_CASE_STATES:
            return words
        return format_html(
            '<span class="time-left{}" data-left="{}">{}</span>',
            " overdue" if overdue else "",
            int(left.total_seconds()),
            words,
        )

    @admin.display(description="ladder", ordering="ladder_rank")
    def ladder_stage(self, obj: TakedownRequest) -> str:
        rank = getattr(obj, "ladder_rank", 0)
        label = queue.STAGE_LABELS.get(rank, "none")
        if rank >= queue.RUNG_RANK[Rung.FAILSAFE]:
            return format_html("<strong>{}</strong>", label)
        return label

    @admin.display(description="URLs", ordering="target_count")
    def target_count(self, obj: TakedownRequest) -> int:
        return int(getattr(obj, "target_count", 0))

    # --- The case page: everything needed to decide, on one screen ---

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        case_id = as_id(object_id)
        if case_id is None:
            raise Http404("no such case")
        page = case_page(case_id)
        if page is None:
            raise Http404("no such case")
        posted = request.POST.get("decision", "") if request.method == "POST" else ""
        if request.method == "POST" and not posted:
            # No decision named: a post of the change form itself. Cases are never edited.
            raise PermissionDenied
        failure: DomainError | None = None
        if request.method == "POST":
            try:
                done = _decide(request, page.case, posted)
            except DomainError as exc:
                failure = exc
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        forms = _decision_forms(page, request)
        if failure is not None:
            for form in forms:
                if form.name == posted:
                    form.values = {
                        f: request.POST.get(f"{posted}-{f}", "") for f in STATEMENT_FIELDS
                    }
                    form.outcomes = {
                        row.target.pk: request.POST.get(f"outcome-{row.target.pk}", "")
                        for row in page.open_targets
                    }
                    if failure.field in STATEMENT_FIELDS:
                        form.errors[failure.field] = failure.message
                    else:
                        form.error = failure.message
        shown_failure = failure is not None and not any(
            f.name == posted and (f.errors or f.error) for f in forms
        )
        case = page.case
        context = {
            **self.admin_site.each_context(request),
            "title": f"Case {case.reference}",
            "opts": self.model._meta,
            "page": page,
            "case": case,
            "forms": forms,
            "failure": failure.message if shown_failure and failure is not None else None,
            "statements_version_current": case.statements_version == STATEMENTS_VERSION,
            "time_left": _time_left(case),
            "may_mark_unfounded": may_decide(request.user) and case.state in abuse.MARKABLE_STATES,
            "is_appeal": queue.is_appeal(case),
            "own_appeal": queue.own_appeal(case, request.user),
            "may_decide_here": request.user.has_perm(
                DECIDE_APPEAL if queue.is_appeal(case) else DECIDE_CASE
            ),
            "evidence_url": _evidence_url(case),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "rights/admin/case_page.html", context)

    # --- Permissions of the actions (`@admin.action(permissions=[...])`) ---

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return may_decide(request.user)

    def has_assign_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ASSIGN_CASE))

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(RESTORE_CASE))

    # --- Actions ---

    @admin.action(
        description="Claim the selected cases (assign them to me)", permissions=["assign"]
    )
    def claim_selected(self, request: HttpRequest, queryset: QuerySet[TakedownRequest]) -> None:
        queue.assign_many(self, request, queue.chosen_cases(self, request, queryset), request.user)

    @admin.action(description="Assign the selected cases to a colleague…", permissions=["assign"])
    def assign_selected(
        self, request: HttpRequest, queryset: QuerySet[TakedownRequest]
    ) -> TemplateResponse | None:
        return queue.assign_page(self, request, queryset)

    @admin.action(description="Approve the selected cases…", permissions=["decide"])
    def approve_selected(
        self, request: HttpRequest, queryset: QuerySet[TakedownRequest]
    ) -> TemplateResponse:
        return queue.decide_many(self, request, queryset, queue.APPROVE)

    @admin.action(
        description="Reject the selected cases, with one statement of reasons…",
        permissions=["decide"],
    )
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[TakedownRequest]
    ) -> TemplateResponse:
        return queue.decide_many(self, request, queryset, queue.REJECT)

    @admin.action(
        description="Restore the content of the selected cases (removed in error)…",
        permissions=["restore"],
    )
    def restore_selected(
        self, request: HttpRequest, queryset: QuerySet[TakedownRequest]
    ) -> TemplateResponse:
        return queue.decide_many(self, request, queryset, queue.RESTORE)


def _evidence_url(case: TakedownRequest) -> str | None:
    """The case's evidence bundle download, where the console offers one."""
    try:
        return reverse("admin:rights_takedownrequest_evidence", args=[case.pk])
    except NoReverseMatch:
        return None


def _time_left(case: TakedownRequest) -> str:
    if case.deadline_at is not None:
        case.time_left = case.deadline_at - clock.now()  # type: ignore[attr-defined]
    return queue.time_left_words(case)[0]


@admin.register(Target)
class TargetAdmin(ViewOnlyAdmin):
    list_display = ["url", "case", "state", "content_item", "outcome_at"]
    list_filter = ["state"]
    search_fields = ["url", "=case__reference", "content_item__slug"]
    list_select_related = ["case", "content_item"]
