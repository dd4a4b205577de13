"""Standing rules that keep removed content from being republished."""

from __future__ import annotations

from django.db import models


class SuppressionKind(models.TextChoices):
    EXACT = "exact", "Exact URL"
    PREFIX = "prefix", "URL prefix"
    DOMAIN = "domain", "Whole domain"


class Suppression(models.Model):
    kind = models.CharField(max_length=8, choices=SuppressionKind.choices)
    value = models.CharField(
        max_length=2048, help_text="normalised URL, URL prefix, or lower-case domain"
    )
    case = models.ForeignKey(
        "rights.TakedownRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="suppressions",
    )
    content_item = models.ForeignKey(
        "rights.ContentItem",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="suppressions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=SuppressionKind.values), name="suppression_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["kind", "value"],
                condition=models.Q(lifted_at__isnull=True),
                name="suppression_active_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
