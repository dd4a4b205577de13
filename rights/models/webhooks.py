"""Partner webhooks: one endpoint per partner outlet, and the deliveries made to it.

A delivery rides on the outbox: its `Notification` row (transport `webhook`, audience
`partner`) is what the sweeper claims and `notification_send` sends, leases and retries, like
every other message. The row here holds what only a webhook has: the message id the partner
de-duplicates by, the body signed on every attempt, and what the partner last answered.
"""

from __future__ import annotations

from django.db import models


class WebhookEndpoint(models.Model):
    """Where a partner outlet is told about its cases.

    The secret (`whsec_` and 32 random bytes in base64) signs each delivery, so it is stored as it
    is: it must be readable to sign. It is shown once, when it is made, and never listed, logged
    or audited (the trail records that it changed, not what it is).
    """

    outlet = models.OneToOneField(
        "rights.Outlet", on_delete=models.PROTECT, related_name="webhook_endpoint"
    )
    url = models.URLField(max_length=2048)
    secret = models.CharField(max_length=80, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    secret_rotated_at = models.DateTimeField()

    class Meta:
        ordering = ["outlet"]

    def __str__(self) -> str:
        return f"webhook endpoint of outlet {self.outlet_id}"


class WebhookDeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead letter"


class WebhookDelivery(models.Model):
    """One event for one partner: sent, retried and marked through its outbox row."""

    notification = models.OneToOneField(
        "rights.Notification", on_delete=models.PROTECT, related_name="webhook"
    )
    outlet = models.ForeignKey(
        "rights.Outlet", on_delete=models.PROTECT, related_name="webhook_deliveries"
    )
    # `msg_` and 26 random characters: the same on every attempt, so a repeat is recognised.
    message_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(
        max_length=12, choices=WebhookDeliveryState.choices, default=WebhookDeliveryState.PENDING
    )
    # Attempts after which a failure is a dead letter; staff's retry grants another round.
    give_up_after = models.PositiveIntegerField()
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=200, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("retry_webhookdelivery", "Can put dead webhook deliveries back in line")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=WebhookDeliveryState.values),
                name="webhookdelivery_state_valid",
            ),
        ]
        indexes = [
            # The partner's list, newest first, by cursor.
            models.Index(fields=["outlet", "-id"], name="webhookdelivery_outlet"),
            models.Index(fields=["state", "-id"], name="webhookdelivery_state"),
        ]

    def __str__(self) -> str:
        return self.message_id
