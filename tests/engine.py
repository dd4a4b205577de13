"""Driving the deadline engine in-process, as a worker would, for the service-level tests."""

from __future__ import annotations

from typing import Any

from rights.models import ContentItem, TakedownRequest
from rights.services import effects, enforcement


def drive(case: TakedownRequest) -> None:
    """What the worker does for a claimed case: advance it, then enforce each owed target."""
    for target_id in enforcement.case_advance(case_id=case.pk):
        effects.target_enforce(target_id=target_id)


def trusted(submit: Any, item: ContentItem) -> TakedownRequest:
    """A request from the outlet's own desk, entered by staff: approved at once."""
    return submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        urls=[item.source_url],
        email_verified=True,
        actor="staff:test",
    ).case


def untrusted(submit: Any, item: ContentItem) -> TakedownRequest:
    """A request by email from an unknown sender: it goes to review."""
    return submit(urls=[item.source_url]).case
