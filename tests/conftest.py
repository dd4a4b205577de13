from __future__ import annotations

from typing import Any

import pytest

from rights.services.intake import IntakeResult, takedown_submit
from tests.factories import ContentItemFactory, statements_for, telegraph


@pytest.fixture
def outlet(db: None) -> Any:
    return telegraph()


@pytest.fixture
def item(outlet: Any) -> Any:
    return ContentItemFactory(outlet=outlet)


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
        return takedown_submit(**fields)

    return _submit
