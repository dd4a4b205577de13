"""The clock and the escalation ladder, as pure functions of (start, length, now).

The ladder is expressed as fractions of the deadline so that one setting scales it:
reminder at 1/2 (T-12h of 24h), escalation to leads at 5/6 (T-4h), fail-safe at 11/12 (T-2h),
breach at the deadline itself. Offsets are whole seconds, rounded down, so a rung is never late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from django.conf import settings
from django.db import models
from django.utils.translation import ngettext


class Rung(models.TextChoices):
    REMINDER = "reminder", "Reminder to reviewers"
    ESCALATION = "escalation", "Escalation to leads"
    FAILSAFE = "failsafe", "Fail-safe: content disabled pending review"
    BREACH = "breach", "Deadline breached"


def duration_words(seconds: int) -> str:
    """A length of time as the promise states it, on pages and in mail: "24 hours"; short test
    deadlines read as minutes or seconds."""
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}
    return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}


LADDER: tuple[tuple[Rung, Fraction], ...] = (
    (Rung.REMINDER, Fraction(1, 2)),
    (Rung.ESCALATION, Fraction(5, 6)),
    (Rung.FAILSAFE, Fraction(11, 12)),
    (Rung.BREACH, Fraction(1)),
)


def deadline_at(started_at: datetime, length_seconds: int) -> datetime:
    if length_seconds <= 0:
        raise ValueError("the deadline length must be positive")
    return started_at + timedelta(seconds=length_seconds)


def rung_offset(rung: Rung, length_seconds: int) -> timedelta:
    fraction = dict(LADDER)[rung]
    return timedelta(seconds=int(fraction * length_seconds))


def rung_due_at(rung: Rung, started_at: datetime, length_seconds: int) -> datetime:
    return started_at + rung_offset(rung, length_seconds)


def due_rungs(started_at: datetime, length_seconds: int, now: datetime) -> list[Rung]:
    """Every rung whose moment has come, in ladder order."""
    return [rung for rung, _ in LADDER if rung_due_at(rung, started_at, length_seconds) <= now]


def next_rung_at(
    started_at: datetime, length_seconds: int, fired: set[str] | frozenset[str]
) -> datetime | None:
    """When the first rung not yet fired falls due; None once the whole ladder has fired."""
    for rung, _ in LADDER:
        if rung not in fired:
            return rung_due_at(rung, started_at, length_seconds)
    return None


def retry_backoff(attempts: int) -> timedelta:
    """How long to wait after the n-th failed attempt of a side effect: doubling from
    RETRY_FIRST to RETRY_CAP, both of which scale with the deadline (config/settings.py)."""
    return timedelta(
        seconds=min(settings.RETRY_CAP, settings.RETRY_FIRST * 2 ** max(0, attempts - 1))
    )


def time_left(deadline: datetime, now: datetime) -> timedelta:
    """Negative once the deadline has passed."""
    return deadline - now
