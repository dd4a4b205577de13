"""The partner API's request and answer shapes.

Input serializers check the shape only (types, lengths, unknown fields); what a request means
(a valid URL, the basis and its statements, the limits) is intake's to check
(`rights.services.intake_checks`), so every door refuses the same things in the same words. The
answer serializers describe `presenters.CaseView` for the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers

from rights.statements import STATEMENTS, Basis
from rights.states import CaseState, TargetState

MAX_TEXT = 20_000
MAX_URL = 4096


class StrictSerializer(serializers.Serializer[Any]):
    """Unknown fields are errors: a misspelt `url` must not pass for a request without URLs."""

    def to_internal_value(self, data: Any) -> Any:
        unknown = (
            sorted(set(map(str, data)) - set(self.fields)) if isinstance(data, Mapping) else []
        )
        errors: dict[str, Any] = {name: ["is not a field of this request"] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError({**exc.detail, **errors}) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return value


class ContactSerializer(StrictSerializer):
    """Who at the outlet speaks for this request (told of its progress by email)."""

    email = serializers.CharField(max_length=400, trim_whitespace=False)
    name = serializers.CharField(max_length=400, trim_whitespace=False)
    organisation = serializers.CharField(
        max_length=400, required=False, allow_blank=True, trim_whitespace=False
    )


class TakedownInSerializer(StrictSerializer):
    urls = serializers.ListField(
        child=serializers.CharField(max_length=MAX_URL, trim_whitespace=False),
        required=False,
        help_text=(
            f"The URLs to take down (ours or the primary source's), at most "
            f"{settings.TAKEDOWN_MAX_URLS}. Give URLs, a whole domain, or both."
        ),
    )
    whole_domain = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        help_text="Every article republished from this domain (one of the outlet's).",
    )
    basis = serializers.ChoiceField(choices=Basis.choices)
    statements = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(STATEMENTS)),
        help_text="The statements sworn for the basis: copyright and other need owner_or_agent, "
        "privacy and defamation subject_or_agent; all need accurate, all but other good_faith.",
    )
    explanation = serializers.CharField(
        max_length=MAX_TEXT, required=False, allow_blank=True, trim_whitespace=False
    )
    contact = ContactSerializer()


class BatchItemSerializer(TakedownInSerializer):
    idempotency_key = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=False,
        help_text="This item's own Idempotency-Key: a retry of the batch returns its case again.",
    )


class BatchInSerializer(StrictSerializer):
    """The batch's envelope; each item is checked on its own (`BatchItemSerializer`), so that
    one bad item, even one that is not an object, never sinks the rest."""

    requests = serializers.ListField(
        child=serializers.JSONField(allow_null=True), min_length=1, max_length=100
    )


class BatchInDocSerializer(serializers.Serializer[Any]):
    """The batch as the schema documents it."""

    requests = BatchItemSerializer(
        many=True, help_text="Up to 100 takedown requests, each handled on its own."
    )


class ClearanceInSerializer(StrictSerializer):
    urls = serializers.ListField(
        child=serializers.CharField(max_length=MAX_URL, trim_whitespace=False, allow_blank=True),
        min_length=1,
        max_length=1000,
    )


class TargetOutSerializer(serializers.Serializer[Any]):
    url = serializers.CharField()
    state = serializers.ChoiceField(choices=TargetState.choices)
    meaning = serializers.CharField(help_text="The state in plain words.")
    outcome_at = serializers.DateTimeField(allow_null=True)
    content_item = serializers.CharField(allow_null=True, help_text="Our copy's slug, if any.")


class DecisionOutSerializer(serializers.Serializer[Any]):
    decided_at = serializers.DateTimeField(allow_null=True)
    reasons = serializers.CharField()


class CaseOutSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField()
    state = serializers.ChoiceField(choices=CaseState.choices)
    meaning = serializers.CharField(help_text="The state in plain words.")
    basis = serializers.CharField(allow_null=True)
    statements = serializers.ListField(child=serializers.CharField())
    whole_domain = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    clock_started_at = serializers.DateTimeField(allow_null=True)
    deadline_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    targets = TargetOutSerializer(many=True)
    decision = DecisionOutSerializer(allow_null=True)
    may_withdraw = serializers.BooleanField()
    appeal_until = serializers.DateTimeField(allow_null=True)
    appealed_at = serializers.DateTimeField(allow_null=True)


class ProblemFieldSerializer(serializers.Serializer[Any]):
    field = serializers.CharField()
    detail = serializers.CharField()


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = ProblemFieldSerializer(many=True, required=False)  # type: ignore[assignment]


class BatchResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    status = serializers.IntegerField(
        help_text="201 a new case, 200 the case an earlier try of this item made, 4xx refused."
    )
    case = CaseOutSerializer(required=False)
    problem = ProblemSerializer(required=False)


class BatchOutSerializer(serializers.Serializer[Any]):
    results = BatchResultSerializer(many=True)


class RuleOutSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["exact", "prefix", "domain"])
    value = serializers.CharField()


class ClearanceResultSerializer(serializers.Serializer[Any]):
    url = serializers.CharField()
    allowed = serializers.BooleanField()
    blocked_by = RuleOutSerializer(allow_null=True)
    problem = serializers.CharField(
        required=False, help_text="Why the URL can never be published as given (not a URL)."
    )


class ClearanceOutSerializer(serializers.Serializer[Any]):
    results = ClearanceResultSerializer(many=True)
