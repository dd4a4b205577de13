"""Partner API keys: one outlet's machine credential, with one scope."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class KeyScope(models.TextChoices):
    TAKEDOWNS = "takedowns", "Takedowns (file, list, read, withdraw; webhooks)"
    CLEARANCE = "clearance", "Clearance (may a URL be published?)"


class PartnerKey(models.Model):
    """A partner outlet's API key.

    The key is `<prefix>.<secret>`; only the prefix (visible, the lookup) and a SHA-256 digest of
    the secret are stored. The secret is 256 random bits, so a fast digest is as strong as a slow
    password hash here, and costs nothing per request. The whole key is shown once, at creation.
    """

    outlet = models.ForeignKey(
        "rights.Outlet", on_delete=models.PROTECT, related_name="partner_keys"
    )
    name = models.CharField(max_length=100, help_text="what the key is for, e.g. 'CMS production'")
    scope = models.CharField(max_length=16, choices=KeyScope.choices, default=KeyScope.TAKEDOWNS)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never expires")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=KeyScope.values), name="partnerkey_scope_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.scope})"
