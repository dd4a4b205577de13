"""What the EU DSA transparency database already holds of our statements of reasons."""

from __future__ import annotations

from django.db import models

from rights.models.cases import StatementOfReasons, Target


class SubmissionOutcome(models.TextChoices):
    CREATED = "created", "Created by our submission"
    EXISTING = "existing", "Already held (the database refused its puid as not unique)"


class SorSubmission(models.Model):
    """One exported statement (a statement of reasons, for one restricted URL) that the
    transparency database holds, by its `puid`: recorded once the database answered that it
    created it, or that it already held that puid. A statement recorded here is never sent
    again, so a retried or concurrent submission cannot make a duplicate."""

    puid = models.CharField(max_length=500, unique=True)
    statement = models.ForeignKey(
        StatementOfReasons, on_delete=models.PROTECT, related_name="submissions"
    )
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=SubmissionOutcome.choices)
    # The database's own id for the statement, when it said (no personal data: a UUID).
    database_uuid = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField()

    class Meta:
        verbose_name = "submitted statement of reasons"
        constraints = [
            models.UniqueConstraint(fields=["statement", "target"], name="sor_submission_once"),
            models.CheckConstraint(
                condition=models.Q(outcome__in=SubmissionOutcome.values),
                name="sor_submission_outcome_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.puid
