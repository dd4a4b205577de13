"""The deadline engine's tables: suppressions, ladder rungs, removal effects (and their dead
letters), the outbox and the sweeper's heartbeat."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from rights.admin.base import ViewOnlyAdmin
from rights.admin.permissions import RETRY_REMOVAL_EFFECT
from rights.errors import DomainError
from rights.models import LadderRung, Notification, RemovalEffect, Suppression, SweeperRun
from rights.services import effects


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
    """What each removal backend did (or still owes) for each target.

    A *dead letter* (`dead_at` set) is an effect the other side refused for good: it is not
    retried on its own. Fix the cause, then put it back in line with the retry action.
    """

    list_display = [
        "key",
        "backend",
        "action",
        "attempts",
        "done_at",
        "dead_at",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = [
        ("dead_at", admin.EmptyFieldListFilter),
        "backend",
        "action",
        ("done_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["key", "=target__case__reference"]
    list_select_related = ["target"]
    actions = ["retry_dead_letters"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(RETRY_REMOVAL_EFFECT))

    @admin.action(description="Retry the selected dead letters", permissions=["retry"])
    def retry_dead_letters(self, request: HttpRequest, queryset: QuerySet[RemovalEffect]) -> None:
        retried = 0
        for effect_id in queryset.filter(dead_at__isnull=False, done_at__isnull=True).values_list(
            "pk", flat=True
        ):
            try:
                effects.effect_retry(effect_id=effect_id, actor=f"staff:{request.user.pk}")
            except DomainError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
                continue
            retried += 1
        self.message_user(request, f"{retried} dead letter(s) put back in line.")


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
