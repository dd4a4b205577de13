"""Suppression rules staff make and lift through the audited service and the console: reasons
recorded, rows never deleted, a lifted rule no longer blocking, and only the `admin` role
allowed (real PostgreSQL)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from rights import audit
from rights.errors import DomainError
from rights.models import AuditEvent, Suppression, SuppressionKind
from rights.services.suppression import (
    may_publish,
    suppression_add,
    suppression_create,
    suppression_lift,
)
from tests.factories import TakedownRequestFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db

STORY = "https://www.daily-herald.com/news/story-1/"
CHANGELIST = reverse("admin:rights_suppression_changelist")
ADD = reverse("admin:rights_suppression_add")


@pytest.fixture
def ada(db: None) -> User:
    return staff_in("admin", "ada")


def _system_events() -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            stream=audit.SYSTEM_STREAM, action__startswith="suppression."
        ).order_by("seq")
    )


@pytest.mark.parametrize(
    ("kind", "value", "stored", "blocked", "free"),
    [
        (SuppressionKind.EXACT, STORY, STORY, "http://daily-herald.com/news/story-1", STORY + "x/"),
        (
            SuppressionKind.PREFIX,
            "https://www.daily-herald.com/news/",
            "https://www.daily-herald.com/news/",
            "https://daily-herald.com/news/other/",
            "https://www.daily-herald.com/sport/x/",
        ),
        (
            SuppressionKind.DOMAIN,
            "Daily-Herald.com",
            "daily-herald.com",
            "https://amp.daily-herald.com/any/",
            "https://herald.com/any/",
        ),
    ],
    ids=["exact", "prefix", "domain"],
)
def test_a_rule_is_made_with_its_reason_and_lifted_with_another(
    ada: User, kind: str, value: str, stored: str, blocked: str, free: str
) -> None:
    rule = suppression_add(kind=kind, value=value, reason="Court order 12/2026.", user=ada)
    assert rule.value == stored
    assert rule.reason == "Court order 12/2026."
    assert not may_publish(blocked)
    assert may_publish(free)
    created = _system_events()[-1]
    assert created.action == "suppression.created"
    assert created.actor == f"staff:{ada.pk}"
    assert created.data["reason_digest"] == audit.text_digest("Court order 12/2026.")
    assert "Court order" not in str(created.data)

    assert suppression_lift(rule=rule, actor=f"staff:{ada.pk}", reason="Order set aside.", user=ada)
    rule.refresh_from_db()
    assert rule.lifted_at is not None
    assert rule.lifted_by_id == ada.pk
    assert rule.lift_reason == "Order set aside."
    assert may_publish(blocked)
    lifted = _system_events()[-1]
    assert lifted.action == "suppression.lifted"
    assert lifted.data["id"] == rule.pk
    assert lifted.data["staff"] == ada.pk
    assert lifted.data["reason_digest"] == audit.text_digest("Order set aside.")

    # Lifting twice changes nothing and says so; the row stays for the record.
    count = len(_system_events())
    assert not suppression_lift(rule=rule, actor="staff:x", reason="again", user=ada)
    assert len(_system_events()) == count
    assert Suppression.objects.filter(pk=rule.pk).exists()


@pytest.mark.parametrize(
    ("kind", "value", "reason", "field"),
    [
        (SuppressionKind.DOMAIN, "co.uk", "why", "value"),
        (SuppressionKind.EXACT, "not a url at all", "why", "value"),
        (SuppressionKind.EXACT, STORY, "  ", "reason"),
        ("everything", STORY, "why", "kind"),
    ],
    ids=["public-suffix", "not-a-url", "no-reason", "unknown-kind"],
)
def test_a_bad_rule_is_refused_and_nothing_written(
    ada: User, kind: str, value: str, reason: str, field: str
) -> None:
    count = len(_system_events())
    with pytest.raises(DomainError) as raised:
        suppression_add(kind=kind, value=value, reason=reason, user=ada)
    assert raised.value.field == field
    assert not Suppression.objects.exists()
    assert len(_system_events()) == count


def test_a_second_active_rule_for_the_same_value_is_refused(ada: User) -> None:
    suppression_add(kind=SuppressionKind.EXACT, value=STORY, reason="one", user=ada)
    with pytest.raises(DomainError, match="already suppresses"):
        suppression_add(kind=SuppressionKind.EXACT, value=STORY, reason="two", user=ada)
    assert Suppression.objects.count() == 1


def test_lifting_needs_a_reason(ada: User) -> None:
    rule = suppression_add(kind=SuppressionKind.EXACT, value=STORY, reason="one", user=ada)
    with pytest.raises(DomainError, match="why"):
        suppression_lift(rule=rule, actor="staff:x", reason="", user=ada)
    rule.refresh_from_db()
    assert rule.lifted_at is None
    assert not may_publish(STORY)


def test_a_case_rule_is_lifted_on_the_case_stream(ada: User) -> None:
    case = TakedownRequestFactory.create()
    rule = suppression_create(kind=SuppressionKind.EXACT, value=STORY, actor="system", case=case)
    suppression_lift(rule=rule, actor=f"staff:{ada.pk}", reason="Restored.", user=ada)
    event = AuditEvent.objects.filter(stream=case.audit_stream()).latest("seq")
    assert event.action == "suppression.lifted"
    assert event.data["id"] == rule.pk


# --- The console ---------------------------------------------------------------------------


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_adds_a_rule_through_the_console(ada: User) -> None:
    client = _client(ada)
    refused = client.post(ADD, {"kind": "domain", "value": "co.uk", "reason": "x"})
    assert refused.status_code == 200
    assert "public suffix" in refused.content.decode()
    assert not Suppression.objects.exists()

    response = client.post(ADD, {"kind": "prefix", "value": STORY, "reason": "Legal hold."})
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = Suppression.objects.get()
    assert (rule.kind, rule.value, rule.reason) == ("prefix", STORY, "Legal hold.")
    assert _system_events()[-1].action == "suppression.created"
    # A rule's fields are read-only afterwards.
    page = client.get(reverse("admin:rights_suppression_change", args=[rule.pk])).content.decode()
    assert 'name="_save"' not in page


def test_admin_lifts_a_rule_after_a_confirmation_page(ada: User) -> None:
    rule = suppression_add(kind=SuppressionKind.EXACT, value=STORY, reason="one", user=ada)
    client = _client(ada)
    action = {"action": "lift_selected", "_selected_action": [rule.pk]}
    confirm = client.post(CHANGELIST, action)
    assert confirm.status_code == 200
    assert STORY in confirm.content.decode()
    rule.refresh_from_db()
    assert rule.lifted_at is None

    no_reason = client.post(CHANGELIST, {**action, "post": "yes", "reason": ""})
    assert "Say why" in no_reason.content.decode()
    rule.refresh_from_db()
    assert rule.lifted_at is None

    done = client.post(CHANGELIST, {**action, "post": "yes", "reason": "Mistaken."})
    assert done.status_code == 302
    rule.refresh_from_db()
    assert rule.lifted_at is not None
    assert rule.lift_reason == "Mistaken."
    assert may_publish(STORY)


@pytest.mark.parametrize("role", ["reviewer", "lead"])
def test_other_roles_cannot_add_or_lift_rules(ada: User, role: str) -> None:
    rule = suppression_add(kind=SuppressionKind.EXACT, value=STORY, reason="one", user=ada)
    client = _client(staff_in(role, f"{role}-s"))
    assert client.get(ADD).status_code == 403
    other = "https://www.daily-herald.com/news/story-2/"
    assert client.post(ADD, {"kind": "exact", "value": other, "reason": "x"}).status_code == 403
    changelist = client.get(CHANGELIST)
    form = changelist.context["action_form"]
    assert form is None or "lift_selected" not in dict(form.fields["action"].choices)
    client.post(
        CHANGELIST,
        {"action": "lift_selected", "_selected_action": [rule.pk], "post": "yes", "reason": "x"},
    )
    rule.refresh_from_db()
    assert rule.lifted_at is None
    assert Suppression.objects.count() == 1
    assert not may_publish(STORY)
