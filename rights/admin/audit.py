"""The audit trail, for reading only (the database refuses changes anyway)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from rights.admin.base import ViewOnlyAdmin
from rights.models import AuditCheckpoint, AuditEvent, AuditStream


class StreamKindFilter(admin.SimpleListFilter):
    """Fixed choices: a filter over distinct values would scan the whole, ever-growing trail."""

    title = "stream"
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("case:", "cases"), ("outlet:", "outlets"), ("system", "system")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(stream__startswith=value) if value else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdmin):
    list_display = ["created_at", "stream", "seq", "actor", "action"]
    list_filter = [StreamKindFilter]
    search_fields = ["=stream", "=actor", "=action", "=hash"]
    ordering = ["-created_at", "-id"]
    # The trail grows without bound: skip the second COUNT(*) over the whole table.
    show_full_result_count = False
    list_per_page = 100


@admin.register(AuditStream)
class AuditStreamAdmin(ViewOnlyAdmin):
    list_display = ["name", "seq", "head_hash"]
    search_fields = ["name"]
    show_full_result_count = False


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ViewOnlyAdmin):
    list_display = ["id", "created_at", "stream_count", "digest"]
    date_hierarchy = "created_at"

    @admin.display(description="streams")
    def stream_count(self, obj: AuditCheckpoint) -> int:
        return len(obj.heads)
