"""What a requester does after submitting (rights.services.requester): confirm by link, withdraw,
appeal (a second round on the same ladder, decided by someone else), ask for the links again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from rights import links
from rights.errors import DomainError
from rights.models import (
    AuditEvent,
    ContentItem,
    LadderRung,
    Notification,
    RemovalEffect,
    Requester,
    TakedownRequest,
    Target,
)
from rights.presenters import Viewer, case_present
from rights.services import review
from rights.services.notifications import render_message
from rights.services.requester import (
    ConfirmationRefused,
    case_appeal,
    case_withdraw,
    confirmation_check,
    confirmation_use,
    status_links_send,
)
from rights.states import CaseState, ContentStatus, TargetState
from tests.engine import drive, untrusted
from tests.factories import ContentItemFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


def _status(item: ContentItem) -> str:
    item.refresh_from_db()
    return item.status


def _failsafe(case: TakedownRequest) -> None:
    """Run the engine at T-2h of the case's current clock."""
    case.refresh_from_db()
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)


def _web_case(submit: Any, item: ContentItem) -> TakedownRequest:
    case = submit(channel="web", urls=[item.source_url], email="someone@example.net").case
    assert case.state == CaseState.AWAITING_CONFIRMATION
    return case


@pytest.fixture
def second_reviewer(db: None) -> Any:
    return staff_in("reviewer", "second-reviewer")


# --- confirmation ---------------------------------------------------------------------------


def test_the_confirmation_mail_carries_a_link_that_only_a_post_uses(
    submit: Any, item: ContentItem
) -> None:
    case = _web_case(submit, item)
    message = render_message(Notification.objects.get(case=case, kind="confirm"))
    url = links.confirmation_url(case)
    assert url in message.body
    token = url.rstrip("/").rsplit("/", 1)[-1]
    events = AuditEvent.objects.count()
    # A look (a mail scanner's GET) changes nothing.
    assert confirmation_check(token=token).pk == case.pk
    case.refresh_from_db()
    assert case.state == CaseState.AWAITING_CONFIRMATION
    assert AuditEvent.objects.count() == events
    confirmed = confirmation_use(token=token)
    assert confirmed.state == CaseState.IN_REVIEW
    assert confirmed.clock_started_at is not None
    # Single use: the second press is refused and writes nothing.
    events = AuditEvent.objects.count()
    with pytest.raises(ConfirmationRefused) as refused:
        confirmation_use(token=token)
    assert refused.value.code == "used"
    assert AuditEvent.objects.count() == events


