"""Nothing may stall the clock: a trickling or refusing CMS, a large case, a bad backend setting,
a restore racing a removal, or a case left disabled pending review.

Real PostgreSQL, real loopback servers misbehaving at the socket level (tests/slow_cms.py), and
real threads on their own database connections where two workers race. Time moves in-process
with time-machine (the service's clock follows it here, see tests/conftest.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import Client
from django.utils import timezone

from rights import audit, selectors
from rights.models import (
    AuditEvent,
    ContentItem,
    LadderRung,
    Notification,
    RemovalEffect,
    SweeperRun,
    TakedownRequest,
    Target,
)
from rights.removal import RemovalFailed
from rights.removal.webhook import MAX_RESPONSE, webhook_post
from rights.services import effects, enforcement, review, scheduling
from rights.services.notifications import notification_send
from rights.states import CaseState, ContentStatus, TargetState
from tests.engine import drive, trusted, untrusted
from tests.factories import ContentItemFactory, OutletFactory, telegraph_items
from tests.slow_cms import SlowCMS
from tests.stack import ROOT, WEBHOOK_SECRET

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks and leases need PostgreSQL"
    ),
]


def _due(case: TakedownRequest) -> None:
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())


def _at_failsafe(case: TakedownRequest) -> Any:
    assert case.clock_started_at is not None
    return time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False)


def _use_cms(settings: Any, cms: SlowCMS, timeout: float = 1) -> None:
    settings.REMOVAL_BACKENDS = ["catalogue", "webhook"]
    settings.REMOVAL_WEBHOOK_URL = cms.url
    settings.REMOVAL_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.REMOVAL_WEBHOOK_TIMEOUT = timeout


def _status(item: ContentItem) -> str:
    return ContentItem.objects.get(pk=item.pk).status


@pytest.fixture
def make_cms() -> Iterator[Any]:
    made: list[SlowCMS] = []

    def _make(**kwargs: Any) -> SlowCMS:
        made.append(SlowCMS(**kwargs))
        return made[-1]

    yield _make
    for cms in made:
        cms.close()


# --- 1. The webhook's timeout bounds the whole call -------------------------------------------


@pytest.mark.parametrize("mode", ["trickle", "trickle_body"])
def test_a_trickling_cms_is_cut_off_when_the_timeout_is_up(make_cms: Any, mode: str) -> None:
    """One byte every half second never trips a per-read timeout; the whole call's does."""
    cms = make_cms(mode=mode, pace=0.5)
    with pytest.raises(RemovalFailed, match="longer than 1 s"):
        webhook_post(cms.url, b"{}", {"Idempotency-Key": "k1"}, timeout=1)
    cms.wait_hung_up()
    assert cms.finished == 0  # we did not wait for the answer the CMS was dripping out


def test_only_the_start_of_a_huge_answer_is_read(make_cms: Any) -> None:
    cms = make_cms(mode="huge", huge_bytes=1000 * MAX_RESPONSE)
    assert webhook_post(cms.url, b"{}", {"Idempotency-Key": "k2"}, timeout=5) == 200
    cms.wait_hung_up()
    assert cms.finished == 0


def test_a_trickled_call_is_a_failed_attempt_retried_later(
    settings: Any, make_cms: Any, submit: Any, item: ContentItem
) -> None:
    cms = make_cms(mode="trickle")
    _use_cms(settings, cms)
    case = trusted(submit, item)
    drive(case)
    effect = RemovalEffect.objects.get(target__case=case, backend="webhook")
    assert effect.done_at is None
    assert effect.dead_at is None
    assert effect.attempts == 1
    assert effect.last_error == "webhook call took longer than 1 s"
    assert effect.next_attempt_at is not None
    assert _status(item) == ContentStatus.REMOVED  # our own copy went first, regardless


