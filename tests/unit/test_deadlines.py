"""The clock and the escalation ladder: pure functions of (start, length, now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from rights.deadlines import (
    LADDER,
    Rung,
    deadline_at,
    due_rungs,
    next_rung_at,
    rung_due_at,
    rung_offset,
    time_left,
)

pytestmark = pytest.mark.smoke

START = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # the night before a DST change in Europe
SECOND = timedelta(seconds=1)
RUNGS = [Rung.REMINDER, Rung.ESCALATION, Rung.FAILSAFE, Rung.BREACH]

# (length, {rung: seconds after the start})
LADDERS = {
    86400: {
        Rung.REMINDER: 12 * 3600,  # T-12h
        Rung.ESCALATION: 20 * 3600,  # T-4h
        Rung.FAILSAFE: 22 * 3600,  # T-2h
        Rung.BREACH: 24 * 3600,  # T-0
    },
    120: {Rung.REMINDER: 60, Rung.ESCALATION: 100, Rung.FAILSAFE: 110, Rung.BREACH: 120},
}


def test_ladder_is_ordered_and_ends_at_the_deadline() -> None:
    assert [rung for rung, _ in LADDER] == RUNGS
    fractions = [fraction for _, fraction in LADDER]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1


def test_deadline_is_calendar_time_from_the_start() -> None:
    assert deadline_at(START, 86400) == START + timedelta(hours=24)
    assert deadline_at(START, 120) == START + timedelta(minutes=2)
    # Calendar time: a DST change in the requester's zone does not stretch the day.
    assert deadline_at(START, 86400) == datetime(2026, 3, 29, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("length", [0, -1, -86400])
def test_deadline_length_must_be_positive(length: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        deadline_at(START, length)


@pytest.mark.parametrize("length", sorted(LADDERS))
@pytest.mark.parametrize("rung", RUNGS)
def test_rung_thresholds(length: int, rung: Rung) -> None:
    expected = timedelta(seconds=LADDERS[length][rung])
    assert rung_offset(rung, length) == expected
    assert rung_due_at(rung, START, length) == START + expected


def test_breach_falls_exactly_on_the_deadline() -> None:
    for length in (1, 7, 120, 3599, 86400, 86401):
        assert rung_due_at(Rung.BREACH, START, length) == deadline_at(START, length)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(min_value=1, max_value=30 * 86400))
def test_rungs_never_late_and_in_order(length: int) -> None:
    """Offsets round down to whole seconds, so a rung is never later than its fraction."""
    previous = timedelta(0)
    for rung, fraction in LADDER:
        offset = rung_offset(rung, length)
        assert offset.microseconds == 0
        assert offset.total_seconds() <= fraction * length < offset.total_seconds() + 1
        assert offset >= previous
        previous = offset


@pytest.mark.parametrize("length", sorted(LADDERS))
def test_due_rungs_just_before_and_at_each_threshold(length: int) -> None:
    assert due_rungs(START, length, START) == []
    assert due_rungs(START, length, START - SECOND) == []
    for index, rung in enumerate(RUNGS):
        moment = START + timedelta(seconds=LADDERS[length][rung])
        assert due_rungs(START, length, moment - timedelta(microseconds=1)) == RUNGS[:index]
        assert due_rungs(START, length, moment) == RUNGS[: index + 1]
    assert due_rungs(START, length, START + timedelta(days=365)) == RUNGS


@pytest.mark.parametrize("length", sorted(LADDERS))
def test_due_rungs_with_the_clock_moving(length: int) -> None:
    """The same answers with the process clock travelling, as the sweeper will see them."""
    with time_machine.travel(START, tick=False) as traveller:
        started = timezone.now()
        assert due_rungs(started, length, timezone.now()) == []
        elapsed = 0
        for index, rung in enumerate(RUNGS):
            threshold = LADDERS[length][rung]
            traveller.shift(threshold - elapsed - 1)
            assert due_rungs(started, length, timezone.now()) == RUNGS[:index]
            traveller.shift(1)
            elapsed = threshold
            assert due_rungs(started, length, timezone.now()) == RUNGS[: index + 1]
        assert time_left(deadline_at(started, length), timezone.now()) == timedelta(0)
        traveller.shift(5)
        assert time_left(deadline_at(started, length), timezone.now()) == -5 * SECOND


@pytest.mark.parametrize("length", sorted(LADDERS))
def test_next_rung_at(length: int) -> None:
    at = {rung: START + timedelta(seconds=s) for rung, s in LADDERS[length].items()}
    assert next_rung_at(START, length, set()) == at[Rung.REMINDER]
    assert next_rung_at(START, length, {"reminder"}) == at[Rung.ESCALATION]
    assert next_rung_at(START, length, frozenset({"reminder", "escalation"})) == at[Rung.FAILSAFE]
    assert next_rung_at(START, length, {"reminder", "escalation", "failsafe"}) == at[Rung.BREACH]
    assert next_rung_at(START, length, set(RUNGS)) is None
    # A rung that was missed (say, the worker was down) still comes first.
    assert next_rung_at(START, length, {"escalation", "failsafe"}) == at[Rung.REMINDER]
    # Enum members and their string values are the same key.
    assert next_rung_at(START, length, {Rung.REMINDER}) == at[Rung.ESCALATION]


def test_time_left() -> None:
    deadline = deadline_at(START, 86400)
    assert time_left(deadline, START) == timedelta(hours=24)
    assert time_left(deadline, deadline) == timedelta(0)
    assert time_left(deadline, deadline + timedelta(minutes=1)) == -timedelta(minutes=1)