def test_altered_and_expired_confirmation_links_are_refused(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    case = _web_case(submit, item)
    token = links.confirmation_token(case)
    for altered in (token[:-1] + ("A" if token[-1] != "A" else "B"), "nonsense", "", "a:b:c"):
        with pytest.raises(ConfirmationRefused) as refused:
            confirmation_check(token=altered)
        assert refused.value.code == "invalid"
    # A well-signed token for a reference that does not exist is no better.
    forged = signing.TimestampSigner(salt=links.CONFIRM_SALT).sign("TD-NOSUCH1")
    with pytest.raises(ConfirmationRefused, match="not valid"):
        confirmation_use(token=forged)
    assert case.confirm_by is not None
    with (
        time_machine.travel(case.confirm_by + timedelta(seconds=1), tick=False),
        pytest.raises(ConfirmationRefused) as refused,
    ):
        confirmation_use(token=token)
    assert refused.value.code == "expired"
    case.refresh_from_db()
    assert case.state == CaseState.AWAITING_CONFIRMATION
    assert case.clock_started_at is None


# --- withdrawal -----------------------------------------------------------------------------


def test_withdrawing_after_the_failsafe_brings_the_content_back(
    submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    _failsafe(case)
    assert _status(item) == ContentStatus.DISABLED
    case = case_withdraw(case=case, actor=case.requester.actor)
    assert case.state == CaseState.WITHDRAWN
    assert case.closed_at is not None
    drive(case)
    assert _status(item) == ContentStatus.RESTORED
    assert Target.objects.get(case=case).state == TargetState.WITHDRAWN
    assert Notification.objects.filter(case=case, kind="withdrawn").count() == 1
    view = case_present(case, targets=list(case.targets.all()), viewer=Viewer.staff())
    assert view.may_withdraw is False
    assert view.targets[0].meaning.startswith("Withdrawn")


def test_withdrawal_leaves_content_another_case_holds(submit: Any, item: ContentItem) -> None:
    first = untrusted(submit, item)
    second = submit(urls=[item.source_url], email="other@example.net").case
    _failsafe(first)
    _failsafe(second)
    assert _status(item) == ContentStatus.DISABLED
    case_withdraw(case=first, actor="requester:test")
    drive(first)
    assert _status(item) == ContentStatus.DISABLED


def test_a_decided_case_cannot_be_withdrawn(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    case = review.case_approve(case=case, user_id=admin_user.pk)
    events = AuditEvent.objects.count()
    with pytest.raises(DomainError) as refused:
        case_withdraw(case=case, actor="requester:test")
    assert refused.value.code == "not_withdrawable"
    assert AuditEvent.objects.count() == events


def test_an_unconfirmed_request_can_be_withdrawn(submit: Any, item: ContentItem) -> None:
    case = _web_case(submit, item)
    case = case_withdraw(case=case, actor=case.requester.actor)
    assert case.state == CaseState.WITHDRAWN
    with pytest.raises(ConfirmationRefused):
        confirmation_use(token=links.confirmation_token(case))


# --- appeal ---------------------------------------------------------------------------------


def test_an_appeal_runs_its_own_ladder_and_needs_a_second_decider(
    admin_user: Any, second_reviewer: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    _failsafe(case)
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    drive(case)
    assert _status(item) == ContentStatus.RESTORED
    rejected = render_message(Notification.objects.get(case=case, kind="rejected"))
    assert "Not the owner." in rejected.body
    assert "Appeal" in rejected.body
    assert "out-of-court" in rejected.body
    view = case_present(case, targets=list(case.targets.all()), viewer=Viewer.staff())
    assert view.appeal_until is not None

    case = case_appeal(case=case, reasons="I hold the copyright.", actor=case.requester.actor)
    assert case.state == CaseState.APPEALED
    assert case.appeal_round == 1
    assert case.first_decided_by_id == admin_user.pk
    assert case.deadline_at is not None
    assert case.closed_at is None
    assert Target.objects.get(case=case).state == TargetState.PENDING
    assert {
        n.audience for n in Notification.objects.filter(case=case, kind__startswith="appeal")
    } == {
        "requester",
        "reviewers",
    }
    # The appeal's own fail-safe fires (the first round's rungs do not count) and disables
    # the content again, through an effect of its own.
    _failsafe(case)
    assert _status(item) == ContentStatus.DISABLED
    assert LadderRung.objects.filter(case=case, round=1, rung="failsafe").count() == 1
    assert RemovalEffect.objects.filter(target__case=case, action="disable").count() == 2
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW

    with pytest.raises(DomainError) as refused:
        review.case_approve(case=case, user_id=admin_user.pk)
    assert refused.value.code == "same_decider"
    case = review.case_approve(case=case, user_id=second_reviewer.pk)
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert _status(item) == ContentStatus.REMOVED
    # Once only: a second appeal is not offered, and refused.
    view = case_present(case, targets=list(case.targets.all()), viewer=Viewer.staff())
    assert view.appeal_until is None


def test_an_upheld_appeal_brings_disabled_content_back(
    admin_user: Any, second_reviewer: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    case = case_appeal(case=case, reasons="Please look again.", actor="requester:test")
    _failsafe(case)
    assert _status(item) == ContentStatus.DISABLED
    case = review.case_reject(case=case, user_id=second_reviewer.pk, reasons="Still not.")
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REJECTED
    assert _status(item) == ContentStatus.RESTORED
    with pytest.raises(DomainError) as refused:
        case_appeal(case=case, reasons="Again.", actor="requester:test")
    assert refused.value.code == "not_appealable"


def test_appeals_are_refused_without_reasons_after_the_window_or_for_granted_requests(
    settings: Any, admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    with pytest.raises(DomainError, match="can no longer be appealed"):
        case_appeal(case=case, reasons="Why not yet?", actor="requester:test")
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    events = AuditEvent.objects.count()
    with pytest.raises(DomainError, match="why you disagree"):
        case_appeal(case=case, reasons="   ", actor="requester:test")
    assert case.decided_at is not None
    later = case.decided_at + timedelta(seconds=settings.APPEAL_WINDOW + 1)
    with (
        time_machine.travel(later, tick=False),
        pytest.raises(DomainError, match="can no longer be appealed"),
    ):
        case_appeal(case=case, reasons="Late.", actor="requester:test")
    assert AuditEvent.objects.count() == events
    # Six months is the least the window may be.
    assert settings.APPEAL_WINDOW >= 183 * 86400


# --- lost links -----------------------------------------------------------------------------


def test_lost_links_go_only_to_a_known_address_once_an_hour(submit: Any, item: ContentItem) -> None:
    case = untrusted(submit, item)
    status_links_send(email="  Owner@Example.org ")
    status_links_send(email="owner@example.org")
    status_links_send(email="nobody@example.net")
    sent = Notification.objects.filter(kind="status_links")
    assert sent.count() == 1
    message = render_message(sent.get())
    assert message.to == ["owner@example.org"]
    assert links.status_url(case) in message.body
    assert not Requester.objects.filter(email="nobody@example.net").exists()


# --- what the messages say ------------------------------------------------------------------


def test_mail_to_an_unproven_address_repeats_nothing_the_sender_typed(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    settings.TAKEDOWN_DEADLINE = 600
    case = submit(
        channel="web",
        email="stranger@example.net",
        name="Your account is locked, see http://phish.example",
        urls=[item.source_url, "https://elsewhere.example/a-phishing-page"],
    ).case
    message = render_message(Notification.objects.get(case=case, kind="confirm"))
    assert "phish.example" not in message.body
    assert "elsewhere.example" not in message.body
    assert "within 10 minutes" in message.body
    assert "24 hours" not in message.body
    html = message.alternatives[0][0]
    assert "phish.example" not in str(html)


def test_a_refusal_on_appeal_offers_no_second_appeal_and_a_grant_clears_the_refusal(
    admin_user: Any, second_reviewer: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    # Messages are rendered when sent: the first refusal goes out before any appeal.
    first = Notification.objects.get(case=case, kind="rejected")
    assert "Appeal against the decision" in render_message(first).body
    case = case_appeal(case=case, reasons="I am.", actor="requester:test")
    case = review.case_reject(case=case, user_id=second_reviewer.pk, reasons="Still not.")
    second = Notification.objects.filter(case=case, kind="rejected").exclude(pk=first.pk).get()
    final = render_message(second).body
    assert "cannot be appealed here again" in final
    assert "out-of-court" in final

    other = untrusted(submit, ContentItemFactory.create(outlet=item.outlet))
    other = review.case_reject(case=other, user_id=admin_user.pk, reasons="Not the owner.")
    other = case_appeal(case=other, reasons="I am.", actor="requester:test")
    view = case_present(other, targets=list(other.targets.all()), viewer=Viewer.staff())
    assert view.decision is not None  # the decision under appeal is shown while it is open
    other = review.case_approve(case=other, user_id=second_reviewer.pk)
    view = case_present(other, targets=list(other.targets.all()), viewer=Viewer.staff())
    assert view.decision is None


def test_restore_is_refused_to_the_first_decider_and_where_nothing_was_removed(
    admin_user: Any, second_reviewer: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    case = case_appeal(case=case, reasons="I am.", actor="requester:test")
    events = AuditEvent.objects.count()
    with pytest.raises(DomainError) as refused:
        review.case_restore(case=case, user_id=admin_user.pk, reasons="x")
    assert refused.value.code == "same_decider"
    with pytest.raises(DomainError) as refused:
        review.case_restore(case=case, user_id=second_reviewer.pk, reasons="x")
    assert refused.value.code == "not_permitted"  # a reviewer does not restore
    lead = staff_in("lead", "lena")
    with pytest.raises(DomainError) as refused:
        review.case_restore(case=case, user_id=lead.pk, reasons="x")
    assert refused.value.code == "nothing_to_restore"
    assert AuditEvent.objects.count() == events
    case.refresh_from_db()
    assert case.state == CaseState.APPEALED


def test_the_link_of_a_request_withdrawn_unconfirmed_says_so(
    submit: Any, item: ContentItem
) -> None:
    case = _web_case(submit, item)
    case_withdraw(case=case, actor=case.requester.actor)
    with pytest.raises(ConfirmationRefused) as refused:
        confirmation_check(token=links.confirmation_token(case))
    assert refused.value.code == "withdrawn"
    with pytest.raises(DomainError, match="already withdrawn"):
        case_withdraw(case=case, actor=case.requester.actor)