@pytest.mark.django_db(transaction=True)
def test_the_target_is_not_called_twice_while_its_lease_holds(
    settings: Any, make_cms: Any, submit: Any, item: ContentItem
) -> None:
    """A second worker keeps trying the same target all through the first one's call."""
    cms = make_cms(mode="trickle")
    _use_cms(settings, cms)
    # The lease as config/settings.py derives it for this timeout (the deadline's part is tiny
    # with a short deadline): it must outlast the call, which the timeout now bounds.
    settings.TARGET_LEASE = 2 * settings.REMOVAL_WEBHOOK_TIMEOUT + 5
    case = trusted(submit, item)
    [target_id] = enforcement.case_advance(case_id=case.pk)
    first = threading.Thread(target=_enforce_on_own_connection, args=(target_id,))
    first.start()
    cms.wait_received("remove")
    second_results = []
    while first.is_alive():
        second_results.append(effects.target_enforce(target_id=target_id))
        first.join(0.05)
    assert second_results
    assert not any(second_results)
    assert cms.total_calls() == 1
    assert max(cms.max_in_flight.values()) == 1


def _enforce_on_own_connection(target_id: int) -> None:
    try:
        effects.target_enforce(target_id=target_id)
    finally:
        connection.close()


# --- 3. The fail-safe in chunks, whatever the size of the case --------------------------------


def _largest_case(submit: Any) -> TakedownRequest:
    """As large as intake accepts: a whole domain of 1,000 articles plus 100 URLs."""
    telegraph_items(1000, prefix="domain")
    other = OutletFactory.create(slug="other-news")
    urls = [
        ContentItemFactory.create(outlet=other, source_domain="www.other-news.example").source_url
        for _ in range(100)
    ]
    case = submit(whole_domain="telegraph.co.uk", urls=urls).case
    assert case.targets.count() == 1100
    assert case.targets.filter(state=TargetState.PENDING).count() == 1100
    return case


def test_failsafe_of_the_largest_case_goes_in_chunks_and_resumes(
    settings: Any, submit: Any
) -> None:
    case = _largest_case(submit)
    events_before = AuditEvent.objects.filter(stream=case.audit_stream()).count()
    with _at_failsafe(case):
        _due(case)
        # A budget of nothing: one chunk per run, each committed, then the case is handed back.
        assert enforcement.case_advance(case_id=case.pk, failsafe_budget=0) == []
        case.refresh_from_db()
        assert case.state == CaseState.IN_REVIEW
        assert case.next_check_at is not None
        assert case.next_check_at <= timezone.now()
        assert case.lease_until is None
        assert LadderRung.objects.filter(case=case, rung="failsafe").count() == 1
        disabled = Target.objects.filter(case=case, state=TargetState.DISABLED)
        assert disabled.count() == settings.FAILSAFE_CHUNK
        # In id order: the first chunk is the first hundred targets.
        first_ids = list(case.targets.order_by("pk").values_list("pk", flat=True)[:100])
        assert set(disabled.values_list("pk", flat=True)) == set(first_ids)
        runs = 1
        while case.state != CaseState.DISABLED_PENDING_REVIEW:
            enforcement.case_advance(case_id=case.pk, failsafe_budget=0)
            case.refresh_from_db()
            runs += 1
            assert runs <= 12
    assert runs == 11
    assert not Target.objects.filter(case=case, state=TargetState.PENDING).exists()
    assert not ContentItem.objects.filter(targets__case=case, status=ContentStatus.LIVE).exists()
    # Each target disabled once, its effect recorded once; the rung once.
    effects = RemovalEffect.objects.filter(target__case=case, action="disable", backend="catalogue")
    assert effects.count() == 1100
    assert not effects.filter(done_at__isnull=True).exists()
    assert LadderRung.objects.filter(case=case).values_list("rung", flat=True).count() == 3
    actions = list(
        AuditEvent.objects.filter(stream=case.audit_stream())
        .order_by("seq")
        .values_list("action", flat=True)[events_before:]
    )
    assert actions.count("ladder.failsafe") == 1
    assert actions.count("target.disabled") == 1100
    assert actions.count("case.disabled_pending_review") == 1
    audit.verify()


