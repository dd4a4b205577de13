"""Requesters: the one place their contact details are shown, with the abuse controls (warn,
suspend, lift: `rights.suspend_requester`) and erasure (`rights.erase_requester`) as actions.

Each action first shows a page listing the chosen requesters and what will happen to each (or
why it cannot), and acts only when confirmed; the services (rights.services.abuse,
rights.services.erasure) check the order of things again under their locks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from rights.admin.base import ChangedFieldsOnlyAdmin, changed_fields
from rights.errors import DomainError
from rights.models import Requester
from rights.permissions import ERASE_REQUESTER, SUSPEND_REQUESTER
from rights.services import abuse, erasure
from rights.services.requester import requester_edit
from rights.states import CLOSED_CASE_STATES


@dataclass(frozen=True)
class Act:
    name: str  # the action's suffix
    verb: str
    done: str
    refusal: Callable[[Requester], DomainError | None]
    effect: str
    run: Callable[[Requester, Any, str], Any]
    needs_reason: bool = False


def _open_references(requester: Requester) -> list[str]:
    return list(
        requester.cases.exclude(state__in=sorted(CLOSED_CASE_STATES))
        .order_by("pk")
        .values_list("reference", flat=True)
    )


WARN = Act(
    "warn",
    "warn",
    "warned",
    abuse.warn_refusal,
    "Warned: they are mailed the requests found manifestly unfounded, that more may suspend "
    "their requests, and how to contest it.",
    lambda r, user_id, reason: abuse.requester_warn(requester=r, user_id=user_id),
)
SUSPEND = Act(
    "suspend",
    "suspend",
    "suspended",
    abuse.suspend_refusal,
    "Suspended: every door refuses their new requests (the public ones by mail only) until "
    "the suspension is lifted; they are mailed the reasons and how to contest it.",
    lambda r, user_id, reason: abuse.requester_suspend(requester=r, user_id=user_id),
)
LIFT = Act(
    "lift",
    "lift the suspension of",
    "lifted",
    abuse.lift_refusal,
    "Lifted: their requests are processed again, the warning is cleared, and they are mailed.",
    lambda r, user_id, reason: abuse.requester_lift(requester=r, user_id=user_id),
)
ERASE = Act(
    "erase",
    "erase",
    "erased",
    lambda r: erasure.erase_refusal(r, _open_references(r)),
    "Erased: name, address, organisation and the texts they wrote become tombstones, mail not "
    "yet sent to them is cancelled, and their cases keep their outcomes. A suspension ends "
    "with the address. This cannot be undone.",
    lambda r, user_id, reason: erasure.requester_erase(requester=r, user_id=user_id, reason=reason),
    needs_reason=True,
)


@dataclass(frozen=True)
class Planned:
    requester: Requester
    refusal: str | None
    effect: str


class StateFilter(admin.SimpleListFilter):
    title = "abuse controls and erasure"
    parameter_name = "standing"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("unfounded", "With unfounded requests"),
            ("warned", "Warned"),
            ("suspended", "Suspended"),
            ("erased", "Erased"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "unfounded":
            return queryset.filter(unfounded_count__gt=0)
        if value == "warned":
            return queryset.filter(warned_at__isnull=False)
        if value == "suspended":
            return queryset.filter(suspended_at__isnull=False)
        if value == "erased":
            return queryset.filter(erased_at__isnull=False)
        return queryset


@admin.register(Requester)
class RequesterAdmin(ChangedFieldsOnlyAdmin):
    """The one page that shows a requester's contact details."""

    list_display = [
        "email",
        "name",
        "organisation",
        "email_verified_at",
        "unfounded_count",
        "case_count",
        "warned_at",
        "suspended_at",
        "erased_at",
        "created_at",
    ]
    list_filter = [
        StateFilter,
        ("email_verified_at", admin.EmptyFieldListFilter),
        ("warned_at", admin.EmptyFieldListFilter),
        ("suspended_at", admin.EmptyFieldListFilter),
        ("erased_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["email", "name", "organisation"]
    ordering = ["-unfounded_count", "-pk"]
    # Verification, the unfounded count, warnings, suspension and erasure are decided by
    # services, not typed in.
    readonly_fields = [
        "email",
        "email_verified_at",
        "unfounded_count",
        "warned_at",
        "suspended_at",
        "erased_at",
        "created_at",
    ]
    actions = ["warn_selected", "suspend_selected", "lift_selected", "erase_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Requester]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_cases=Count("cases", distinct=True),
                n_open=Count(
                    "cases",
                    filter=~Q(cases__state__in=sorted(CLOSED_CASE_STATES)),
                    distinct=True,
                ),
            )
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A correction of name or organisation, audited (requesters are made by the doors)."""
        if not change:
            raise PermissionDenied
        try:
            requester_edit(
                requester=obj, fields=changed_fields(obj, form), actor=f"staff:{request.user.pk}"
            )
        except DomainError as exc:
            raise PermissionDenied(exc.message) from exc

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.erased_at is not None:
            fields += ["name", "organisation"]  # tombstones stay tombstones
        return fields

    @admin.display(description="cases (open)", ordering="n_cases")
    def case_count(self, obj: Requester) -> str:
        return f"{getattr(obj, 'n_cases', 0)} ({getattr(obj, 'n_open', 0)})"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # requesters come in with their first request

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # erasure keeps the row and redacts it (the audit trail refers to it)

    # --- Permissions of the actions (`@admin.action(permissions=[...])`) ---

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(SUSPEND_REQUESTER))

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ERASE_REQUESTER))

    # --- Actions ---

    @admin.action(description="Warn the selected requesters…", permissions=["suspend"])
    def warn_selected(
        self, request: HttpRequest, queryset: QuerySet[Requester]
    ) -> TemplateResponse:
        return self._act(request, queryset, WARN)

    @admin.action(description="Suspend the selected requesters…", permissions=["suspend"])
    def suspend_selected(
        self, request: HttpRequest, queryset: QuerySet[Requester]
    ) -> TemplateResponse:
        return self._act(request, queryset, SUSPEND)

    @admin.action(
        description="Lift the suspension of the selected requesters…", permissions=["suspend"]
    )
    def lift_selected(
        self, request: HttpRequest, queryset: QuerySet[Requester]
    ) -> TemplateResponse:
        return self._act(request, queryset, LIFT)

    @admin.action(
        description="Erase the personal data of the selected requesters…", permissions=["erase"]
    )
    def erase_selected(
        self, request: HttpRequest, queryset: QuerySet[Requester]
    ) -> TemplateResponse:
        return self._act(request, queryset, ERASE)

    def _act(
        self, request: HttpRequest, queryset: QuerySet[Requester], act: Act
    ) -> TemplateResponse:
        """The confirmation page; once confirmed, the act on each requester on its own (one
        that cannot be done does not hold the others back) and what happened to each."""
        requesters = list(queryset.order_by("pk"))
        reason = request.POST.get("reason", "")
        error = None
        if request.POST.get("post") == "yes":
            if act.needs_reason and not reason.strip():
                error = f"Say why: nothing is {act.done} without a reason."
            else:
                return self._done(request, requesters, act, reason)
        plan = []
        for requester in requesters:
            refusal = act.refusal(requester)
            plan.append(
                Planned(requester, refusal.message if refusal is not None else None, act.effect)
            )
        count = len(requesters)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{act.verb.capitalize()} {count} requester{'s' if count != 1 else ''}?",
            "opts": self.model._meta,
            "act": act,
            "plan": plan,
            "possible": sum(1 for p in plan if p.refusal is None),
            "reason": reason,
            "error": error,
            "action_name": f"{act.name}_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "rights/admin/requester_action_confirm.html", context)

    def _done(
        self, request: HttpRequest, requesters: list[Requester], act: Act, reason: str
    ) -> TemplateResponse:
        outcomes = []
        for requester in requesters:
            try:
                act.run(requester, request.user.pk, reason)
            except DomainError as exc:
                outcomes.append((requester, False, exc.message))
            else:
                outcomes.append((requester, True, act.done))
        done = sum(1 for _, ok, _ in outcomes if ok)
        level = messages.SUCCESS if done == len(outcomes) else messages.WARNING
        chosen = ngettext("%(n)d requester", "%(n)d requesters", len(outcomes)) % {
            "n": len(outcomes)
        }
        self.message_user(request, f"{done} of {chosen} {act.done}.", level)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{done} requester{'s' if done != 1 else ''} {act.done}",
            "opts": self.model._meta,
            "act": act,
            "outcomes": [
                {"requester": r, "done": ok, "message": message} for r, ok, message in outcomes
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "rights/admin/requester_action_done.html", context)
