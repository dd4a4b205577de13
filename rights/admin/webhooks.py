"""Partner webhooks in the console.

Endpoints are registered, moved, given a new secret or removed by staff holding
`manage_partner_keys` (the `admin` role), through rights.services.webhooks, which checks the
address and audits each change; the secret is shown once, on the page that follows, and never
listed. Deliveries are read-only, filterable by outlet and state; a dead letter is put back in
line with "retry now" by staff holding `retry_webhookdelivery` (`lead`, `admin`), audited.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from rights.admin.base import FORMFIELD_OVERRIDES, ViewOnlyAdmin
from rights.errors import DomainError
from rights.models import Outlet, WebhookDelivery, WebhookEndpoint
from rights.permissions import MANAGE_PARTNER_KEYS, RETRY_WEBHOOK_DELIVERY
from rights.services import webhooks

# Carries a new secret from save_model (or the rotate action) to the page that shows it: never
# a message (stored in a cookie) or the session.
SECRET_ATTR = "_webhook_secret"  # noqa: S105  (an attribute name)


def _actor(request: HttpRequest) -> str:
    return f"staff:{request.user.pk}"


class EndpointForm(forms.ModelForm):
    # Plain text: the guard, not the form, decides what an acceptable endpoint is.
    url = forms.CharField(max_length=webhooks.MAX_URL, label="URL")

    class Meta:
        model = WebhookEndpoint
        fields = ["outlet", "url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "outlet" in self.fields:
            self.fields["outlet"].queryset = Outlet.objects.filter(  # type: ignore[attr-defined]
                is_partner=True, webhook_endpoint__isnull=True
            )

    def clean_url(self) -> str:
        try:
            return webhooks.check_endpoint_url(self.cleaned_data["url"]).url
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    formfield_overrides = FORMFIELD_OVERRIDES
    list_display = ["outlet", "url", "created_at", "updated_at", "secret_rotated_at"]
    list_select_related = ["outlet"]
    search_fields = ["outlet__slug", "outlet__name"]
    actions = ["rotate_secret"]

    def _manages(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(MANAGE_PARTNER_KEYS))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manages(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manages(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manages(request)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("outlet", "created_at", "secret_rotated_at") if obj is not None else ()

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        endpoint, secret = webhooks.endpoint_register(
            outlet=obj.outlet, url=obj.url, actor=_actor(request)
        )
        obj.pk = endpoint.pk
        obj.secret = endpoint.secret
        obj.created_at = endpoint.created_at
        obj.secret_rotated_at = endpoint.secret_rotated_at
        if secret:
            setattr(request, SECRET_ATTR, secret)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhooks.endpoint_remove(outlet=obj.outlet, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset.select_related("outlet"):
            webhooks.endpoint_remove(outlet=endpoint.outlet, actor=_actor(request))

    def _secret_page(self, request: HttpRequest, endpoint: WebhookEndpoint) -> HttpResponse:
        response = TemplateResponse(
            request,
            "rights/admin/webhook_secret.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "endpoint": endpoint,
                "secret": getattr(request, SECRET_ATTR),
                "title": "Webhook signing secret",
            },
        )
        # Shown once: no cache may keep the page that holds it.
        response["Cache-Control"] = "no-store"
        return response

    def response_add(
        self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None
    ) -> HttpResponse:
        if getattr(request, SECRET_ATTR, None) is None:
            return super().response_add(request, obj, post_url_continue)
        return self._secret_page(request, obj)

    @admin.action(description="Give the selected endpoint a new secret", permissions=["manage"])
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> HttpResponse | None:
        endpoints = list(queryset.select_related("outlet")[:2])
        if len(endpoints) != 1:
            self.message_user(
                request,
                "Select exactly one endpoint: its new secret is shown once.",
                messages.ERROR,
            )
            return None
        endpoint, secret = webhooks.endpoint_rotate_secret(
            outlet=endpoints[0].outlet, actor=_actor(request)
        )
        setattr(request, SECRET_ATTR, secret)
        return self._secret_page(request, endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyAdmin):
    """Every delivery to every partner. A dead letter is not retried on its own: fix the cause
    (with the partner), then put it back in line with "retry now"."""

    list_display = [
        "message_id",
        "outlet",
        "event_type",
        "case",
        "state",
        "attempts",
        "last_status",
        "last_attempt_at",
        "next_attempt_at",
        "dead_at",
    ]
    list_filter = ["state", "outlet", "event_type"]
    search_fields = ["=message_id", "=notification__case__reference"]
    list_select_related = ["outlet", "notification__case"]
    exclude = ["notification"]
    readonly_fields = ["case", "attempts", "next_attempt_at"]
    actions = ["retry_now"]

    @admin.display(description="case")
    def case(self, obj: WebhookDelivery) -> str:
        # A delivery is always about a case (only replies to mail have none).
        case = obj.notification.case
        return case.reference if case is not None else ""

    @admin.display(description="attempts")
    def attempts(self, obj: WebhookDelivery) -> int:
        return obj.notification.attempts

    @admin.display(description="next attempt")
    def next_attempt_at(self, obj: WebhookDelivery) -> Any:
        return obj.notification.next_attempt_at if obj.state == "pending" else None

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(RETRY_WEBHOOK_DELIVERY))

    @admin.action(description="Retry now (dead letters)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        retried = 0
        for delivery_id in queryset.filter(state="dead").values_list("pk", flat=True):
            try:
                webhooks.delivery_retry(delivery_id=delivery_id, actor=_actor(request))
            except DomainError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
                continue
            retried += 1
        self.message_user(request, f"{retried} dead letter(s) put back in line.")
