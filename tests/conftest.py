from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rights.services.intake import IntakeResult, Submission, takedown_submit
from tests.factories import ContentItemFactory, statements_for, telegraph
from tests.stack import PrivateRedis


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
