"""The deadline engine's services, run in-process with an injected clock (time-machine).

The whole-stack behaviour, with real worker processes, is in tests/reliability; here each step is
called directly so that the ladder's timing and each decision's consequences can be pinned down.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from rights.models import (
    AuditEvent,
    ContentItem,
    LadderRung,
    Notification,
    RemovalEffect,
    Suppression,
    SweeperRun,
    TakedownRequest,
    Target,
)
from rights.services import effects, enforcement, review, scheduling
from rights.services.notifications import notification_send
from rights.services.suppression import may_publish
from rights.states import CaseState, ContentStatus, TargetState
from tests.engine import drive, trusted, untrusted
from tests.factories import ContentItemFactory
from tests.stack import WEBHOOK_SECRET, Receiver

pytestmark = pytest.mark.django_db


def _item(item: ContentItem) -> ContentItem:
    return ContentItem.objects.get(pk=item.pk)


def test_trusted_case_is_removed_and_suppressed(submit: Any, item: ContentItem) -> None:
    case = trusted(submit, item)
    assert case.state == CaseState.APPROVED
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert case.closed_at is not None
    removed = _item(item)
    assert removed.status == ContentStatus.REMOVED
    assert removed.body == ""
    assert Target.objects.get(case=case).state == TargetState.REMOVED
    assert not may_publish(item.source_url)
    assert not may_publish(item.source_url + "?utm_source=newsletter#top")
    assert may_publish("https://www.telegraph.co.uk/news/something-else/")
    kinds = set(Notification.objects.filter(case=case).values_list("kind", flat=True))
    assert kinds == {"received", "removed"}
    effects = RemovalEffect.objects.filter(target__case=case)
    assert [(e.backend, e.action) for e in effects] == [("catalogue", "remove")]
    assert all(e.done_at is not None for e in effects)


def test_repeating_the_work_changes_nothing(submit: Any, item: ContentItem) -> None:
    case = trusted(submit, item)
    drive(case)
    events = AuditEvent.objects.count()
    target = Target.objects.get(case=case)
    assert effects.target_enforce(target_id=target.pk) is False  # nothing owed
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
    assert enforcement.case_advance(case_id=case.pk) == []
    assert AuditEvent.objects.count() == events
    assert Suppression.objects.filter(case=case).count() == 1


def test_duplicate_message_for_a_case_not_due_is_ignored(submit: Any, item: ContentItem) -> None:
    case = untrusted(submit, item)
    drive(case)  # schedules the first rung, half-way to the deadline
    events = AuditEvent.objects.count()
    assert enforcement.case_advance(case_id=case.pk) == []
    assert AuditEvent.objects.count() == events


def test_ladder_fires_each_rung_once_at_its_moment(submit: Any, item: ContentItem) -> None:
    case = untrusted(submit, item)
    start = case.clock_started_at
    assert start is not None
    drive(case)
    case.refresh_from_db()
    assert case.next_check_at == start + timedelta(hours=12)

    def rungs() -> list[str]:
        return list(LadderRung.objects.filter(case=case).values_list("rung", flat=True))

    with time_machine.travel(start + timedelta(hours=12) - timedelta(seconds=1), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
        assert rungs() == []
    with time_machine.travel(start + timedelta(hours=12), tick=False):
        drive(case)
        drive(case)
        assert rungs() == ["reminder"]
    with time_machine.travel(start + timedelta(hours=20, seconds=1), tick=False):
        drive(case)
        assert rungs() == ["reminder", "escalation"]
        assert _item(item).status == ContentStatus.LIVE
    with time_machine.travel(start + timedelta(hours=22), tick=False):
        drive(case)
        assert rungs() == ["reminder", "escalation", "failsafe"]
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    target = Target.objects.get(case=case)
    assert target.state == TargetState.DISABLED
    assert target.outcome_at is not None
    assert case.deadline_at is not None
    assert target.outcome_at < case.deadline_at
    assert _item(item).status == ContentStatus.DISABLED
    assert Client().get(item.get_absolute_url()).status_code == 451
    # Past the deadline nothing more fires: the fail-safe met it.
    with time_machine.travel(start + timedelta(hours=30), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    assert rungs() == ["reminder", "escalation", "failsafe"]
    actions = list(
        AuditEvent.objects.filter(stream=f"case:{case.reference}", action__startswith="ladder.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["ladder.reminder", "ladder.escalation", "ladder.failsafe"]
    audiences = set(
        Notification.objects.filter(
            case=case, kind__in=["reminder", "escalation", "failsafe"]
        ).values_list("kind", "audience")
    )
    assert audiences == {
        ("reminder", "reviewers"),
        ("escalation", "leads"),
        ("failsafe", "reviewers"),
        ("failsafe", "leads"),
    }


def test_ladder_scales_with_the_deadline(settings: Any, submit: Any, item: ContentItem) -> None:
    settings.TAKEDOWN_DEADLINE = 120
    case = untrusted(submit, item)
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(seconds=110), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    assert set(LadderRung.objects.filter(case=case).values_list("rung", flat=True)) == {
        "reminder",
        "escalation",
        "failsafe",
    }


def test_engine_down_past_the_deadline_records_a_breach(submit: Any, item: ContentItem) -> None:
    case = untrusted(submit, item)
    assert case.deadline_at is not None
    with time_machine.travel(case.deadline_at + timedelta(minutes=5), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    rungs = dict(LadderRung.objects.filter(case=case).values_list("rung", "pending_targets"))
    # The late fail-safe still disabled the content; the breach is recorded, once.
    assert set(rungs) == {"reminder", "escalation", "failsafe", "breach"}
    assert _item(item).status == ContentStatus.DISABLED
    assert Notification.objects.filter(case=case, kind="breach", audience="leads").exists()


def test_rejection_after_failsafe_restores_the_content(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    assert _item(item).status == ContentStatus.DISABLED
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not the owner.")
    drive(case)
    assert _item(item).status == ContentStatus.RESTORED
    assert Target.objects.get(case=case).state == TargetState.REJECTED
    assert Client().get(item.get_absolute_url()).status_code == 200
    case.refresh_from_db()
    assert case.state == CaseState.REJECTED
    assert case.decision_reasons == "Not the owner."
    # The trail proves what was decided without holding the words.
    assert not AuditEvent.objects.filter(data__icontains="Not the owner").exists()


def test_reject_needs_reasons_and_writes_nothing(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    events = AuditEvent.objects.count()
    with pytest.raises(Exception, match="reasons"):
        review.case_reject(case=case, user_id=admin_user.pk, reasons="   ")
    case.refresh_from_db()
    assert case.state == CaseState.IN_REVIEW
    assert AuditEvent.objects.count() == events


def test_staff_approval_removes(admin_user: Any, submit: Any, item: ContentItem) -> None:
    case = untrusted(submit, item)
    case = review.case_approve(case=case, user_id=admin_user.pk)
    assert case.decided_by_id == admin_user.pk
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert _item(item).status == ContentStatus.REMOVED


def test_restoring_wrongly_removed_content(admin_user: Any, submit: Any, item: ContentItem) -> None:
    case = trusted(submit, item)
    drive(case)
    case = review.case_restore(case=case, user_id=admin_user.pk, reasons="Removed in error.")
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.RESTORED
    assert Target.objects.get(case=case).state == TargetState.RESTORED
    assert _item(item).status == ContentStatus.RESTORED
    assert may_publish(item.source_url)
    actions = list(
        AuditEvent.objects.filter(stream=f"case:{case.reference}")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions[-7:] == [
        "case.appealed",
        "case.restored",
        "target.restored",
        "case.statement_of_reasons",
        "suppression.lifted",
        "content.restored",
        "effect.restore",
    ]


def test_whole_domain_removal_suppresses_the_domain(submit: Any, outlet: Any) -> None:
    items = ContentItemFactory.create_batch(3, outlet=outlet)
    case = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        whole_domain="telegraph.co.uk",
        email_verified=True,
        actor="staff:test",
    ).case
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert all(_item(i).status == ContentStatus.REMOVED for i in items)
    assert not may_publish("https://www.telegraph.co.uk/news/tomorrow/")
    assert not may_publish("https://telegraph.co.uk/")
    assert may_publish("https://www.telegraph.co.uk.example.org/news/")


def test_unconfirmed_web_request_expires(settings: Any, submit: Any, item: ContentItem) -> None:
    case = submit(channel="web", urls=[item.source_url]).case
    assert case.state == CaseState.AWAITING_CONFIRMATION
    assert case.deadline_at is None
    assert case.confirm_by is not None
    assert enforcement.case_advance(case_id=case.pk) == []  # not due yet
    with time_machine.travel(case.confirm_by + timedelta(seconds=1), tick=False):
        enforcement.case_advance(case_id=case.pk)
    case.refresh_from_db()
    assert case.state == CaseState.EXPIRED
    assert case.next_check_at is None
    assert _item(item).status == ContentStatus.LIVE


def test_failing_webhook_backs_off_and_brings_the_sweeper_back(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    receiver = Receiver()
    try:
        settings.REMOVAL_BACKENDS = ["catalogue", "webhook"]
        settings.REMOVAL_WEBHOOK_URL = receiver.url
        settings.REMOVAL_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.REMOVAL_WEBHOOK_TIMEOUT = 1
        receiver.fail_until = float("inf")
        case = trusted(submit, item)
        drive(case)
        effect = RemovalEffect.objects.get(target__case=case, backend="webhook")
        assert effect.done_at is None
        assert effect.attempts == 1
        assert effect.last_error == "webhook answered HTTP 500"
        assert effect.next_attempt_at is not None
        case.refresh_from_db()
        assert case.state == CaseState.REMOVING
        assert case.next_check_at is not None
        assert case.next_check_at <= effect.next_attempt_at + timedelta(seconds=60)
        # The CMS recovers; at the retry time the sweeper's pass completes the removal.
        receiver.fail_until = 0
        with time_machine.travel(effect.next_attempt_at + timedelta(seconds=1), tick=False):
            TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
            drive(case)
        case.refresh_from_db()
        assert case.state == CaseState.REMOVED
        assert receiver.effects_for("remove") == {Target.objects.get(case=case).pk: 1}
    finally:
        receiver.close()


def test_sweep_claims_what_is_due_once_per_lease(submit: Any, item: ContentItem) -> None:
    due = trusted(submit, item)
    later = untrusted(submit, ContentItemFactory.create(outlet=item.outlet))
    drive(later)  # its next check is hours away
    claimed = scheduling.sweep_claim()
    assert claimed.cases == [due.pk]
    assert scheduling.sweep_claim().cases == []  # leased
    due.refresh_from_db()
    assert due.lease_until is not None
    with time_machine.travel(due.lease_until + timedelta(seconds=1), tick=False):
        assert scheduling.sweep_claim().cases == [due.pk]
    assert SweeperRun.objects.get(name="sweeper").last_claimed >= 1


def test_notification_is_sent_once(settings: Any, submit: Any, item: ContentItem) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    case = untrusted(submit, item)
    notification = Notification.objects.get(case=case, kind="received")
    assert notification_send(notification_id=notification.pk) is True
    assert notification_send(notification_id=notification.pk) is False
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.org"]
    assert case.reference in mail.outbox[0].subject
    notification.refresh_from_db()
    assert notification.sent_at is not None
    # The trail records the sending, never the address.
    sent = AuditEvent.objects.get(action="notification.sent")
    assert "example.org" not in str(sent.data)


def test_notification_failure_is_retried_later(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens, the connection is refused
    settings.EMAIL_TIMEOUT = 1
    case = untrusted(submit, item)
    notification = Notification.objects.get(case=case, kind="received")
    assert notification_send(notification_id=notification.pk) is False
    notification.refresh_from_db()
    assert notification.sent_at is None
    assert notification.attempts == 1
    assert notification.next_attempt_at is not None
    assert notification.next_attempt_at > timezone.now()
    assert notification.lease_until is None


def test_healthz_and_sla_status(client: Client, submit: Any, item: ContentItem) -> None:
    untrusted(submit, item)
    response = client.get("/healthz")
    assert response.status_code == 503  # no sweeper has run yet
    assert response.json()["sweeper"]["last_run_at"] is None
    scheduling.sweep_claim()
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["open_cases"] == 1
    assert body["breaches"] == 0
    assert body["oldest_open_deadline"] is not None
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        stale = client.get("/healthz")
    assert stale.status_code == 503
    assert stale.json()["sweeper"]["lag_seconds"] >= 299


def _failsafe_now(case: TakedownRequest, *, enforce: bool = True) -> None:
    """Travel to the fail-safe and let it fire (and, with `enforce`, the backends follow)."""
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        owed = enforcement.case_advance(case_id=case.pk)
        if enforce:
            for target_id in owed:
                effects.target_enforce(target_id=target_id)


def test_failure_recording_the_outcome_rolls_the_removal_back_and_retries(
    monkeypatch: pytest.MonkeyPatch, submit: Any, item: ContentItem
) -> None:
    case = trusted(submit, item)
    real = effects._target_done

    def dies(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(effects, "_target_done", dies)
    drive(case)
    # The catalogue change, its record and the outcome commit together, or not at all.
    effect = RemovalEffect.objects.get(target__case=case)
    assert effect.done_at is None
    assert effect.attempts == 1
    assert effect.last_error == "unexpected RuntimeError"
    assert _item(item).status == ContentStatus.LIVE
    monkeypatch.setattr(effects, "_target_done", real)
    case.refresh_from_db()
    assert effect.next_attempt_at is not None
    assert case.next_check_at is not None
    assert case.next_check_at <= effect.next_attempt_at
    with time_machine.travel(effect.next_attempt_at, tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert not may_publish(item.source_url)


def test_effects_done_without_the_outcome_recorded_are_finished(
    submit: Any, item: ContentItem
) -> None:
    """Effects recorded by an earlier release that died before the target's outcome."""
    case = trusted(submit, item)
    enforcement.case_advance(case_id=case.pk)
    target = Target.objects.get(case=case)
    RemovalEffect.objects.create(
        target=target,
        backend="catalogue",
        action="remove",
        key=effects.effect_key(target, "remove", "catalogue"),
        done_at=timezone.now(),
    )
    assert effects.target_enforce(target_id=target.pk) is True
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert Target.objects.get(case=case).state == TargetState.REMOVED


