"""Requesters: the one place their contact details are shown; abuse controls and erasure are
services (rights.services.abuse, rights.services.erasure)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rights.admin.base import ChangedFieldsOnlyAdmin
from rights.models import Requester


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
