"""Requesters, cases (TakedownRequest) and the URLs each case names (Target)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from rights.states import CLOCK_RUNNING_STATES, OPEN_TARGET_STATES, CaseState, TargetState


def case_stream(reference: str) -> str:
    """The audit stream of the case with this reference: its own hash chain."""
    return f"case:{reference}"


class Requester(models.Model):
    """The person or organisation asking. Contact details live here only, so that they can be
    redacted or erased without touching the audit trail, which refers to `requester:<id>`."""

    email = models.EmailField(max_length=254, unique=True, help_text="stored lower-case")
    name = models.CharField(max_length=200)
    organisation = models.CharField(max_length=200, blank=True)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    unfounded_count = models.PositiveIntegerField(
        default=0, help_text="requests found manifestly unfounded"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Abuse controls (DSA Art. 23): a warning comes before a suspension.
    warned_at = models.DateTimeField(null=True, blank=True)
    # Erasure (GDPR Art. 17): name, address, organisation and the free texts they wrote are
    # tombstones from then on; their cases keep their outcomes.
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [
            ("suspend_requester", "Can warn and suspend requesters, and lift a suspension"),
            ("erase_requester", "Can erase a requester's personal data"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")),
                name="requester_email_lower",
            ),
        ]

    def __str__(self) -> str:
        return f"requester {self.pk}"

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[-1]

    @property
    def actor(self) -> str:
        return f"requester:{self.pk}"


class Channel(models.TextChoices):
    WEB = "web", "Web form"
    EMAIL = "email", "Email"
    API = "api", "Partner API"
    STAFF = "staff", "Staff"


class TakedownRequest(models.Model):
    """A case: one request to take content down, driven to an outcome before its deadline."""

    reference = models.CharField(max_length=16, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    requester = models.ForeignKey(Requester, on_delete=models.PROTECT, related_name="cases")
    outlet = models.ForeignKey(
        "rights.Outlet",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        help_text="the partner outlet whose API key filed the case",
    )
    # Where the submission came from: channel, the door's scope (a partner's outlet) and the
    # door's own id for it (Idempotency-Key, Message-ID, form token). Unique, so that a retry
    # finds the first case; `request_digest` tells a true retry from a reused id.
    source_key = models.CharField(max_length=400, null=True, blank=True, unique=True)
    request_digest = models.CharField(max_length=64, blank=True)
    basis = models.CharField(max_length=16, blank=True, help_text="empty: none was stated")
    explanation = models.TextField(blank=True)
    statements = models.JSONField(
        default=list, help_text="keys of the statements the requester swore (empty: none)"
    )
    statements_version = models.CharField(max_length=16)
    whole_domain = models.CharField(max_length=253, blank=True)
    trusted = models.BooleanField(default=False)
    state = models.CharField(max_length=32, choices=CaseState.choices)

    received_at = models.DateTimeField()
    confirm_by = models.DateTimeField(null=True, blank=True)
    clock_started_at = models.DateTimeField(null=True, blank=True)
    deadline_seconds = models.PositiveIntegerField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    decision_reasons = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    # An appeal (DSA Art. 20) reopens the case with a clock of its own: the ladder's rungs and
    # the removal effects of each round are counted apart, and someone other than the decider
    # whose decision is appealed (`first_decided_by`) decides it.
    appeal_round = models.PositiveSmallIntegerField(default=0)
    appealed_at = models.DateTimeField(null=True, blank=True)
    appeal_reasons = models.TextField(blank=True)
    first_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Who is working on the case (claimed, or assigned by a colleague): a queue's "mine", not a
    # lock; any reviewer may still decide. Changed through services.review.case_assign only.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )

    # The deadline engine: when the sweeper next has to look at this case, and the lease a
    # claimed case holds so that no second sweep hands it out while a worker is on it.
    next_check_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "case"
        ordering = ["-received_at"]
        # The staff roles' acts (groups in migration 0008); viewing is Django's view_ permission.
        permissions = [
            ("decide_case", "Can decide cases (approve, reject)"),
            ("decide_appeal", "Can decide appeals against a colleague's decision"),
            ("assign_case", "Can claim cases and assign them to colleagues"),
            ("restore_case", "Can restore content removed in error"),
            ("view_sla_dashboard", "Can see the SLA dashboard"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=CaseState.values), name="case_state_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=Channel.values), name="case_channel_valid"
            ),
            # The clock is all or nothing: a started clock always has its deadline and length.
            models.CheckConstraint(
                condition=(
                    models.Q(
                        clock_started_at__isnull=True,
                        deadline_at__isnull=True,
                        deadline_seconds__isnull=True,
                    )
                    | models.Q(
                        clock_started_at__isnull=False,
                        deadline_at__isnull=False,
                        deadline_seconds__gt=0,
                    )
                ),
                name="case_clock_complete",
            ),
        ]
        indexes = [
            models.Index(
                fields=["deadline_at"],
                condition=models.Q(state__in=sorted(CLOCK_RUNNING_STATES)),
                name="case_open_by_deadline",
            ),
            models.Index(fields=["requester", "state"], name="case_requester_state"),
            models.Index(
                fields=["next_check_at"],
                condition=models.Q(next_check_at__isnull=False),
                name="case_due",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def audit_stream(self) -> str:
        return case_stream(self.reference)


class Measure(models.TextChoices):
    """What a decision did to the content it names (DSA Art. 17(3)(a))."""

    REMOVAL = "removal", "Removal"
    DISABLING = "disabling", "Access disabled"
    PARTIAL = "partial", "Removal of part of what was named"
    NO_ACTION = "no_action", "No action: the request was refused"
    RESTORATION = "restoration", "Restored after review"


class StatementOfReasons(models.Model):
    """One decision's statement of reasons (DSA Art. 17): written once, when the decision is
    made, for the requester and for the transparency database; one per case and round (an
    appeal's decision has its own). Free text in it may name people: it is erased with the
    requester's other texts where they wrote it, never here (staff wrote it)."""

    case = models.ForeignKey(
        TakedownRequest, on_delete=models.PROTECT, related_name="statements_of_reasons"
    )
    round = models.PositiveSmallIntegerField(default=0)
    measure = models.CharField(max_length=16, choices=Measure.choices)
    # Each target's id and outcome at the decision: the measure's territorial/URL scope.
    scope = models.JSONField(default=list)
    ground = models.CharField(
        max_length=32, help_text="the legal or contractual ground: the basis relied on"
    )
    facts = models.TextField(help_text="the facts and circumstances relied on")
    reasons = models.TextField(help_text="the explanation the requester reads")
    automated_detection = models.BooleanField(default=False)
    automated_decision = models.BooleanField(
        default=False, help_text="decided by a rule (trust), with no person deciding"
    )
    redress = models.TextField(help_text="the options for redress, as told to the requester")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "statement of reasons"
        verbose_name_plural = "statements of reasons"
        ordering = ["case", "round", "decided_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(measure__in=Measure.values), name="sor_measure_valid"
            ),
        ]
        indexes = [models.Index(fields=["decided_at"], name="sor_by_decided_at")]

    def __str__(self) -> str:
        return f"statement of reasons for {self.case_id} (round {self.round})"


class Target(models.Model):
    """One URL named in a case, resolved to a ContentItem where we have it."""

    case = models.ForeignKey(TakedownRequest, on_delete=models.PROTECT, related_name="targets")
    url = models.URLField(max_length=2048, help_text="normalised")
    content_item = models.ForeignKey(
        "rights.ContentItem",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="targets",
    )
    state = models.CharField(
        max_length=16, choices=TargetState.choices, default=TargetState.PENDING
    )
    outcome_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=TargetState.values), name="target_state_valid"
            ),
            models.UniqueConstraint(fields=["case", "url"], name="target_url_once_per_case"),
            models.UniqueConstraint(
                fields=["case", "content_item"],
                condition=models.Q(
                    content_item__isnull=False,
                    state__in=list(OPEN_TARGET_STATES),
                ),
                name="target_one_open_per_item_per_case",
            ),
        ]

    def __str__(self) -> str:
        return self.url

    def audit_stream(self) -> str:
        return case_stream(self.case.reference)
