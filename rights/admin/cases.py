"""Requesters, cases and their targets: visible to staff, written only by services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from rights.admin.base import ChangedFieldsOnlyAdmin, ViewOnlyAdmin, ViewOnlyInline
from rights.models import Requester, TakedownRequest, Target


@admin.register(Requester)
class RequesterAdmin(ChangedFieldsOnlyAdmin):
    """The one page that shows a requester's contact details."""

    list_display = [
        "email",
        "name",
        "organisation",
        "email_verified_at",
        "unfounded_count",
        "suspended_at",
        "created_at",
    ]
    list_filter = [
        ("email_verified_at", admin.EmptyFieldListFilter),
        ("suspended_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["email", "name", "organisation"]
    # Verification, the unfounded count and suspension are decided by services, not typed in.
    readonly_fields = [
        "email",
        "email_verified_at",
        "unfounded_count",
        "suspended_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requesters come in with their first request

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erasure keeps the row and redacts it (the audit trail refers to it)


class TargetInline(ViewOnlyInline):
    model = Target
    fields = ["url", "content_item", "state", "outcome_at"]
    readonly_fields = ["url", "content_item", "state", "outcome_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Target]:
        return super().get_queryset(request).select_related("content_item")


@admin.register(TakedownRequest)
class TakedownRequestAdmin(ViewOnlyAdmin):
    """Cases. Read-only: a case changes state through rights.workflow.transition only."""

    # No requester contact details here: those stay on the requester's own page.
    list_display = [
        "reference",
        "state",
        "channel",
        "basis",
        "trusted",
        "target_count",
        "outlet",
        "received_at",
        "deadline_at",
        "closed_at",
    ]
    list_filter = ["state", "channel", "basis", "trusted", "outlet"]
    search_fields = ["=reference", "targets__url", "=requester__email"]
    list_select_related = ["outlet"]
    date_hierarchy = "received_at"
    inlines = [TargetInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TakedownRequest]:
        return super().get_queryset(request).annotate(target_count=Count("targets"))

    @admin.display(description="targets", ordering="target_count")
    def target_count(self, obj: TakedownRequest) -> int:
        return obj.target_count  # type: ignore[attr-defined]


@admin.register(Target)
class TargetAdmin(ViewOnlyAdmin):
    list_display = ["url", "case", "state", "content_item", "outcome_at"]
    list_filter = ["state"]
    search_fields = ["url", "=case__reference", "content_item__slug"]
    list_select_related = ["case", "content_item"]
