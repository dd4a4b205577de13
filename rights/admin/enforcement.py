"""Suppressions: the standing rules that keep removed content from coming back."""

from __future__ import annotations

from django.contrib import admin

from rights.admin.base import ViewOnlyAdmin
from rights.models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(ViewOnlyAdmin):
    """Read-only: suppressions are created and lifted by the enforcement services, with the
    audit event that explains why."""

    list_display = ["kind", "value", "case", "content_item", "created_at", "lifted_at"]
    list_filter = ["kind", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["value", "=case__reference"]
    list_select_related = ["case", "content_item"]
