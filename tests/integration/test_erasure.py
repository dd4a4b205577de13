"""Erasure of a requester (GDPR Art. 17): markers planted in their name, address, organisation
and texts are in no table afterwards, cases keep their outcomes, `audit_verify` passes; the
retention rule erases only requesters whose every case closed long enough ago; and only the
admin role may erase."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rights import clock, redress
from rights.errors import DomainError
from rights.models import Audience, AuditEvent, Notification, Requester, TakedownRequest
from rights.services import erasure, review
from rights.services.notifications import notify
from rights.services.requester import case_appeal
from rights.states import CaseState
from rights.tasks import requesters_retention
from tests.factories import RequesterFactory, TakedownRequestFactory
from tests.integration.conftest import CommandRun
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db

MARKER = "ZQXMARKER"
CHANGELIST = reverse("admin:rights_requester_changelist")
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def rows_holding(marker: str) -> list[str]:
    """Every row of every model in the rights and auth apps with `marker` in a text, char or
    JSON column (the audit trail's data included), as `model.field#pk`."""
    found = []
    for label in ("rights", "auth"):
        for model in apps.get_app_config(label).get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, TEXT_FIELDS):
                    continue
                lookup = (
                    {f"{field.name}__icontains": marker}
                    if not isinstance(field, models.JSONField)
                    else None
                )
                hits: list[Any]
                if lookup is not None:
                    hits = list(
                        model._default_manager.filter(**lookup).values_list("pk", flat=True)
                    )
                else:
                    hits = [
                        pk
                        for pk, value in model._default_manager.values_list("pk", field.name)
                        if marker.lower() in str(value).lower()
                    ]
                found += [f"{model._meta.label}.{field.name}#{pk}" for pk in hits]
    return found


@pytest.fixture
def decider(db: None) -> User:
    return staff_in("reviewer", "rita-erasure")


@pytest.fixture
def colleague(db: None) -> User:
    return staff_in("lead", "lena-erasure")


@pytest.fixture
def marked_case(submit: Any, item: Any, decider: User, colleague: User) -> TakedownRequest:
    """A verified requester whose every detail and text carries the marker; a case rejected,
    appealed (with reasons) and decided again, with mail still waiting in the outbox."""
    case = submit(
        channel="staff",
        email=f"{MARKER.lower()}.person@example.org",
        name=f"Ann {MARKER} Owner",
        organisation=f"{MARKER} Holdings",
        explanation=f"I wrote this myself, {MARKER}, and want it gone.",
        # The second URL is not ours: it is only the requester's own text.
        urls=[item.source_url, f"https://elsewhere.example/{MARKER}/page"],
        email_verified=True,
        external_id=f"<{MARKER}.1@mail.example.org>",
    ).case
    review.case_reject(case=case, user_id=decider.pk, reasons="The article quotes you fairly.")
    case_appeal(case=case, reasons=f"But {MARKER} never said that.", actor=case.requester.actor)
    review.case_reject(case=case, user_id=colleague.pk, reasons="Upheld on appeal.")
    case.refresh_from_db()
    assert case.state == CaseState.REJECTED
    return case


