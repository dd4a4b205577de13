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
def stack(
    transactional_db: None, settings: Any, tmp_path: Path, stack_deadline: int
) -> Iterator[Stack]:
    # Intake runs in this process: it must start the same clock the workers enforce.
    settings.TAKEDOWN_DEADLINE = stack_deadline
    with running_stack(tmp_path, stack_deadline) as running:
        yield running
