"""Suppressions: the standing rules that keep removed content from coming back."""

from __future__ import annotations

from django.contrib import admin

from rights.admin.base import ViewOnlyAdmin
from rights.models import LadderRung, Notification, RemovalEffect, Suppression, SweeperRun


@admin.register(Suppression)
class SuppressionAdmin(ViewOnlyAdmin):
    """Read-only: suppressions are created and lifted by the enforcement services, with the
    audit event that explains why."""

    list_display = ["kind", "value", "case", "content_item", "created_at", "lifted_at"]
    list_filter = ["kind", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["value", "=case__reference"]
    list_select_related = ["case", "content_item"]


@admin.register(LadderRung)
class LadderRungAdmin(ViewOnlyAdmin):
    """Read-only: rungs are fired by the deadline engine, once per case."""

    list_display = ["case", "rung", "due_at", "fired_at", "pending_targets"]
    list_filter = ["rung"]
    search_fields = ["=case__reference"]
    list_select_related = ["case"]
    date_hierarchy = "fired_at"


@admin.register(RemovalEffect)
class RemovalEffectAdmin(ViewOnlyAdmin):
    """What each removal backend did (or still owes) for each target."""

    list_display = [
        "key",
        "backend",
        "action",
        "attempts",
        "done_at",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["backend", "action", ("done_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "=target__case__reference"]
    list_select_related = ["target"]


@admin.register(Notification)
class NotificationAdmin(ViewOnlyAdmin):
    """The outbox. Addresses are not stored here: they are looked up when sending."""

    list_display = [
        "key",
        "kind",
        "audience",
        "attempts",
        "sent_at",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["kind", "audience", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "=case__reference"]
    list_select_related = ["case"]


@admin.register(SweeperRun)
class SweeperRunAdmin(ViewOnlyAdmin):
    list_display = ["name", "last_run_at", "last_claimed"]
