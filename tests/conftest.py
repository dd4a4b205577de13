from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rights.services.intake import IntakeResult, Submission, takedown_submit
from tests.factories import ContentItemFactory, statements_for, telegraph
from tests.stack import RUN_LOCK, PrivateRedis, sharing_the_run


@pytest.fixture
def outlet(db: None) -> Any:
    return telegraph()


@pytest.fixture
def item(outlet: Any) -> Any:
    return ContentItemFactory.create(outlet=outlet)


@pytest.fixture
def submit(db: None):  # type: ignore[no-untyped-def]
    """Submit a request through the intake service with sensible defaults."""

    def _submit(**overrides: Any) -> IntakeResult:
        fields: dict[str, Any] = {
            "channel": "email",
            "email": "owner@example.org",
            "name": "Owner",
            "basis": "copyright",
            "statements": statements_for("copyright"),
            "urls": [],
        }
        fields.update(overrides)
        return takedown_submit(submission=Submission(**fields))

    return _submit


@pytest.fixture(autouse=True)
def _host_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests move time with time-machine, which cannot move the database's clock:
    the service's clock follows the (travelled) process clock here. Subprocesses (workers, the
    standby sweeper) keep the real one, and tests/integration/test_clock.py tests it."""
    from django.utils import timezone

    from rights import clock

    monkeypatch.setattr(clock, "now", timezone.now)


@pytest.fixture(autouse=True)
def _audit_witness(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Path:
    """A fresh witness of audit checkpoints for every test, as every test has a fresh database:
    a witness records checkpoints of one database only. Processes the test starts (workers,
    the standby sweeper) inherit it through the environment."""
    path = tmp_path_factory.mktemp("audit-witness") / "audit-witness.jsonl"
    settings.AUDIT_WITNESS = str(path)
    monkeypatch.setenv("AUDIT_WITNESS", str(path))
    return path


@pytest.fixture
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (tests/stack.py), for a test that shuts its broker
    down, flushes all of it or starts it again: never the shared Redis, which other tests, and
    other test processes, are using meanwhile."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    yield server
    server.close()


def pytest_configure(config: pytest.Config) -> None:
    """In parallel runs (pytest-xdist's `-n`), hand each worker its next test only when it is
    ready for it (`--maxschedchunk=1`, unless given): by default each worker is sent a run of
    consecutive tests up front, and a run of long whole-stack tests sent to one worker waits
    out one deadline after another while the others are idle."""
    if getattr(config.option, "maxschedchunk", "no xdist") is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The whole-stack tests (`stack`: real worker processes, mostly waiting for a deadline)
    first, so that in parallel runs they overlap one another while the other tests fill the
    cores, instead of one of them finishing last, alone; the tests that must run `alone` last.
    Each module keeps its order. The whole-stack tests' transactions commit and are flushed
    after each test, so the tests after them start from the migrated, empty database as ever
    (no migration loads data that a flush would lose)."""
    items.sort(key=_run_order)


def _run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("alone") is not None:
        return 2
    return 0 if item.get_closest_marker("stack") is not None else 1


@pytest.fixture(scope="session", autouse=True)
def _run_lock(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One lock file for the whole parallel run, in the directory its processes' temporary
    directories share (popen-gw0, popen-gw1, ... are in it): see tests/stack.py."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ[RUN_LOCK] = str(tmp_path_factory.getbasetemp().parent / "run.lock")


@pytest.fixture(autouse=True)
def _alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """In parallel runs, a test marked `alone` runs while no other test does."""
    with sharing_the_run(alone=request.node.get_closest_marker("alone") is not None):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> None:
    """Each test counts the public doors' rate limits in keys of its own: the counters live in
    Redis, which outlasts a test (and a run), and everything here posts from 127.0.0.1."""
    settings.RATELIMIT_CACHE_PREFIX = f"rl:test:{uuid.uuid4().hex}:"
