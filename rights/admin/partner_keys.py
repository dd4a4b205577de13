"""Partner API keys in the console: created (the key shown once, on the page that follows) and
revoked by staff holding `manage_partner_keys` (the `admin` role); nothing else about a key can
be edited. Both go through rights.services.partner_keys, which audits them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from rights.admin.base import FORMFIELD_OVERRIDES
from rights.models import PartnerKey
from rights.permissions import MANAGE_PARTNER_KEYS
from rights.services.partner_keys import partner_key_create, partner_key_revoke

# The request attribute that carries a new key's plaintext from save_model to the page that
# shows it: never a message (stored in a cookie) or the session.
PLAINTEXT_ATTR = "_partner_key_plaintext"


def _actor(request: HttpRequest) -> str:
    return f"staff:{request.user.pk}"


class PartnerKeyForm(forms.ModelForm):
    # One labelled field (the browser's date and time picker) rather than the admin's split
    # date and time inputs, whose two boxes have no label of their own.
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC)",
        help_text="Empty: the key never expires.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=[
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
        ],
    )
    name = forms.CharField(
        required=False,
        max_length=100,
        help_text="What the key is for, e.g. 'CMS production' (empty: named after its scope).",
    )

    class Meta:
        model = PartnerKey
        fields = ["outlet", "scope", "name", "expires_at"]

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return value


@admin.register(PartnerKey)
class PartnerKeyAdmin(admin.ModelAdmin):
    form = PartnerKeyForm
    formfield_overrides = FORMFIELD_OVERRIDES
    list_display = ["prefix", "outlet", "scope", "name", "created_at", "expires_at", "revoked_at"]
    list_filter = ["scope", "outlet"]
    list_select_related = ["outlet"]
    search_fields = ["prefix", "name", "outlet__slug", "outlet__name"]
    readonly_fields = ["prefix", "created_at", "created_by", "revoked_at"]
    actions = ["revoke"]

    def _manages(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(MANAGE_PARTNER_KEYS))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._manages(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    # A key is never edited or deleted: it is revoked, and the row stays for the record.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PartnerKey, form: Any, change: bool) -> None:
        new = partner_key_create(
            outlet=obj.outlet,
            scope=obj.scope,
            name=obj.name,
            expires_at=obj.expires_at,
            actor=_actor(request),
            created_by_id=request.user.pk,
        )
        for field in ("pk", "prefix", "secret_digest", "created_at", "created_by_id", "name"):
            setattr(obj, field, getattr(new.key, field))
        setattr(request, PLAINTEXT_ATTR, new.plaintext)

    def response_add(
        self, request: HttpRequest, obj: PartnerKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        plaintext = getattr(request, PLAINTEXT_ATTR, None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "rights/admin/partner_key_created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "key": obj,
                "plaintext": plaintext,
                "title": "Partner key created",
            },
        )
        # Shown once: no cache may keep the page that holds it.
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys", permissions=["manage"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[PartnerKey]) -> None:
        done = 0
        for key in queryset.filter(revoked_at__isnull=True):
            partner_key_revoke(key=key, actor=_actor(request))
            done += 1
        self.message_user(request, f"{done} key{'s' if done != 1 else ''} revoked.")
