"""A CMS that trickles its answers, one byte every half second, cannot stall the clock.

Neither the standby sweeper nor a worker is held past REMOVAL_WEBHOOK_TIMEOUT by a call, a target
is never called twice at once (its lease outlasts any call), and an undecided case still gets
its fail-safe before its deadline while every removal around it waits on that CMS. Real
processes (`manage.py sweep`, or a Celery worker and beat), real PostgreSQL, and a real loopback
server that trickles (tests/slow_cms.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from rights.models import ContentItem, LadderRung, TakedownRequest, Target
from rights.states import CaseState, ContentStatus, TargetState
from tests.factories import ContentItemFactory, telegraph
from tests.reliability.conftest import requires_postgres
from tests.slow_cms import SlowCMS
from tests.stack import ROOT, WEBHOOK_SECRET, Stack

pytestmark = [requires_postgres, pytest.mark.stack]

# Seconds: the fail-safe falls due at 33 s, 3 s before the deadline. The compressed clock keeps
# the fail-safe's margin three times the CMS timeout (1 s): with both worker slots held by calls
# that each last up to that timeout, the case's own turn can come two timeouts late.
DEADLINE = 36


@pytest.fixture
def stack_deadline() -> int:
    return DEADLINE


@pytest.fixture
def trickling_cms() -> Iterator[SlowCMS]:
    cms = SlowCMS(mode="trickle", pace=0.5)
    yield cms
    cms.close()


def _cases(submit: Any, settings: Any) -> tuple[list[TakedownRequest], TakedownRequest]:
    """Four trusted cases whose removals all go to the trickling CMS, and one nobody decides."""
    settings.TAKEDOWN_DEADLINE = DEADLINE
    outlet = telegraph()
    items = ContentItemFactory.create_batch(5, outlet=outlet)
    trusted = [
        submit(
            channel="staff",
            email="desk@telegraph.co.uk",
            urls=[item.source_url],
            email_verified=True,
            actor="staff:test",
        ).case
        for item in items[:4]
    ]
    undecided = submit(urls=[items[4].source_url]).case
    assert undecided.state == CaseState.IN_REVIEW
    return trusted, undecided


def _wait_past(moment: Any) -> None:
    while timezone.now() < moment:
        time.sleep(0.2)


def _assert_failsafe_in_time(undecided: TakedownRequest) -> None:
    undecided.refresh_from_db()
    assert undecided.deadline_at is not None
    failsafe = LadderRung.objects.filter(case=undecided, rung="failsafe").first()
    assert failsafe is not None, "no fail-safe before the deadline"
    assert failsafe.fired_at <= undecided.deadline_at
    target = Target.objects.get(case=undecided)
    assert target.state == TargetState.DISABLED
    assert target.outcome_at is not None
    assert target.outcome_at <= undecided.deadline_at
    assert target.content_item_id is not None
    item = ContentItem.objects.get(pk=target.content_item_id)
    assert item.status == ContentStatus.DISABLED
    assert undecided.state == CaseState.DISABLED_PENDING_REVIEW
    assert not LadderRung.objects.filter(case=undecided, rung="breach").exists()


def _assert_never_called_twice_at_once(cms: SlowCMS) -> None:
    assert cms.total_calls() >= 4  # every trusted removal reached the CMS, and was cut off
    assert cms.finished == 0
    assert max(cms.max_in_flight.values()) == 1, dict(cms.max_in_flight)


@pytest.mark.django_db(transaction=True)
def test_standby_sweepers_keep_the_clock_with_a_trickling_cms(
    settings: Any, submit: Any, trickling_cms: SlowCMS, tmp_path: Path
) -> None:
    trusted, undecided = _cases(submit, settings)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # no broker: the standby sweepers alone
        "TAKEDOWN_DEADLINE": str(DEADLINE),
        "REMOVAL_BACKENDS": "catalogue,webhook",
        "REMOVAL_WEBHOOK_URL": trickling_cms.url,
        "REMOVAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REMOVAL_WEBHOOK_TIMEOUT": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "PYTHONUNBUFFERED": "1",
    }
    sweepers = []
    try:
        for name in ("one", "two"):  # two, as on two machines: they must never share a call
            log = (tmp_path / f"sweep-{name}.log").open("wb")
            sweepers.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "sweep"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        assert undecided.deadline_at is not None
        _wait_past(undecided.deadline_at)
    finally:
        for process in sweepers:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    logs = "".join(p.read_text() for p in tmp_path.glob("sweep-*.log"))
    assert "Traceback" not in logs, logs[-3000:]
    _assert_failsafe_in_time(undecided)
    _assert_never_called_twice_at_once(trickling_cms)
    # Our own copies went regardless of the CMS.
    for case in trusted:
        target = Target.objects.get(case=case)
        assert target.content_item_id is not None
        assert ContentItem.objects.get(pk=target.content_item_id).status == ContentStatus.REMOVED


# Its fail-safe has 3 s before the deadline while the CMS holds every worker slot: in parallel
# runs, nothing runs beside it (tests/stack.py, sharing_the_run).
@pytest.mark.alone
@pytest.mark.django_db(transaction=True)
def test_workers_keep_the_clock_with_a_trickling_cms(
    settings: Any, submit: Any, trickling_cms: SlowCMS, stack: Stack
) -> None:
    assert stack.deadline == DEADLINE
    stack.env["REMOVAL_WEBHOOK_URL"] = trickling_cms.url
    _, undecided = _cases(submit, settings)
    stack.start_worker(concurrency=2)
    stack.start_beat()
    assert undecided.deadline_at is not None
    _wait_past(undecided.deadline_at)
    stack.stop()
    assert "Traceback" not in stack.log("worker"), stack.log("worker")[-3000:]
    _assert_failsafe_in_time(undecided)
    _assert_never_called_twice_at_once(trickling_cms)
