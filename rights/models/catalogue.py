"""Outlets, their verified domains, and the content we republish from them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from rights.states import ContentStatus


class Outlet(models.Model):
    """A media organisation whose articles are republished. A partner outlet has API keys."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    is_partner = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_partner_keys", "Can create and revoke partner API keys")]

    def __str__(self) -> str:
        return self.name

    def audit_stream(self) -> str:
        return f"outlet:{self.slug}"


class DomainVerification(models.TextChoices):
    DNS_TXT = "dns_txt", "DNS TXT record"
    STAFF_ATTESTATION = "staff_attestation", "Staff attestation"


class OutletDomain(models.Model):
    """A domain an outlet has proved it controls; content from it (and its subdomains) is theirs.

    Only a verified domain lends trust, and its verification says how (a TXT record found at
    `_rights-verify.<domain>`, or a named staff member's attestation), when and by whom.
    """

    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True, help_text="lower-case, IDNA (punycode)")
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_method = models.CharField(
        max_length=20, choices=DomainVerification.choices, blank=True
    )
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    verification_token = models.CharField(
        max_length=64, blank=True, help_text="the value the TXT record must hold"
    )
    verification_note = models.TextField(blank=True)
    # A TXT-verified domain's record is looked up again on a schedule: consecutive lookups that
    # found it gone, and when it was last looked up (rights.services.catalogue.domain_recheck).
    recheck_failures = models.PositiveSmallIntegerField(
        default=0, help_text="scheduled look-ups in a row that found the TXT record gone"
    )
    verified_token = models.CharField(
        max_length=64, blank=True, help_text="the token the TXT record held when verified"
    )
    rechecked_at = models.DateTimeField(
        null=True, blank=True, help_text="when the TXT record was last looked up on schedule"
    )
    staff_mail_only = models.BooleanField(
        default=False,
        help_text=(
            "The outlet attests that this domain gives mailboxes to its own staff only. Only then "
            "does any verified address here speak for the outlet; a portal that also hands out "
            "free mail (t-online.de, web.de, yahoo.com) must leave this off."
        ),
    )

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(domain=Lower("domain")),
                name="outletdomain_domain_lower",
            ),
            # Verified means verified somehow: never a date without the method that earned it.
            models.CheckConstraint(
                condition=(
                    models.Q(verified_at__isnull=True, verification_method="")
                    | (
                        models.Q(verified_at__isnull=False)
                        & models.Q(verification_method__in=DomainVerification.values)
                    )
                ),
                name="outletdomain_verified_how",
            ),
        ]

    def __str__(self) -> str:
        return self.domain


class RightsContact(models.Model):
    """An address the outlet declared as speaking for its rights: once verified, its requests
    for the outlet's content are trusted, whatever domain the address is at."""

    outlet = models.ForeignKey(Outlet, on_delete=models.CASCADE, related_name="rights_contacts")
    email = models.EmailField(max_length=254, help_text="stored lower-case")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["outlet", "email"], name="rightscontact_once"),
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="rightscontact_email_lower"
            ),
        ]

    def __str__(self) -> str:
        return f"rights contact {self.pk} of {self.outlet_id}"


class ContentItem(models.Model):
    """One republished article: our public copy of a primary source."""

    slug = models.SlugField(max_length=200, unique=True, help_text="our public URL is /a/SLUG/")
    source_url = models.URLField(
        max_length=2048, unique=True, help_text="the primary source, normalised: the lookup key"
    )
    source_domain = models.CharField(max_length=253, db_index=True)
    outlet = models.ForeignKey(
        Outlet, on_delete=models.PROTECT, null=True, blank=True, related_name="items"
    )
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ContentStatus.choices, default=ContentStatus.LIVE
    )
    published_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ContentStatus.values), name="contentitem_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("rights:content", kwargs={"slug": self.slug})

    @property
    def public_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}{self.get_absolute_url()}"

    def audit_stream(self) -> str:
        return self.outlet.audit_stream() if self.outlet_id else "system"  # type: ignore[union-attr]
