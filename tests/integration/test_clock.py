"""The service's clock is the database's: a host whose own clock is wrong changes nothing.

In-process tests move time with time-machine, which the service's clock follows there (see
tests/conftest.py). Here the real one is tested: `rights.clock.database_now()` in-process, and
the standby sweeper in a subprocess whose host clock runs a day fast (a sitecustomize that
starts time-machine before anything else is imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from rights import clock
from rights.models import ContentItem, LadderRung, Notification, TakedownRequest
from rights.states import CaseState, ContentStatus

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the database's clock is PostgreSQL's"
)

ROOT = Path(__file__).resolve().parents[2]

FAST_HOST = """
import datetime
import time_machine

# This host's clock runs a day fast.
time_machine.travel(
    datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1), tick=True
).start()
"""


@pytest.mark.django_db
def test_database_now_ignores_the_host_clock() -> None:
    real = clock.database_now()
    with time_machine.travel(timezone.now() + timedelta(days=1), tick=False):
        assert abs(clock.database_now() - real) < timedelta(minutes=1)
        assert timezone.now() - real > timedelta(hours=23)


def _run_fast(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "fast_host"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(FAST_HOST)
    db = connection.settings_dict
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(site),
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


CLAIM = """
import django
django.setup()
from django.utils import timezone
from rights.services import scheduling
print(timezone.now().isoformat())
print(scheduling.sweep_claim().cases)
"""


@pytest.mark.django_db(transaction=True)
def test_a_host_a_day_fast_neither_fires_rungs_early_nor_leases_past_the_deadline(
    submit: Any, item: ContentItem, tmp_path: Path, settings: Any
) -> None:
    case = submit(urls=[item.source_url]).case
    assert case.state == CaseState.IN_REVIEW
    assert case.deadline_at is not None
    TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())

    # The claim: the lease runs from the database's now, not from tomorrow.
    claimed = _run_fast(tmp_path, "-c", CLAIM)
    assert claimed.returncode == 0, claimed.stderr
    host_now, cases = claimed.stdout.split("\n")[:2]
    assert timezone.now() + timedelta(hours=23) < datetime.fromisoformat(host_now)
    assert str(case.pk) in cases
    case.refresh_from_db()
    assert case.lease_until is not None
    assert case.lease_until <= clock.database_now() + timedelta(seconds=settings.SWEEP_LEASE)
    assert case.lease_until < case.deadline_at
    notification = Notification.objects.get(case=case, kind="received")
    assert notification.next_attempt_at is not None
    assert notification.next_attempt_at < case.deadline_at

    # The work: nothing is due for hours yet, so nothing fires, and the next look is at the
    # reminder, half-way by the database's clock.
    TakedownRequest.objects.filter(pk=case.pk).update(lease_until=None)
    swept = _run_fast(tmp_path, "manage.py", "sweep", "--once")
    assert swept.returncode == 0, swept.stderr
    assert not LadderRung.objects.filter(case=case).exists()
    case.refresh_from_db()
    assert case.state == CaseState.IN_REVIEW
    assert case.clock_started_at is not None
    assert case.next_check_at == case.clock_started_at + timedelta(hours=12)
    assert case.lease_until is None
    assert ContentItem.objects.get(pk=item.pk).status == ContentStatus.LIVE
