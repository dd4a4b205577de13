"""Outlets, their verified domains, and the catalogue of republished content."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from rights.admin.base import (
    FORMFIELD_OVERRIDES,
    ChangedFieldsOnlyAdmin,
    changed_fields,
    https_formfield,
)
from rights.errors import DomainError
from rights.models import ContentItem, Outlet, OutletDomain, RightsContact
from rights.normalise import NormaliseError, host_of, normalise_domain, normalise_url
from rights.services.catalogue import (
    DNS_TIMEOUT,
    check_publishable,
    domain_attest,
    domain_txt_name,
    domain_txt_value,
    domain_verification_start,
    domain_verify_dns,
    trust_record_delete,
    trust_record_save,
)

# Verifying a domain changes what decides trust: the same permission as editing one.
VERIFY_DOMAIN = "rights.change_outletdomain"


def _actor(request: HttpRequest) -> str:
    return f"staff:{request.user.pk}"


class TrustAuditedAdmin(ChangedFieldsOnlyAdmin):
    """Saves and deletes (inline rows included) go through the catalogue service, which audits
    every change to what decides trust on the outlet's stream."""

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        fields = changed_fields(obj, form) if change else None
        trust_record_save(record=obj, actor=_actor(request), fields=fields)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        trust_record_delete(record=obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            trust_record_delete(record=obj, actor=_actor(request))

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool
    ) -> None:
        for obj in formset.save(commit=False):
            edited = next((f for f in formset.forms if f.instance is obj), None)
            fields = changed_fields(obj, edited) if edited is not None and obj.pk else None
            trust_record_save(record=obj, actor=_actor(request), fields=fields)
        for obj in formset.deleted_objects:
            trust_record_delete(record=obj, actor=_actor(request))


class OutletDomainForm(forms.ModelForm):
    # Verification is never typed in: it is recorded by the verify page (DNS TXT record or a
    # named staff attestation), with how, when and by whom.
    class Meta:
        model = OutletDomain
        fields = ["domain", "staff_mail_only"]

    def clean_domain(self) -> str:
        try:
            return normalise_domain(self.cleaned_data["domain"])
        except NormaliseError as exc:
            raise forms.ValidationError(f"The domain {exc}.") from exc


def verification_summary(domain: OutletDomain) -> str:
    if domain.verified_at is None:
        return "unverified: lends no trust"
    return f"{domain.get_verification_method_display()}, {domain.verified_at:%Y-%m-%d %H:%M}"


def verify_link(domain: OutletDomain) -> str:
    if domain.pk is None:
        return "save the domain first, then verify it"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:rights_outletdomain_verify", args=[domain.pk]),
        verification_summary(domain) + " — verify…",
    )


class OutletDomainInline(admin.TabularInline):
    formfield_overrides = FORMFIELD_OVERRIDES
    model = OutletDomain
    form = OutletDomainForm
    extra = 0
    readonly_fields = ["verification"]

    @admin.display(description="verification")
    def verification(self, obj: OutletDomain) -> str:
        return verify_link(obj)


class RightsContactForm(forms.ModelForm):
    class Meta:
        model = RightsContact
        fields = ["email"]

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()


class RightsContactInline(admin.TabularInline):
    model = RightsContact
    form = RightsContactForm
    extra = 0


