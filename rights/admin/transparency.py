"""What the EU DSA transparency database holds of our statements of reasons (sor_export
--submit records it): read-only."""

from __future__ import annotations

from django.contrib import admin

from rights.admin.base import ViewOnlyAdmin
from rights.models import SorSubmission


@admin.register(SorSubmission)
class SorSubmissionAdmin(ViewOnlyAdmin):
    """Read-only: rows are written by `sor_export --submit` once the database holds a puid."""

    list_display = ["puid", "outcome", "submitted_at", "statement"]
    list_filter = ["outcome"]
    search_fields = ["=puid"]
    list_select_related = ["statement"]
    date_hierarchy = "submitted_at"