def test_after_erasure_no_table_holds_the_markers_and_the_trail_verifies(
    marked_case: TakedownRequest, run_command: Any, admin_user: User
) -> None:
    assert rows_holding(MARKER)  # the probe finds them before
    assert run_command("audit_verify").code == 0
    to_them = Notification.objects.filter(case=marked_case, audience=Audience.REQUESTER)
    unsent = to_them.filter(sent_at__isnull=True).count()
    assert unsent > 0
    requester = marked_case.requester

    erasure.requester_erase(requester=requester, user_id=admin_user.pk, reason="They asked.")

    assert rows_holding(MARKER) == []
    requester.refresh_from_db()
    assert requester.name == "[erased]"
    assert requester.email == f"erased-{requester.pk}@erased.invalid"
    assert requester.organisation == ""
    assert requester.erased_at is not None
    case = TakedownRequest.objects.get(pk=marked_case.pk)
    # The case keeps its outcome and its staff's reasons; the requester's texts are tombstones.
    assert case.state == CaseState.REJECTED
    assert case.decision_reasons == "Upheld on appeal."
    assert case.explanation == "[erased]"
    assert case.appeal_reasons == "[erased]"
    # The URL of our copy stays (suppression needs it); the one that named nothing of ours
    # was the requester's text only.
    ours, theirs = case.targets.order_by("pk")
    assert ours.url == marked_case.targets.order_by("pk")[0].url
    assert theirs.url == f"https://erased.invalid/{theirs.pk}"
    # Mail not yet sent would have been rendered with the tombstones: it is cancelled.
    assert not to_them.filter(sent_at__isnull=True).exists()
    event = AuditEvent.objects.get(stream=f"requester:{requester.pk}", action="requester.erased")
    assert event.data["cases"] == [case.reference]
    assert event.data["cancelled_notifications"] == unsent
    assert "They asked" not in str(event.data)
    assert AuditEvent.objects.filter(stream=case.audit_stream(), action="case.requester_erased")
    result: CommandRun = run_command("audit_verify")
    assert result.code == 0, result.stderr


def test_an_erased_requester_can_no_longer_appeal(
    submit: Any, item: Any, decider: User, admin_user: User
) -> None:
    """An appeal would be new personal text from someone we can no longer answer, and no
    erasure could ever reach it (the requester is erased already)."""
    case = submit(channel="staff", urls=[item.source_url], email_verified=True).case
    review.case_reject(case=case, user_id=decider.pk, reasons="The article quotes you fairly.")
    erasure.requester_erase(requester=case.requester, user_id=admin_user.pk, reason="Asked.")
    case = TakedownRequest.objects.get(pk=case.pk)
    assert redress.appeal_until(case, list(case.targets.all()), clock.now()) is None
    with pytest.raises(DomainError) as refused:
        case_appeal(case=case, reasons="I am still here.", actor=case.requester.actor)
    assert refused.value.code == "not_appealable"
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REJECTED


def test_erasure_is_refused_twice_and_while_a_case_is_open(admin_user: User) -> None:
    open_case = TakedownRequestFactory.create(state=CaseState.OPEN)
    requester = open_case.requester
    with pytest.raises(DomainError) as excinfo:
        erasure.requester_erase(requester=requester, user_id=admin_user.pk, reason="asked")
    assert excinfo.value.code == "open_cases"
    assert open_case.reference in excinfo.value.message
    requester.refresh_from_db()
    assert requester.erased_at is None
    closed = TakedownRequestFactory.create(state=CaseState.REJECTED)
    erasure.requester_erase(requester=closed.requester, user_id=admin_user.pk, reason="asked")
    with pytest.raises(DomainError) as excinfo:
        erasure.requester_erase(requester=closed.requester, user_id=admin_user.pk, reason="again")
    assert excinfo.value.code == "already_erased"
    with pytest.raises(DomainError):
        erasure.requester_erase(requester=requester, user_id=admin_user.pk, reason=" ")


def test_a_new_request_from_an_erased_address_starts_a_new_requester(
    submit: Any, item: Any, admin_user: User
) -> None:
    first = submit(urls=[item.source_url]).case
    TakedownRequest.objects.filter(pk=first.pk).update(
        state=CaseState.REJECTED, closed_at=timezone.now()
    )
    erasure.requester_erase(requester=first.requester, user_id=admin_user.pk, reason="asked")
    again = submit(urls=[item.source_url], external_id="another").case
    assert again.requester_id != first.requester_id
    assert again.requester.email == "owner@example.org"


# --- Retention -------------------------------------------------------------------------------


def closed_case(requester: Requester, *, days_ago: int, state: str = CaseState.REJECTED) -> None:
    moment = timezone.now() - timedelta(days=days_ago)
    TakedownRequestFactory.create(
        requester=requester,
        state=state,
        received_at=moment,
        closed_at=moment if state != CaseState.OPEN else None,
    )


