"""The deadline engine end to end, with nothing going wrong: the baseline for the fault tests."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rights.deadlines import Rung, rung_due_at
from rights.models import ContentItem, LadderRung, TakedownRequest
from rights.services.intake import Submission, takedown_submit
from rights.statements import REQUIRED_STATEMENTS
from rights.states import CaseState, ContentStatus
from tests.factories import ContentItemFactory, telegraph
from tests.reliability.checks import assert_promise_kept
from tests.reliability.conftest import requires_postgres
from tests.stack import Stack, wait_for

pytestmark = [requires_postgres, pytest.mark.stack]


def submit(item: ContentItem, *, trusted: bool, **extra: Any) -> str:
    submission = Submission(
        channel="staff" if trusted else "email",
        email="desk@telegraph.co.uk" if trusted else f"someone{item.pk}@example.org",
        name="Desk",
        basis="copyright",
        urls=[item.source_url],
        statements=list(REQUIRED_STATEMENTS["copyright"]),
        email_verified=trusted,
        actor="staff:test" if trusted else "",
        **extra,
    )
    return takedown_submit(submission=submission).case.reference


def test_trusted_removed_at_once_and_untrusted_failsafe(stack: Stack) -> None:
    """Trusted requests are removed at once, before the ladder's first rung falls due, with no
    rung fired for them (how fast is measured by tests/bench/bench_engine.py, not here); nobody
    decides the others, and the fail-safe disables them before the deadline."""
    outlet = telegraph()
    items = ContentItemFactory.create_batch(4, outlet=outlet)
    stack.start_worker()
    stack.start_beat()
    started = time.monotonic()
    trusted = [submit(i, trusted=True) for i in items[:2]]
    untrusted = [submit(i, trusted=False) for i in items[2:]]

    wait_for(
        lambda: (
            TakedownRequest.objects.filter(reference__in=trusted, state=CaseState.REMOVED).count()
            == 2
        ),
        timeout=stack.deadline / 2,
        what="trusted cases removed",
    )
    for case in TakedownRequest.objects.filter(reference__in=trusted):
        assert case.clock_started_at is not None
        assert case.deadline_seconds is not None
        first_rung = rung_due_at(Rung.REMINDER, case.clock_started_at, case.deadline_seconds)
        assert case.closed_at is not None
        assert case.closed_at < first_rung, (case.reference, case.closed_at, first_rung)
    assert not LadderRung.objects.filter(case__reference__in=trusted).exists()
    assert all(
        i.status == ContentStatus.REMOVED and i.body == ""
        for i in ContentItem.objects.filter(pk__in=[i.pk for i in items[:2]])
    )
    # Nobody decides the others: the fail-safe disables them before the deadline.
    wait_for(
        lambda: (
            TakedownRequest.objects.filter(
                reference__in=untrusted, state=CaseState.DISABLED_PENDING_REVIEW
            ).count()
            == 2
        ),
        timeout=stack.deadline + 5,
        what="fail-safe",
    )
    assert all(
        i.status == ContentStatus.DISABLED
        for i in ContentItem.objects.filter(pk__in=[i.pk for i in items[2:]])
    )
    # Let the engine idle past the deadline: nothing more may happen (no breach, no repeats).
    time.sleep(max(0.0, stack.deadline - (time.monotonic() - started)) + 2)
    assert_promise_kept(stack, trusted + untrusted)
    mails = "\n".join(stack.mails())
    assert "reminder" in mails.lower()
    assert "fail-safe" in mails.lower()
