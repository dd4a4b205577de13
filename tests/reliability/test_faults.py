"""The promise under faults: each test breaks one thing mid-run, then checks every case reached
an outcome before its deadline, one effect per target at the CMS, rungs once, and the trail.

Every test here runs its stack on a redis-server of its own (`private_redis`), which it may shut
down, flush entirely and restart: the shared Redis, and the tests running beside these in other
processes, never notice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from django.db import connection

from rights.models import TakedownRequest
from rights.states import CaseState
from tests.factories import ContentItemFactory, telegraph
from tests.reliability.checks import assert_promise_kept
from tests.reliability.conftest import requires_postgres
from tests.reliability.test_engine import submit
from tests.stack import ROOT, PrivateRedis, Stack, wait_for

pytestmark = [requires_postgres, pytest.mark.stack]


@pytest.fixture
def stack_redis_url(private_redis: PrivateRedis) -> str:
    return private_redis.url


def _settled(references: list[str]) -> bool:
    """Every case at its resting state: trusted ones removed, the rest disabled by fail-safe."""
    cases = TakedownRequest.objects.filter(reference__in=references)
    return all(
        c.state == (CaseState.REMOVED if c.trusted else CaseState.DISABLED_PENDING_REVIEW)
        for c in cases
    )


def _finish(stack: Stack, references: list[str], started: float) -> None:
    wait_for(
        lambda: _settled(references),
        timeout=stack.deadline + 10,
        what="every case to settle",
    )
    # Idle past the deadline so a late duplicate or a breach would show.
    time.sleep(max(0.0, stack.deadline - (time.monotonic() - started)) + 1)
    assert_promise_kept(stack, references)


def _items(count: int):  # type: ignore[no-untyped-def]
    return ContentItemFactory.create_batch(count, outlet=telegraph())


def test_worker_killed_mid_removal_then_restarted(stack: Stack) -> None:
    items = _items(4)
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    # The CMS stalls, so the worker is inside a removal when it dies.
    stack.receiver.hang_until = time.monotonic() + 4
    references = [submit(i, trusted=True) for i in items[:3]] + [submit(items[3], trusted=False)]
    wait_for(lambda: sum(stack.receiver.calls.values()) > 0, timeout=10, what="a CMS call")
    stack.kill("worker")
    time.sleep(2)
    stack.start_worker()
    _finish(stack, references, started)


def test_redis_shut_down_mid_run_and_intake_still_succeeds(
    stack: Stack, private_redis: PrivateRedis
) -> None:
    items = _items(6)
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    references = [submit(i, trusted=True) for i in items[:2]] + [submit(items[2], trusted=False)]
    private_redis.shutdown()
    # Intake does not need the broker: the case is in the database, the sweeper finds it later.
    before = time.monotonic()
    references += [submit(i, trusted=True) for i in items[3:5]] + [submit(items[5], trusted=False)]
    assert time.monotonic() - before < 15
    time.sleep(3)
    private_redis.start()
    _finish(stack, references, started)


def test_redis_flushed_mid_run(stack: Stack, private_redis: PrivateRedis) -> None:
    items = _items(6)
    stack.receiver.fail_until = time.monotonic() + 3  # keep work in flight when the keys go
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    references = [submit(i, trusted=True) for i in items[:4]] + [
        submit(i, trusted=False) for i in items[4:]
    ]
    time.sleep(1)
    with private_redis.client() as client:
        client.flushall()
    _finish(stack, references, started)


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os, sys
    import django
    django.setup()
    from django.db import transaction
    from rights.services.intake import Submission, takedown_submit
    from rights.statements import REQUIRED_STATEMENTS

    with transaction.atomic():
        # Registered first, so it runs first: the process dies after the commit and before
        # the intake's own hook publishes the task.
        transaction.on_commit(lambda: os._exit(3))
        result = takedown_submit(submission=Submission(
            channel="staff", email="desk@telegraph.co.uk", name="Desk", basis="copyright",
            urls=[sys.argv[1]], statements=list(REQUIRED_STATEMENTS["copyright"]),
            email_verified=True, actor="staff:test",
        ))
        print(result.case.reference, flush=True)
    """
)


def test_crash_between_commit_and_publish(stack: Stack) -> None:
    items = _items(2)
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    references = []
    for item in items:
        crashed = subprocess.run(
            [sys.executable, "-c", CRASH_AFTER_COMMIT, item.source_url],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == 3, crashed.stderr
        references.append(crashed.stdout.strip())
    assert TakedownRequest.objects.filter(reference__in=references).count() == 2
    _finish(stack, references, started)


def test_webhook_errors_and_timeouts_then_recovery(stack: Stack) -> None:
    items = _items(4)
    now = time.monotonic()
    stack.receiver.fail_until = now + 4
    stack.receiver.hang_until = now + 7  # after the 500s, it stalls past the client's timeout
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    references = [submit(i, trusted=True) for i in items[:3]] + [submit(items[3], trusted=False)]
    _finish(stack, references, started)
    # It was tried more than once while failing, yet took effect once per target.
    assert sum(stack.receiver.calls.values()) > len(references)


def test_two_beats_at_once_then_beat_killed_and_restarted(stack: Stack) -> None:
    items = _items(6)
    stack.start_worker()
    stack.start_beat("beat-a")
    stack.start_beat("beat-b")
    started = time.monotonic()
    references = [submit(i, trusted=True) for i in items[:3]] + [
        submit(i, trusted=False) for i in items[3:]
    ]
    time.sleep(3)
    stack.kill("beat-a")
    stack.kill("beat-b")
    # No scheduler: the fast path still removes trusted content, but nothing sweeps.
    time.sleep(3)
    stack.start_beat("beat-c")
    _finish(stack, references, started)


def teardown_module() -> None:
    connection.close()
