"""The mailbox: every message that reached the takedown address, kept raw before it is read.

A row is written (and committed) with the message's bytes first; reading it is a separate step
(rights.mail.process). Whatever that step makes of it, the row stays: the case it opened or
joined, the reply it got, or why it was set aside for staff (`state`, `reason`).
"""

from __future__ import annotations

from django.db import models


class MailState(models.TextChoices):
    STORED = "stored", "Stored, not yet read"
    OPENED = "opened", "Opened a case"
    THREADED = "threaded", "Joined an existing case"
    ANSWERED = "answered", "Named no article of ours: told how to"
    IGNORED = "ignored", "Automatic message: never answered"
    LIMITED = "limited", "Over the sender's rate limit: not answered"
    NEEDS_STAFF = "needs_staff", "Not understood: waiting for staff"
    DISMISSED = "dismissed", "Dismissed by staff"
    CASE_BY_STAFF = "case_by_staff", "Made into a case by staff"


# What staff still have to look at: the console's queue.
STAFF_QUEUE_STATES = frozenset({MailState.STORED, MailState.NEEDS_STAFF})


class InboundMessage(models.Model):
    """One message as it arrived, under a unique key: its Message-ID, or a digest of its bytes
    when it has none, so that the same message delivered twice is one row."""

    key = models.CharField(max_length=300, unique=True)
    source = models.CharField(max_length=8, help_text="pipe (the MTA) or imap")
    raw = models.BinaryField(help_text="the message's bytes, up to MAIL_MAX_BYTES")
    size = models.PositiveIntegerField(help_text="the message's full size in bytes")
    truncated = models.BooleanField(default=False, help_text="larger than MAIL_MAX_BYTES: cut")
    received_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=MailState.choices, default=MailState.STORED)
    reason = models.CharField(max_length=64, blank=True, help_text="why it was set aside")
    # What reading it found (empty until then).
    message_id = models.CharField(max_length=998, blank=True)
    sender = models.CharField(max_length=254, blank=True, help_text="the From address")
    sender_verified = models.BooleanField(
        default=False, help_text="our receiver's DMARC or aligned DKIM pass for its domain"
    )
    subject = models.CharField(max_length=300, blank=True)
    urls = models.JSONField(default=list, help_text="every URL the message names")
    case = models.ForeignKey(
        "rights.TakedownRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="inbound_messages",
    )
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "inbound message"
        ordering = ["-received_at", "-pk"]
        permissions = [
            ("view_raw_inboundmessage", "Can read an inbound message's raw source"),
            ("triage_inboundmessage", "Can make an inbound message into a case or dismiss it"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=MailState.values), name="inbound_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "received_at"], name="inbound_by_state"),
            models.Index(fields=["sender", "received_at"], name="inbound_by_sender"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk}"

    def audit_stream(self) -> str:
        return f"mail:{self.pk}"
