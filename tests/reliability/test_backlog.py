"""A backlog of 10,000 cases arriving at once: every one is removed before its deadline, with
one effect per target at the CMS and an intact audit trail.

BACKLOG_CASES sets the size; scripts/test runs 400 to keep the suite short, and
`BACKLOG_CASES=10000 scripts/test tests/reliability/test_backlog.py` runs the full backlog.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from rights.models import TakedownRequest
from rights.states import CaseState
from tests.factories import telegraph_items
from tests.reliability.checks import assert_promise_kept
from tests.reliability.conftest import requires_postgres
from tests.stack import running_stack, submit_many, wait_for

# It keeps every core busy for a minute: in parallel runs, nothing runs beside it.
pytestmark = [requires_postgres, pytest.mark.stack, pytest.mark.alone]

BACKLOG = int(os.environ.get("BACKLOG_CASES", "10000"))
DEADLINE = 900


@pytest.mark.django_db(transaction=True)
def test_backlog_of_ten_thousand_cases(settings: Any, tmp_path: Path) -> None:
    settings.TAKEDOWN_DEADLINE = DEADLINE
    item_ids = telegraph_items(BACKLOG, prefix="backlog")
    with running_stack(tmp_path, DEADLINE) as stack:
        # Everything arrives before any worker runs: the whole backlog is waiting at once.
        submit_many(stack.env, item_ids)
        assert TakedownRequest.objects.count() == BACKLOG
        stack.start_worker("worker-1")
        stack.start_worker("worker-2")
        stack.start_beat()
        wait_for(
            lambda: TakedownRequest.objects.filter(state=CaseState.REMOVED).count() == BACKLOG,
            timeout=DEADLINE - 60,
            interval=2,
            what="the whole backlog to be removed",
        )
        references = list(TakedownRequest.objects.values_list("reference", flat=True))
        assert_promise_kept(stack, references)
    connection.close()