def test_decision_after_the_deadline_on_a_failsafed_case_is_no_breach(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    _failsafe_now(case)
    assert case.deadline_at is not None
    with time_machine.travel(case.deadline_at + timedelta(hours=9), tick=False):
        case = review.case_approve(case=case, user_id=admin_user.pk)
        drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    target = Target.objects.get(case=case)
    assert target.outcome_at is not None
    assert case.deadline_at is not None
    assert target.outcome_at < case.deadline_at  # the fail-safe's moment is kept
    assert not LadderRung.objects.filter(case=case, rung="breach").exists()


def test_rejection_before_the_backends_caught_up_still_restores(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    _failsafe_now(case, enforce=False)  # the disable messages are still queued
    assert _item(item).status == ContentStatus.DISABLED
    case = review.case_reject(case=case, user_id=admin_user.pk, reasons="Not theirs.")
    drive(case)
    assert _item(item).status == ContentStatus.RESTORED


def test_rejecting_one_case_does_not_undo_another_cases_removal(
    admin_user: Any, submit: Any, item: ContentItem
) -> None:
    doubtful = untrusted(submit, item)
    _failsafe_now(doubtful)
    owner = trusted(submit, item)
    drive(owner)
    assert _item(item).status == ContentStatus.REMOVED
    doubtful = review.case_reject(case=doubtful, user_id=admin_user.pk, reasons="Not theirs.")
    drive(doubtful)
    assert _item(item).status == ContentStatus.REMOVED
    assert not may_publish(item.source_url)


def test_case_naming_nothing_of_ours_is_closed_not_left_unwatched(submit: Any, db: None) -> None:
    case = submit(urls=["https://unknown.example/story/"]).case
    case.refresh_from_db()
    assert case.state == CaseState.NOT_FOUND
    assert case.closed_at is not None
    assert case.next_check_at is None
    assert not LadderRung.objects.filter(case=case).exists()


def test_other_scheme_of_a_removed_source_is_suppressed(submit: Any, item: ContentItem) -> None:
    drive(trusted(submit, item))
    assert not may_publish(item.source_url.replace("https://", "http://"))


@pytest.fixture
def cms(settings: Any) -> Any:
    receiver = Receiver()
    settings.REMOVAL_BACKENDS = ["catalogue", "webhook"]
    settings.REMOVAL_WEBHOOK_URL = receiver.url
    settings.REMOVAL_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.REMOVAL_WEBHOOK_TIMEOUT = 1
    yield receiver
    receiver.close()


def test_rejection_does_not_restore_what_another_case_is_removing(
    admin_user: Any, cms: Receiver, submit: Any, item: ContentItem
) -> None:
    doubtful = untrusted(submit, item)
    _failsafe_now(doubtful)
    cms.fail_until = float("inf")  # the owner's removal is half done: catalogue yes, CMS not yet
    owner = trusted(submit, item)
    drive(owner)
    assert _item(item).status == ContentStatus.REMOVED
    owner.refresh_from_db()
    assert owner.state == CaseState.REMOVING
    doubtful = review.case_reject(case=doubtful, user_id=admin_user.pk, reasons="Not theirs.")
    drive(doubtful)
    assert _item(item).status == ContentStatus.REMOVED
    cms.fail_until = 0
    effect = RemovalEffect.objects.get(target__case=owner, backend="webhook")
    assert effect.next_attempt_at is not None
    with time_machine.travel(effect.next_attempt_at, tick=False):
        TakedownRequest.objects.filter(pk=owner.pk).update(next_check_at=timezone.now())
        drive(owner)
    owner.refresh_from_db()
    assert owner.state == CaseState.REMOVED
    assert _item(item).status == ContentStatus.REMOVED
    assert not may_publish(item.source_url)


def test_outcome_failure_after_the_cms_call_is_retried_without_calling_again(
    monkeypatch: pytest.MonkeyPatch, cms: Receiver, submit: Any, item: ContentItem
) -> None:
    case = trusted(submit, item)
    real = effects._target_done
    calls = {"n": 0}

    def fails_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        real(*args, **kwargs)

    monkeypatch.setattr(effects, "_target_done", fails_once)
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVING
    webhook = RemovalEffect.objects.get(target__case=case, backend="webhook")
    assert webhook.done_at is not None  # the remote effect is recorded, not repeated
    assert case.next_check_at is not None
    with time_machine.travel(case.next_check_at, tick=False):
        drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert sum(cms.calls.values()) == 1