def test_retention_erases_only_requesters_whose_every_case_closed_long_ago(
    settings: Any, run_command: Any
) -> None:
    settings.REQUESTER_RETENTION_DAYS = 30
    start = timezone.now()
    with time_machine.travel(start - timedelta(days=100), tick=False):
        old = RequesterFactory.create(email="old@example.org")
        mixed = RequesterFactory.create(email="mixed@example.org")
        still_open = RequesterFactory.create(email="open@example.org")
        suspended = RequesterFactory.create(email="suspended@example.org", suspended_at=start)
    with time_machine.travel(start - timedelta(days=10), tick=False):
        young = RequesterFactory.create(email="young@example.org")
    closed_case(old, days_ago=60)
    closed_case(old, days_ago=45)
    closed_case(mixed, days_ago=60)
    closed_case(mixed, days_ago=5)
    closed_case(still_open, days_ago=60)
    closed_case(still_open, days_ago=50, state=CaseState.OPEN)
    closed_case(suspended, days_ago=60)
    closed_case(young, days_ago=5)

    assert requesters_retention() == 1
    erased = set(Requester.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    assert erased == {old.pk}
    assert requesters_retention() == 0  # nothing left to do
    event = AuditEvent.objects.get(stream=f"requester:{old.pk}", action="requester.erased")
    assert event.actor == "system:retention"
    assert event.data["by"] == "retention"

    # Time passes: the mixed and the young requesters' last cases are now old enough too.
    with time_machine.travel(start + timedelta(days=30), tick=False):
        assert requesters_retention() == 2
    erased = set(Requester.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    assert erased == {old.pk, mixed.pk, young.pk}
    assert run_command("audit_verify").code == 0


# --- Who may erase ---------------------------------------------------------------------------


def test_only_an_admin_may_erase_from_the_console(db: None) -> None:
    requester = TakedownRequestFactory.create(state=CaseState.REJECTED).requester
    for role in ("reviewer", "lead"):
        client = Client()
        client.force_login(staff_in(role, f"{role}-erase"))
        form = client.get(CHANGELIST).context["action_form"]
        assert form is None or "erase_selected" not in dict(form.fields["action"].choices)
        response = client.post(
            CHANGELIST,
            {
                "action": "erase_selected",
                "_selected_action": [requester.pk],
                "post": "yes",
                "reason": "asked",
            },
        )
        assert response.status_code == 403
    requester.refresh_from_db()
    assert requester.erased_at is None

    client = Client()
    client.force_login(staff_in("admin", "admin-erase"))
    page = client.post(CHANGELIST, {"action": "erase_selected", "_selected_action": [requester.pk]})
    assert page.status_code == 200
    assert "cannot be undone" in page.content.decode()
    # A reason is needed.
    refused = client.post(
        CHANGELIST,
        {"action": "erase_selected", "_selected_action": [requester.pk], "post": "yes"},
    )
    assert refused.context["error"]
    requester.refresh_from_db()
    assert requester.erased_at is None
    done = client.post(
        CHANGELIST,
        {
            "action": "erase_selected",
            "_selected_action": [requester.pk],
            "post": "yes",
            "reason": "The requester asked by letter.",
        },
    )
    assert done.status_code == 200
    requester.refresh_from_db()
    assert requester.erased_at is not None
    # The tombstone cannot be edited back into a name.
    change = client.get(reverse("admin:rights_requester_change", args=[requester.pk]))
    assert "name" not in change.context["adminform"].form.fields


def test_nothing_is_queued_for_an_erased_requester(submit: Any, item: Any) -> None:
    case = submit(urls=[item.source_url]).case
    requester = case.requester
    Requester.objects.filter(pk=requester.pk).update(erased_at=timezone.now())
    case.refresh_from_db()
    assert notify(case=case, kind="received", audience=Audience.REQUESTER) is False
    assert notify(case=case, kind="reminder", audience=Audience.REVIEWERS) is True
