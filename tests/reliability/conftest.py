from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from tests.stack import Stack, running_stack

requires_postgres = pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="whole-stack tests run on PostgreSQL",
)


@pytest.fixture
def stack_deadline() -> int:
    return 24


@pytest.fixture
def stack_redis_url() -> str:
    """The broker a `stack` runs on: this test process's own database of the shared Redis (one
    per pytest-xdist worker). Tests that stop or flush the whole broker override this with
    `private_redis` (tests/conftest.py), as tests/reliability/test_faults.py does."""
    return str(django_settings.REDIS_URL)


@pytest.fixture
def stack(
    transactional_db: None,
    settings: Any,
    tmp_path: Path,
    stack_deadline: int,
    stack_redis_url: str,
) -> Iterator[Stack]:
    # Intake runs in this process: it must start the same clock the workers enforce, and
    # publish to the broker they consume.
    settings.TAKEDOWN_DEADLINE = stack_deadline
    settings.REDIS_URL = stack_redis_url
    with running_stack(tmp_path, stack_deadline, stack_redis_url) as running:
        yield running
