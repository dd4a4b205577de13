"""`manage.py sweep`: the clock without the broker."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from rights.models import ContentItem, LadderRung, SweeperRun, TakedownRequest
from rights.states import CaseState, ContentStatus

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the subprocess needs a shared database"
    ),
]


@pytest.mark.django_db(transaction=True)
def test_sweep_runs_the_failsafe_with_the_broker_unreachable(
    submit: Any, item: ContentItem, tmp_path: Path
) -> None:
    case = submit(urls=[item.source_url]).case
    # A case received 22 hours ago, as if the engine had been idle since.
    now = timezone.now()
    TakedownRequest.objects.filter(pk=case.pk).update(
        received_at=now - timedelta(hours=22),
        clock_started_at=now - timedelta(hours=22),
        deadline_at=now + timedelta(hours=2),
        next_check_at=now,
    )
    db = connection.settings_dict
    swept = subprocess.run(
        [sys.executable, "manage.py", "sweep", "--once"],
        cwd=Path(__file__).resolve().parents[2],
        env={
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert swept.returncode == 0, swept.stderr
    assert "swept" in swept.stdout
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    item.refresh_from_db()
    assert item.status == ContentStatus.DISABLED
    assert set(LadderRung.objects.filter(case=case).values_list("rung", flat=True)) == {
        "reminder",
        "escalation",
        "failsafe",
    }
    assert SweeperRun.objects.get(name="sweeper").last_run_at is not None


def test_trusted_removal_by_the_standby_sweeper(submit: Any, item: ContentItem) -> None:
    case = submit(
        channel="staff", email="desk@telegraph.co.uk", urls=[item.source_url], email_verified=True
    ).case
    call_command("sweep", "--once", stdout=StringIO())
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
