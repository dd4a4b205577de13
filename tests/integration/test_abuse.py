"""Abuse controls (DSA Art. 23): requests found manifestly unfounded, counted once per case; a
warning first, then a suspension, then lifting it, each audited and mailed; the doors then
refuse a suspended requester's new requests; and the console's actions, each behind its
permission and a confirmation page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse

from rights import links
from rights.errors import DomainError
from rights.models import Audience, AuditEvent, Notification, Requester, TakedownRequest
from rights.services import abuse, review
from rights.services.notifications import notification_send
from rights.services.requester import case_appeal
from rights.states import CaseState
from tests.factories import RequesterFactory, TakedownRequestFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rights_requester_changelist")


def _send_all() -> list[Any]:
    mail.outbox.clear()
    for pk in Notification.objects.filter(sent_at__isnull=True).values_list("pk", flat=True):
        notification_send(notification_id=pk)
    return list(mail.outbox)


def refused(requester: Requester, n: int = 1) -> list[TakedownRequest]:
    return [
        TakedownRequestFactory.create(requester=requester, state=CaseState.REJECTED)
        for _ in range(n)
    ]


def stream_actions(stream: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(stream=stream).order_by("seq").values_list("action", flat=True)
    )


@pytest.fixture
def lead(db: None) -> User:
    return staff_in("lead", "lena")


@pytest.fixture
def abuser(db: None) -> Requester:
    return RequesterFactory.create(email="abuser@example.org", name="Abe User")


def marked(requester: Requester, user: User, n: int) -> list[TakedownRequest]:
    cases = refused(requester, n)
    for case in cases:
        abuse.case_mark_unfounded(case=case, user_id=user.pk)
    return cases


# --- Marking a request manifestly unfounded ----------------------------------------------------


def test_marking_counts_once_per_case_and_is_audited_on_both_streams(
    abuser: Requester, lead: User
) -> None:
    (case,) = refused(abuser)
    for _ in range(3):
        requester = abuse.case_mark_unfounded(case=case, user_id=lead.pk)
    assert requester.unfounded_count == 1
    abuser.refresh_from_db()
    assert abuser.unfounded_count == 1
    assert stream_actions(case.audit_stream()).count("case.marked_unfounded") == 1
    (event,) = AuditEvent.objects.filter(stream=f"requester:{abuser.pk}")
    assert event.action == "requester.unfounded"
    assert event.actor == f"staff:{lead.pk}"
    assert event.data == {"case": case.reference, "unfounded_count": 1}
    # A second case counts again.
    (other,) = refused(abuser)
    assert abuse.case_mark_unfounded(case=other, user_id=lead.pk).unfounded_count == 2
    assert abuse.unfounded_references(abuser) == [case.reference, other.reference]


@pytest.mark.parametrize("state", [CaseState.OPEN, CaseState.REMOVED, CaseState.WITHDRAWN])
def test_only_a_refused_request_can_be_found_unfounded(
    abuser: Requester, lead: User, state: str
) -> None:
    case = TakedownRequestFactory.create(requester=abuser, state=state)
    with pytest.raises(DomainError) as excinfo:
        abuse.case_mark_unfounded(case=case, user_id=lead.pk)
    assert excinfo.value.code == "not_markable"
    abuser.refresh_from_db()
    assert abuser.unfounded_count == 0
    assert not AuditEvent.objects.filter(action="case.marked_unfounded").exists()


def test_a_request_granted_on_appeal_no_longer_counts_as_unfounded(
    submit: Any, item: Any, lead: User
) -> None:
    first, second = staff_in("reviewer", "rita"), staff_in("reviewer", "colin")
    case = submit(channel="staff", urls=[item.source_url], email_verified=True).case
    review.case_reject(case=case, user_id=first.pk, reasons="Not the owner.")
    requester = abuse.case_mark_unfounded(case=case, user_id=first.pk)
    assert requester.unfounded_count == 1
    case_appeal(case=case, reasons="I am the owner: here is how.", actor=requester.actor)
    review.case_approve(case=case, user_id=second.pk)

    requester.refresh_from_db()
    assert requester.unfounded_count == 0
    assert abuse.unfounded_references(requester) == []
    assert abuse.warn_refusal(requester) is not None  # nothing left to warn about
    assert "case.unfounded_withdrawn" in stream_actions(case.audit_stream())
    withdrawn = AuditEvent.objects.get(
        stream=requester.actor, action="requester.unfounded_withdrawn"
    )
    assert withdrawn.data == {"case": case.reference, "unfounded_count": 0}
    assert withdrawn.actor == f"staff:{second.pk}"


# --- Warn, suspend, lift: the order ------------------------------------------------------------


def test_the_order_is_warning_then_suspension_then_lifting(
    abuser: Requester, lead: User, settings: Any
) -> None:
    settings.ABUSE_SUSPEND_AFTER = 2

    def refusal(step: Any) -> str:
        with pytest.raises(DomainError) as excinfo:
            step(requester=abuser, user_id=lead.pk)
        return str(excinfo.value.code)

    assert refusal(abuse.requester_warn) == "nothing_unfounded"
    assert refusal(abuse.requester_lift) == "not_suspended"
    marked(abuser, lead, 1)
    assert refusal(abuse.requester_suspend) == "not_warned"
    assert abuse.requester_warn(requester=abuser, user_id=lead.pk).warned_at is not None
    assert refusal(abuse.requester_warn) == "already_warned"
    assert refusal(abuse.requester_suspend) == "too_few_unfounded"
    marked(abuser, lead, 1)
    assert abuse.requester_suspend(requester=abuser, user_id=lead.pk).suspended_at is not None
    assert refusal(abuse.requester_suspend) == "already_suspended"
    assert refusal(abuse.requester_warn) == "already_suspended"
    lifted = abuse.requester_lift(requester=abuser, user_id=lead.pk)
    assert lifted.suspended_at is None
    assert lifted.warned_at is None
    assert lifted.unfounded_count == 2
    # Suspending again needs a warning again.
    assert refusal(abuse.requester_suspend) == "not_warned"
    assert stream_actions(f"requester:{abuser.pk}") == [
        "requester.unfounded",
        "requester.warned",
        "requester.unfounded",
        "requester.suspended",
        "requester.lifted",
    ]
    for event in AuditEvent.objects.filter(stream=f"requester:{abuser.pk}"):
        assert "abuser" not in str(event.data)
        assert "Abe" not in str(event.data)


def test_the_default_threshold_is_three(abuser: Requester, lead: User) -> None:
    marked(abuser, lead, 2)
    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    with pytest.raises(DomainError):
        abuse.requester_suspend(requester=abuser, user_id=lead.pk)
    marked(abuser, lead, 1)
    abuse.requester_suspend(requester=abuser, user_id=lead.pk)


# --- The mails ---------------------------------------------------------------------------------


def test_each_step_is_mailed_with_reasons_and_redress(
    abuser: Requester, lead: User, settings: Any
) -> None:
    settings.ABUSE_SUSPEND_AFTER = 2
    cases = marked(abuser, lead, 2)
    newest = abuser.cases.order_by("-received_at", "-pk").first()
    assert newest is not None
    _send_all()

    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    (warning,) = _send_all()
    assert warning.to == ["abuser@example.org"]
    assert warning.subject == "A warning about requests from this address"
    for case in cases:
        assert case.reference in warning.body
    assert "Article 23" in warning.body
    assert "Article 21" in warning.body
    assert settings.TAKEDOWN_MAILBOX in warning.body
    assert links.status_url(newest) in warning.body

    abuse.requester_suspend(requester=abuser, user_id=lead.pk)
    (suspension,) = _send_all()
    assert suspension.subject == "Requests from this address are suspended"
    assert "in all, 2 of your requests" in suspension.body
    assert "We had warned you" in suspension.body
    assert "reply to this message" in suspension.body
    assert "Article 21" in suspension.body

    abuse.requester_lift(requester=abuser, user_id=lead.pk)
    (lifting,) = _send_all()
    assert lifting.subject == "The suspension of requests from this address is lifted"
    kinds = Notification.objects.filter(audience=Audience.REQUESTER).values_list("kind", flat=True)
    assert {"warned", "suspended_notice", "lifted"} <= set(kinds)


def test_a_second_warning_after_a_lift_is_mailed_again(abuser: Requester, lead: User) -> None:
    marked(abuser, lead, 3)
    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    abuse.requester_suspend(requester=abuser, user_id=lead.pk)
    abuse.requester_lift(requester=abuser, user_id=lead.pk)
    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    assert Notification.objects.filter(kind="warned").count() == 2


# --- The doors honour it -----------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["email", "web"])
def test_a_public_door_refuses_a_suspended_requesters_new_request_by_mail(
    submit: Any, item: Any, lead: User, settings: Any, channel: str
) -> None:
    settings.ABUSE_SUSPEND_AFTER = 1
    abuser = RequesterFactory.create(email="owner@example.org")
    marked(abuser, lead, 1)
    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    abuse.requester_suspend(requester=abuser, user_id=lead.pk)
    result = submit(channel=channel, urls=[item.source_url])
    assert result.case.requester_id == abuser.pk
    assert result.case.state == CaseState.REJECTED
    assert Notification.objects.filter(case=result.case, kind="suspended").exists()
    # Once lifted, the same door takes the request like anyone's.
    abuse.requester_lift(requester=abuser, user_id=lead.pk)
    again = submit(channel=channel, urls=[item.source_url], external_id="again")
    assert again.case.state != CaseState.REJECTED


# --- The console -------------------------------------------------------------------------------


def act(client: Client, action: str, requesters: list[Requester], **extra: str) -> Any:
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(r.pk) for r in requesters], **extra},
    )


@pytest.fixture
def console(db: None) -> dict[str, Client]:
    clients = {}
    for role in ("reviewer", "lead", "admin"):
        client = Client()
        client.force_login(staff_in(role, f"{role}-abuse"))
        clients[role] = client
    return clients


def test_the_list_shows_unfounded_counts_and_filters_by_standing(
    console: dict[str, Client], abuser: Requester, lead: User
) -> None:
    marked(abuser, lead, 1)
    abuse.requester_warn(requester=abuser, user_id=lead.pk)
    calm = RequesterFactory.create(email="calm@example.org")
    page = console["reviewer"].get(CHANGELIST, {"standing": "warned"})
    assert page.status_code == 200
    rows = list(page.context["cl"].result_list)
    assert rows == [abuser]
    assert "calm@example.org" not in page.content.decode()
    for standing in ("suspended", "erased"):
        assert not list(
            console["reviewer"].get(CHANGELIST, {"standing": standing}).context["cl"].result_list
        )
    everyone = console["reviewer"].get(CHANGELIST).context["cl"].result_list
    assert {r.pk for r in everyone} >= {abuser.pk, calm.pk}
    assert "unfounded_count" in console["reviewer"].get(CHANGELIST).context["cl"].list_display


@pytest.mark.parametrize("action", ["warn_selected", "suspend_selected", "lift_selected"])
def test_a_reviewer_and_an_admin_cannot_warn_suspend_or_lift(
    console: dict[str, Client], abuser: Requester, lead: User, action: str
) -> None:
    marked(abuser, lead, 3)
    for role in ("reviewer", "admin"):
        form = console[role].get(CHANGELIST).context["action_form"]
        assert form is None or action not in dict(form.fields["action"].choices)
        # The action is not offered, and a crafted post of it is refused.
        assert act(console[role], action, [abuser], post="yes").status_code == 403
    abuser.refresh_from_db()
    assert abuser.warned_at is None
    assert abuser.suspended_at is None


def test_a_lead_warns_then_suspends_after_a_confirmation_page(
    console: dict[str, Client], abuser: Requester, lead: User
) -> None:
    marked(abuser, lead, 3)
    calm = RequesterFactory.create(email="calm@example.org")
    page = act(console["lead"], "warn_selected", [abuser, calm])
    assert page.status_code == 200
    assert page.templates[0].name == "rights/admin/requester_action_confirm.html"
    body = page.content.decode()
    assert "abuser@example.org" in body
    assert "Cannot be warned" in body
    abuser.refresh_from_db()
    assert abuser.warned_at is None  # nothing happens before confirming

    done = act(console["lead"], "warn_selected", [abuser, calm], post="yes")
    assert done.status_code == 200
    assert [(o["requester"].pk, o["done"]) for o in done.context["outcomes"]] == [
        (abuser.pk, True),
        (calm.pk, False),
    ]
    abuser.refresh_from_db()
    assert abuser.warned_at is not None

    act(console["lead"], "suspend_selected", [abuser], post="yes")
    abuser.refresh_from_db()
    assert abuser.suspended_at is not None
    act(console["lead"], "lift_selected", [abuser], post="yes")
    abuser.refresh_from_db()
    assert abuser.suspended_at is None
