"""Standing rules that keep removed content from being republished."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.functions import Left, StrIndex
from django.db.models.signals import pre_save
from django.dispatch import receiver

from rights.normalise import (
    KEYS_VERSION,
    NormaliseError,
    article_key,
    normalise_domain,
    normalise_url,
    prefix_key,
)


class SuppressionKind(models.TextChoices):
    EXACT = "exact", "Exact URL"
    PREFIX = "prefix", "URL prefix"
    DOMAIN = "domain", "Whole domain"


def rule_key(kind: str, value: str) -> str:
    """What a rule is looked up by: an exact rule's `article_key` (every spelling of the
    article has it), a prefix rule's `prefix_key`, a domain rule's domain; each of the value's
    normalised form, so that a value stored as written (in bulk, or before a normaliser change)
    still blocks its article. A value no URL parser takes is looked up as written."""
    try:
        if kind == SuppressionKind.EXACT:
            return article_key(normalise_url(value))
        if kind == SuppressionKind.PREFIX:
            return prefix_key(normalise_url(value))
        return normalise_domain(value, public_suffix_ok=True)
    except (NormaliseError, ValueError):
        return value


class SuppressionQuerySet(models.QuerySet[Any]):
    """Rules' keys follow their values however rows are written: one by one (`pre_save`, which
    loaddata's raw saves fire too), in bulk, or by `update`."""

    def bulk_create(self, objs: Iterable[Suppression], *args: Any, **kwargs: Any) -> list[Any]:
        rules: list[Any] = list(objs)
        for rule in rules:
            rule.key_fill()
        return super().bulk_create(rules, *args, **kwargs)

    def bulk_update(
        self, objs: Iterable[Suppression], fields: Any, *args: Any, **kwargs: Any
    ) -> int:
        rules: list[Any] = list(objs)
        names = set(fields)
        if names & {"kind", "value"}:
            for rule in rules:
                rule.key_fill()
            names |= {"key", "key_version"}
        return super().bulk_update(rules, sorted(names), *args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        if not {"kind", "value"} & set(kwargs):
            return super().update(**kwargs)
        ids = list(self.values_list("pk", flat=True))
        count = super().update(**kwargs)
        self.model._default_manager.filter(pk__in=ids).rekey()
        return count

    def stale(self) -> SuppressionQuerySet:
        """The rules whose keys were computed by another version of the key functions or of
        the Public Suffix List (`normalise.KEYS_VERSION`)."""
        return self.exclude(key_version=KEYS_VERSION)

    def rekey(self) -> int:
        """Compute these rules' keys again (in batches); how many changed."""
        changed, last = 0, 0
        while True:
            rules = list(self.filter(pk__gt=last).order_by("pk")[:REKEY_BATCH])
            if not rules:
                return changed
            moved = []
            for rule in rules:
                before = (rule.key, rule.key_version)
                rule.key_fill()
                if (rule.key, rule.key_version) != before:
                    moved.append(rule)
            # The plain bulk update: the keys are filled already.
            models.QuerySet.bulk_update(self, moved, ["key", "key_version"])
            changed += len(moved)
            last = rules[-1].pk


REKEY_BATCH = 2000


# The host part of a prefix rule's key (`bbc.co.uk` of `bbc.co.uk/news/`): the few prefix rules
# on the hosts of a batch's URLs are found through an index on it.
PREFIX_HOST = Left("key", StrIndex("key", models.Value("/")) - 1)


class Suppression(models.Model):
    kind = models.CharField(max_length=8, choices=SuppressionKind.choices)
    value = models.CharField(
        max_length=2048, help_text="normalised URL, URL prefix, or lower-case domain"
    )
    # Derived from kind and value on every save (`rule_key`): an exact rule's article key, so
    # that the publication check looks up one key per URL instead of its every spelling.
    key = models.CharField(max_length=2048, default="", editable=False)
    # The `normalise.KEYS_VERSION` the key was computed with: another one is computed again.
    key_version = models.CharField(max_length=40, default="", editable=False)
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
    reason = models.TextField(blank=True, help_text="why staff made the rule (empty for a case's)")
    created_at = models.DateTimeField(auto_now_add=True)
    # A rule is never deleted: lifting it keeps the row, with who lifted it and why.
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    lift_reason = models.TextField(blank=True)

    objects = SuppressionQuerySet.as_manager()

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
        indexes = [
            models.Index(
                fields=["key"], condition=models.Q(lifted_at__isnull=True), name="suppression_key"
            ),
            models.Index(
                PREFIX_HOST,
                condition=models.Q(kind="prefix", lifted_at__isnull=True),
                name="suppression_prefix_host",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The key itself is filled by `pre_save` (below), on raw saves too.
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"kind", "value"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "key", "key_version"}
        super().save(*args, **kwargs)

    def key_fill(self) -> None:
        self.key = rule_key(self.kind, self.value)
        self.key_version = KEYS_VERSION


@receiver(pre_save, sender=Suppression)
def _suppression_key(sender: Any, instance: Suppression, **kwargs: Any) -> None:
    """Every save of a rule, loaddata's raw ones included, stores the key of its value."""
    instance.key_fill()


def rules_rekey(sender: Any, using: str, apps: Any = None, **kwargs: Any) -> None:
    """After every `migrate`: the suppression rules whose keys another version of the key
    functions or of the Public Suffix List computed get theirs computed again, before the
    release serves a publication check."""
    if apps is not None:
        try:
            apps.get_model("rights", "Suppression")._meta.get_field("key_version")
        except (LookupError, FieldDoesNotExist):
            return  # migrated back to before rules had keys
    changed = Suppression.objects.using(using).stale().rekey()
    if changed and kwargs.get("verbosity", 1) >= 1:
        print(f"Suppression rules re-keyed: {changed}")


class LadderRung(models.Model):
    """One rung of the escalation ladder, fired for one case. The unique constraint is what makes
    each rung fire exactly once, however many workers and schedulers race for it."""

    case = models.ForeignKey(
        "rights.TakedownRequest", on_delete=models.PROTECT, related_name="rungs"
    )
    rung = models.CharField(max_length=16)
    # 0 for the case's first clock, 1 for its appeal's: each round climbs the ladder once.
    round = models.PositiveSmallIntegerField(default=0)
    fired_at = models.DateTimeField()
    due_at = models.DateTimeField()
    pending_targets = models.PositiveIntegerField(help_text="targets without an outcome then")

    class Meta:
        ordering = ["case", "due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "round", "rung"], name="ladderrung_once_per_case_round"
            ),
            models.CheckConstraint(
                condition=models.Q(rung__in=["reminder", "escalation", "failsafe", "breach"]),
                name="ladderrung_rung_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rung} for case {self.case_id}"


class RemovalAction(models.TextChoices):
    DISABLE = "disable", "Disable"
    REMOVE = "remove", "Remove"
    RESTORE = "restore", "Restore"


class RemovalEffect(models.Model):
    """One action of one removal backend on one target: done once, retried until it is, or until
    the other side refuses it for good (`dead_at`: a dead letter, retried only by staff)."""

    target = models.ForeignKey("rights.Target", on_delete=models.PROTECT, related_name="effects")
    backend = models.CharField(max_length=32)
    action = models.CharField(max_length=8, choices=RemovalAction.choices)
    # The case's appeal round when the effect was owed: an appeal may disable or remove again.
    round = models.PositiveSmallIntegerField(default=0)
    key = models.CharField(max_length=80, unique=True, help_text="idempotency key sent along")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(
        null=True, blank=True, help_text="refused for good: not retried until staff retry it"
    )
    # Remote effects on one content item are made one at a time: while this is in the future,
    # this effect's call is in flight and every other effect on the same item waits for it.
    call_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("retry_removaleffect", "Can put dead letters back in line")]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "backend", "action", "round"], name="removaleffect_once_per_round"
            ),
        ]
        indexes = [
            models.Index(
                fields=["dead_at"],
                condition=models.Q(dead_at__isnull=False, done_at__isnull=True),
                name="removaleffect_dead",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class Audience(models.TextChoices):
    REQUESTER = "requester", "The requester"
    REVIEWERS = "reviewers", "Reviewers"
    LEADS = "leads", "Leads"
    # A partner outlet's webhook endpoint (rights.services.webhooks).
    PARTNER = "partner", "Partner outlet"


class Transport(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Partner webhook"


class Notification(models.Model):
    """The outbox: a message is a row first, sent by a task, retried, and marked sent once.

    The address is looked up when sending, so erasing a requester leaves nothing behind here.
    """

    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=32)
    audience = models.CharField(max_length=16, choices=Audience.choices)
    transport = models.CharField(max_length=16, choices=Transport.choices, default=Transport.EMAIL)
    # A message is about a case, or (a reply to mail that named no article of ours) about an
    # inbound message alone.
    case = models.ForeignKey(
        "rights.TakedownRequest",
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    inbound = models.ForeignKey(
        "rights.InboundMessage",
        on_delete=models.PROTECT,
        related_name="notifications",
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(case__isnull=False) | models.Q(inbound__isnull=False),
                name="notification_about_something",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(sent_at__isnull=True),
                name="notification_unsent_due",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class SweeperRun(models.Model):
    """The sweeper's heartbeat: one row, so a dead scheduler shows as lag."""

    name = models.CharField(max_length=32, primary_key=True)
    last_run_at = models.DateTimeField()
    last_claimed = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
