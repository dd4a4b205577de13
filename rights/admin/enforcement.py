"""The deadline engine's tables: suppressions, ladder rungs, removal effects (and their dead
letters), the outbox and the sweeper's heartbeat."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from rights.admin.base import ConsoleAdmin, ViewOnlyAdmin
from rights.errors import DomainError
from rights.models import LadderRung, Notification, RemovalEffect, Suppression, SweeperRun
from rights.permissions import RETRY_REMOVAL_EFFECT
from rights.services import effects
from rights.services.suppression import check_rule_value, suppression_add, suppression_lift

ADD_SUPPRESSION = "rights.add_suppression"
# Lifting a rule is the one change a rule ever sees.
LIFT_SUPPRESSION = "rights.change_suppression"
ADD_FIELDS = ("kind", "value", "reason")
VIEW_FIELDS = (
    *ADD_FIELDS,
    "case",
    "content_item",
    "created_at",
    "lifted_at",
    "lifted_by",
    "lift_reason",
)


class SuppressionAddForm(forms.ModelForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why the rule is needed (kept on the rule; the audit trail keeps a digest).",
    )

    class Meta:
        model = Suppression
        fields = ["kind", "value", "reason"]
        help_texts = {
            "value": (
                "A rule stops the crawler republishing what it covers, from now on. Copies "
                "already live stay up: they are taken down through a case (the `takedown` "
                "command or a request), which suppresses them in its turn."
            )
        }

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("kind") and cleaned.get("value"):
            try:
                cleaned["value"] = check_rule_value(kind=cleaned["kind"], value=cleaned["value"])
            except DomainError as exc:
                self.add_error(exc.field or None, exc.message)
            else:
                if Suppression.objects.filter(
                    kind=cleaned["kind"], value=cleaned["value"], lifted_at__isnull=True
                ).exists():
                    self.add_error(
                        "value", f"An active rule already suppresses {cleaned['value']}."
                    )
        return cleaned

    def validate_unique(self) -> None:
        # The active-rule check above says it in words; the service makes the row.
        return None


@admin.register(Suppression)
class SuppressionAdmin(ConsoleAdmin):
    """Rules are made and lifted only through the suppression service, which audits each: the
    `admin` role adds a rule (with its reason) and lifts one (with its reason) through an action
    with a confirmation page. A rule's fields are otherwise read-only, and no rule is deleted."""

    list_display = [
        "kind",
        "value",
        "case",
        "content_item",
        "created_at",
        "lifted_at",
        "lift_reason",
    ]
    list_filter = ["kind", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["value", "=case__reference"]
    list_select_related = ["case", "content_item", "lifted_by"]
    readonly_fields = ["created_at", "lifted_at", "lifted_by", "lift_reason"]
    actions = ["lift_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ADD_SUPPRESSION))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(LIFT_SUPPRESSION))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = SuppressionAddForm
            kwargs["fields"] = list(ADD_FIELDS)
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ADD_FIELDS if obj is None else VIEW_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else VIEW_FIELDS

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        rule = suppression_add(
            kind=form.cleaned_data["kind"],
            value=form.cleaned_data["value"],
            reason=form.cleaned_data["reason"],
            user=request.user,
        )
        obj.pk = rule.pk
        obj.created_at = rule.created_at

    @admin.action(description="Lift the selected rules…", permissions=["lift"])
    def lift_selected(
        self, request: HttpRequest, queryset: QuerySet[Suppression]
    ) -> TemplateResponse | None:
        rules = list(queryset.filter(lifted_at__isnull=True).select_related("case"))
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.POST.get("post") == "yes":
            if not reason:
                error = "Say why the rules are lifted."
            else:
                lifted = sum(
                    suppression_lift(
                        rule=rule,
                        actor=f"staff:{request.user.pk}",
                        reason=reason,
                        user=request.user,
                    )
                    for rule in rules
                )
                self.message_user(
                    request, ngettext("%d rule lifted.", "%d rules lifted.", lifted) % lifted
                )
                return None
        if not rules:
            self.message_user(request, "None of the selected rules is active.", messages.WARNING)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Lift suppression rules",
            "rules": rules,
            "reason": reason,
            "error": error,
            "action_name": "lift_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "rights/admin/suppression_lift_confirm.html", context)


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
        self.message_user(
            request,
            ngettext(
                "%d dead letter put back in line.", "%d dead letters put back in line.", retried
            )
            % retried,
        )


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
