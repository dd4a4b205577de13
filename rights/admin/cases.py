"""Cases and their targets: visible to staff, written only by services."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from rights.admin import queue
from rights.admin.base import ViewOnlyAdmin, ViewOnlyInline
from rights.admin.permissions import ASSIGN_CASE, RESTORE_CASE, may_decide
from rights.deadlines import Rung
from rights.models import TakedownRequest, Target


class TargetInline(ViewOnlyInline):
    model = Target
    fields = ["url", "content_item", "state", "outcome_at"]
    readonly_fields = ["url", "content_item", "state", "outcome_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Target]:
        return super().get_queryset(request).select_related("content_item")


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
    search_fields = ["=reference", "targets__url", "=requester__email"]
    search_help_text = "A reference, a URL (or part of one), or the requester's exact address."
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

    @admin.display(description="time left", ordering="deadline_at")
    def time_left(self, obj: TakedownRequest) -> str:
        words, overdue = queue.time_left_words(obj)
        return format_html("<strong>{}</strong>", words) if overdue else words

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


@admin.register(Target)
class TargetAdmin(ViewOnlyAdmin):
    list_display = ["url", "case", "state", "content_item", "outcome_at"]
    list_filter = ["state"]
    search_fields = ["url", "=case__reference", "content_item__slug"]
    list_select_related = ["case", "content_item"]