@pytest.mark.django_db(transaction=True)
def test_a_failsafe_killed_mid_way_keeps_its_chunks_and_resumes(
    submit: Any, tmp_path: Path
) -> None:
    """The standby sweeper is killed while it disables a 1,100-target case: what it did is
    committed chunk by chunk (visible from another connection while it runs), and the next
    sweeper carries on with the targets still pending."""
    case = _largest_case(submit)
    now = timezone.now()
    TakedownRequest.objects.filter(pk=case.pk).update(
        received_at=now - timedelta(hours=22),
        clock_started_at=now - timedelta(hours=22),
        deadline_at=now + timedelta(hours=2),
        next_check_at=now,
    )
    disabled = Target.objects.filter(case=case, state=TargetState.DISABLED)
    sweeper = subprocess.Popen(
        [sys.executable, "manage.py", "sweep", "--once"],
        cwd=ROOT,
        env=_sweeper_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = 0
        while sweeper.poll() is None and not 0 < seen < 1100:
            seen = disabled.count()
            time.sleep(0.02)
    finally:
        sweeper.kill()
        sweeper.wait(30)
    assert 0 < seen < 1100, "the fail-safe's work only showed up all at once"
    kept = disabled.count()
    assert kept % 100 == 0  # whole chunks, each committed on its own
    # The next sweeper finishes the job (the dead one's lease cleared, as if it had run out).
    for _ in range(20):
        case.refresh_from_db()
        if case.state == CaseState.DISABLED_PENDING_REVIEW:
            break
        TakedownRequest.objects.filter(pk=case.pk).update(lease_until=None)
        resumed = subprocess.run(
            [sys.executable, "manage.py", "sweep", "--once"],
            cwd=ROOT,
            env=_sweeper_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    assert disabled.count() == 1100
    assert LadderRung.objects.filter(case=case, rung="failsafe").count() == 1
    effects = RemovalEffect.objects.filter(target__case=case, backend="catalogue")
    assert effects.filter(action="disable", done_at__isnull=False).count() == 1100
    assert (
        AuditEvent.objects.filter(stream=case.audit_stream(), action="target.disabled").count()
        == 1100
    )
    audit.verify()


def _sweeper_env(tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }


# --- 4. Effect configuration never undoes a rung; a typo stops start-up -----------------------


def test_a_bad_backend_setting_does_not_roll_back_the_failsafe(
    settings: Any, submit: Any, item: ContentItem
) -> None:
    case = untrusted(submit, item)
    settings.REMOVAL_BACKENDS = ["catalog"]  # a typo that bypassed start-up (a settings module)
    with _at_failsafe(case):
        _due(case)
        with pytest.raises(ImproperlyConfigured, match="REMOVAL_BACKENDS"):
            enforcement.case_advance(case_id=case.pk)
    assert LadderRung.objects.filter(case=case, rung="failsafe").exists()
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    assert _status(item) == ContentStatus.DISABLED
    assert Client().get(item.get_absolute_url()).status_code == 451


@pytest.mark.parametrize("value", [["catalog"], [], ["webhook"], ["catalogue", "catalogue"]])
def test_system_check_refuses_bad_removal_backends(settings: Any, value: list[str]) -> None:
    settings.REMOVAL_BACKENDS = value
    with pytest.raises(SystemCheckError, match=r"rights\.E002"):
        call_command("check")


def test_system_check_refuses_plain_http_to_a_remote_cms(settings: Any) -> None:
    settings.DEBUG = False
    settings.REMOVAL_WEBHOOK_URL = "http://cms.example/takedown"
    with pytest.raises(SystemCheckError, match=r"rights\.E003"):
        call_command("check")


# --- 5. A CMS that refuses for good: a dead letter --------------------------------------------


def test_a_refusing_cms_leaves_a_dead_letter_staff_can_retry(
    settings: Any,
    make_cms: Any,
    submit: Any,
    item: ContentItem,
    admin_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cms = make_cms(status=422)
    _use_cms(settings, cms)
    case = untrusted(submit, item)
    with _at_failsafe(case), caplog.at_level(logging.ERROR, logger="rights.services.effects"):
        _due(case)
        drive(case)
    # The fail-safe still took our own page down.
    assert _status(item) == ContentStatus.DISABLED
    assert Client().get(item.get_absolute_url()).status_code == 451
    effect = RemovalEffect.objects.get(target__case=case, backend="webhook", action="disable")
    assert effect.dead_at is not None
    assert effect.done_at is None
    assert effect.attempts == 1
    assert effect.last_error == "webhook refused with HTTP 422"
    assert any(r.levelno == logging.ERROR and "for good" in r.getMessage() for r in caplog.records)
    assert Notification.objects.filter(case=case, kind="dead_letter", audience="leads").exists()
    assert AuditEvent.objects.filter(stream=case.audit_stream(), action="effect.dead").exists()
    # Not retried on its own, however long we wait.
    with time_machine.travel(effect.dead_at + timedelta(hours=1), tick=False):
        _due(case)
        drive(case)
    assert cms.total_calls() == 1
    # Visible where people look, without taking working web servers out of rotation: the
    # engine runs (a fresh heartbeat), only a person can fix this.
    SweeperRun.objects.update_or_create(
        name="sweeper", defaults={"last_run_at": timezone.now(), "last_claimed": 0}
    )
    health = Client().get("/healthz")
    assert health.json()["dead_effects"] == 1
    assert health.json()["status"] == "attention"
    assert health.status_code == 200
    assert selectors.sla_status().needs_attention
    listing = admin_client.get("/admin/rights/removaleffect/?dead_at__isnull=False")
    assert effect.key in listing.content.decode()
    # Staff fix the cause and retry.
    cms.status = 200
    response = admin_client.post(
        "/admin/rights/removaleffect/",
        {"action": "retry_dead_letters", "_selected_action": [effect.pk]},
        follow=True,
    )
    assert "1 dead letter put back in line" in response.content.decode()
    effect.refresh_from_db()
    assert effect.dead_at is None
    retried = AuditEvent.objects.get(stream=case.audit_stream(), action="effect.retried")
    assert retried.actor.startswith("staff:")
    drive(case)
    effect.refresh_from_db()
    assert effect.done_at is not None
    assert cms.total_calls() == 2
    assert Client().get("/healthz").json()["dead_effects"] == 0


@pytest.mark.parametrize("status", [408, 429, 500])
def test_transient_answers_are_retried_not_dead(
    settings: Any, make_cms: Any, submit: Any, item: ContentItem, status: int
) -> None:
    cms = make_cms(status=status)
    _use_cms(settings, cms)
    case = trusted(submit, item)
    drive(case)
    effect = RemovalEffect.objects.get(target__case=case, backend="webhook")
    assert effect.dead_at is None
    assert effect.next_attempt_at is not None
    assert effect.last_error == f"webhook answered HTTP {status}"


# --- 6. A restore never reaches the CMS after another case's removal --------------------------


@pytest.mark.django_db(transaction=True)
def test_a_later_removal_wins_over_a_restore_in_flight(
    settings: Any, make_cms: Any, submit: Any, item: ContentItem, admin_user: Any
) -> None:
    cms = make_cms(mode="hold", hold_actions=frozenset({"restore"}))
    _use_cms(settings, cms, timeout=10)
    doubtful = untrusted(submit, item)
    with _at_failsafe(doubtful):
        _due(doubtful)
        drive(doubtful)
    assert cms.state_of(item.slug) == "disable"
    doubtful = review.case_reject(case=doubtful, user_id=admin_user.pk, reasons="Not theirs.")
    [restoring] = enforcement.case_advance(case_id=doubtful.pk)
    # The restore is on its way to the CMS (our copy is back up already)...
    worker = threading.Thread(target=_enforce_on_own_connection, args=(restoring,))
    worker.start()
    cms.wait_received("restore")
    # ...when the owner's trusted removal comes in and is worked at once.
    owner = trusted(submit, item)
    drive(owner)
    assert _status(item) == ContentStatus.REMOVED
    # Its CMS call waits for the restore in flight rather than racing it.
    waiting = RemovalEffect.objects.get(target__case=owner, backend="webhook")
    assert waiting.done_at is None
    assert waiting.attempts == 0  # waiting its turn is not a failed attempt
    cms.release.set()
    worker.join(15)
    assert not worker.is_alive()
    waiting.refresh_from_db()
    assert waiting.next_attempt_at is not None
    with time_machine.travel(waiting.next_attempt_at + timedelta(seconds=1), tick=False):
        _due(owner)
        drive(owner)
    # The CMS heard the removal last: the latest decision is what it shows.
    assert [action for action, _ in cms.applied] == ["disable", "restore", "remove"]
    assert cms.state_of(item.slug) == "remove"
    owner.refresh_from_db()
    assert owner.state == CaseState.REMOVED
    assert _status(item) == ContentStatus.REMOVED


@pytest.mark.django_db(transaction=True)
def test_a_restore_decided_before_a_removal_is_not_sent_after_it(
    settings: Any, make_cms: Any, submit: Any, item: ContentItem, admin_user: Any
) -> None:
    """The restore was claimed, then another case's removal was decided before its call: the
    call is decided again from the item's state at call time, and not made."""
    cms = make_cms()
    _use_cms(settings, cms, timeout=10)
    doubtful = untrusted(submit, item)
    with _at_failsafe(doubtful):
        _due(doubtful)
        drive(doubtful)
    doubtful = review.case_reject(case=doubtful, user_id=admin_user.pk, reasons="Not theirs.")
    [restoring] = enforcement.case_advance(case_id=doubtful.pk)
    claimed = effects._claim_target(restoring, timezone.now())
    assert claimed is not None
    target, action, lease = claimed
    assert action == "restore"
    # Another case's removal is decided meanwhile.
    owner = trusted(submit, item)
    enforcement.case_advance(case_id=owner.pk)
    effect = RemovalEffect.objects.create(
        target=target,
        backend="webhook",
        action="restore",
        key=effects.effect_key(target, "restore", "webhook"),
    )
    effect.target = target
    assert effects._remote_begin(target, action, effect, lease) is None
    assert cms.total_calls() == 1  # the fail-safe's disable only


# --- 9. Disabled pending review: still open, still chased, and the requester is told -----------


def test_a_disabled_case_stays_open_chased_and_explained(
    settings: Any, submit: Any, item: ContentItem, admin_user: Any, client: Client
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    case = untrusted(submit, item)
    with _at_failsafe(case):
        _due(case)
        drive(case)
        scheduling.sweep_claim()
        assert client.get("/healthz").json()["open_cases"] == 1
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    # The requester hears that the content is disabled pending review.
    told = Notification.objects.get(case=case, kind="disabled", audience="requester")
    assert notification_send(notification_id=told.pk)
    assert "disabled pending review" in mail.outbox[-1].body
    assert mail.outbox[-1].to == ["owner@example.org"]
    # Reviewers are reminded, every REVIEW_REMINDER_INTERVAL, until someone decides.
    assert case.next_check_at is not None
    interval = timedelta(seconds=settings.REVIEW_REMINDER_INTERVAL)
    failsafe_at = LadderRung.objects.get(case=case, rung="failsafe").fired_at
    assert case.next_check_at == failsafe_at + interval

    def reminders() -> int:
        return Notification.objects.filter(
            case=case, kind="pending_review", audience="reviewers"
        ).count()

    for n in (1, 2):
        with time_machine.travel(failsafe_at + n * interval, tick=False):
            drive(case)
            drive(case)  # a duplicate message changes nothing
        assert reminders() == n
    case = review.case_approve(case=case, user_id=admin_user.pk)
    drive(case)
    with time_machine.travel(failsafe_at + 5 * interval, tick=False):
        _due(case)
        drive(case)
    assert reminders() == 2
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert (
        AuditEvent.objects.filter(stream=case.audit_stream(), action="review.reminded").count() == 2
    )
