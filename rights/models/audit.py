"""The audit trail: append-only, one hash chain per stream.

The database refuses UPDATE and DELETE on events and checkpoints (triggers, see migrations).
`AuditStream` is the only mutable table here: each stream's head (last sequence number and
hash), locked by writers to serialise appends within a stream without a global lock, and
compared by `audit_verify` so that a removed tail is caught too.
"""

from __future__ import annotations

from django.db import models


class AuditStream(models.Model):
    name = models.CharField(max_length=120, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.name


class AuditEvent(models.Model):
    stream = models.CharField(max_length=120)
    seq = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=120)
    action = models.CharField(max_length=120)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["stream", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="auditevent_stream_seq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="auditevent_created")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.action}"


class AuditCheckpoint(models.Model):
    """A signed snapshot of every stream head: whoever rewrites the chains must also forge this."""

    created_at = models.DateTimeField()
    heads = models.JSONField(help_text="{stream: [seq, hash]}")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the canonical heads")
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of the digest")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} at {self.created_at:%Y-%m-%d %H:%M:%S}"