@admin.register(Outlet)
class OutletAdmin(TrustAuditedAdmin):
    list_display = ["name", "slug", "is_partner", "domain_list", "item_count", "created_at"]
    list_filter = ["is_partner"]
    search_fields = ["name", "slug", "domains__domain"]
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ["created_at"]
    inlines = [OutletDomainInline, RightsContactInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The slug names the outlet's audit stream: renaming it would split its trail.
            fields.append("slug")
        return fields

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj is not None else dict(self.prepopulated_fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Outlet]:
        return (
            super()
            .get_queryset(request)
            .annotate(item_count=Count("items", distinct=True))
            .prefetch_related("domains")
        )

    @admin.display(description="domains")
    def domain_list(self, obj: Outlet) -> str:
        return ", ".join(
            f"{d.domain}{'' if d.verified_at else ' (unverified)'}" for d in obj.domains.all()
        )

    @admin.display(description="items", ordering="item_count")
    def item_count(self, obj: Outlet) -> int:
        return obj.item_count  # type: ignore[attr-defined]


@admin.register(OutletDomain)
class OutletDomainAdmin(TrustAuditedAdmin):
    form = OutletDomainForm
    fields = [
        "outlet",
        "domain",
        "staff_mail_only",
        "verification",
        "verification_method",
        "verified_at",
        "verified_by",
        "verification_note",
        "rechecked_at",
        "recheck_failures",
    ]
    readonly_fields = [
        "verification",
        "verification_method",
        "verified_at",
        "verified_by",
        "verification_note",
        "rechecked_at",
        "recheck_failures",
    ]
    list_display = [
        "domain",
        "outlet",
        "verification_method",
        "verified_at",
        "rechecked_at",
        "staff_mail_only",
    ]
    list_filter = [
        ("verified_at", admin.EmptyFieldListFilter),
        "verification_method",
        "staff_mail_only",
        "outlet",
    ]
    search_fields = ["domain", "outlet__name"]
    list_select_related = ["outlet"]
    actions = ["verify_selected"]

    @admin.display(description="verification")
    def verification(self, obj: OutletDomain) -> str:
        return verify_link(obj)

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(VERIFY_DOMAIN))

    @admin.action(description="Verify the selected domain…", permissions=["verify"])
    def verify_selected(
        self, request: HttpRequest, queryset: QuerySet[OutletDomain]
    ) -> HttpResponse | None:
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            self.message_user(request, "Select one domain to verify.", level=messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:rights_outletdomain_verify", args=ids))

    def get_urls(self) -> list[URLPattern]:
        verify = path(
            "<int:object_id>/verify/",
            self.admin_site.admin_view(self.verify_view),
            name="rights_outletdomain_verify",
        )
        return [verify, *super().get_urls()]

    def verify_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The TXT record to create, a button that checks it, and a staff attestation form."""
        if not self.has_verify_permission(request):
            raise PermissionDenied
        domain = get_object_or_404(
            OutletDomain.objects.select_related("outlet", "verified_by"), pk=object_id
        )
        error, note = "", ""
        if request.method == "POST":
            step = request.POST.get("step", "")
            note = request.POST.get("note", "")
            try:
                if step == "start":
                    domain_verification_start(domain=domain, user=request.user)
                    done = "A new token was issued: create the TXT record shown, then check it."
                elif step == "dns":
                    domain_verify_dns(domain=domain, user=request.user)
                    done = f"{domain.domain} is verified by its DNS TXT record."
                elif step == "attest":
                    domain_attest(domain=domain, user=request.user, note=note)
                    done = f"{domain.domain} is verified by your attestation."
                else:
                    raise DomainError("unknown step")
            except DomainError as exc:
                error = exc.message
            else:
                self.message_user(request, done)
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Verify {domain.domain}",
            "domain": domain,
            "summary": verification_summary(domain),
            "txt_name": domain_txt_name(domain),
            "txt_value": domain_txt_value(domain),
            "dns_timeout": DNS_TIMEOUT,
            "error": error,
            "note": note,
        }
        return TemplateResponse(request, "rights/admin/domain_verify.html", context)


class ContentItemForm(forms.ModelForm):
    class Meta:
        model = ContentItem
        formfield_callback = https_formfield
        fields = ["title", "slug", "source_url", "outlet", "body", "published_at"]

    def clean_source_url(self) -> str:
        try:
            return normalise_url(self.cleaned_data["source_url"])
        except NormaliseError as exc:
            raise forms.ValidationError(f"The source URL {exc}.") from exc

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("source_url"):
            # The source domain is always the source URL's host: derived, never typed.
            self.instance.source_domain = host_of(cleaned["source_url"])
            if "source_url" in self.changed_data:
                self.instance.source_url = cleaned["source_url"]
                try:
                    check_publishable(self.instance)
                except DomainError as exc:
                    self.add_error("source_url", exc.message)
        return cleaned

    @property
    def derived_fields(self) -> list[str]:
        return ["source_domain"] if "source_url" in self.changed_data else []


@admin.register(ContentItem)
class ContentItemAdmin(TrustAuditedAdmin):
    form = ContentItemForm
    list_display = ["title", "outlet", "source_domain", "status", "published_at"]
    list_filter = ["status", "outlet"]
    search_fields = ["title", "slug", "=source_url", "source_domain"]
    list_select_related = ["outlet"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ("title",)}
    # Status changes only through rights.workflow.transition (removal, fail-safe, appeal).
    readonly_fields = ["status", "source_domain", "updated_at"]
    fields = [
        "title",
        "slug",
        "source_url",
        "source_domain",
        "outlet",
        "status",
        "published_at",
        "body",
        "updated_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Our public URL and the source URL are what cases and suppressions refer to.
            fields += ["slug", "source_url"]
        return fields

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        return {} if obj is not None else dict(self.prepopulated_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Content leaves the catalogue through a takedown, which suppresses it; a delete would not.
        return False
