"""The public transparency report's figures (/transparency/): aggregates only, per month and per
half-year, in a fixed number of queries whatever the number of cases.

A period's requests are the cases whose clock started in it (received, as the SLA dashboard
counts them), and what was done, the time to outcome and the deadline kept are those of the
same cases (a cohort), so each period's figures describe the same requests. Fail-safes, breaches,
appeals and suspensions are counted when they happened.

**Nothing that could identify anyone.** No reference, URL, name, address or text leaves here:
only counts and durations. A breakdown (by door, basis or outcome) whose period has fewer than
TRANSPARENCY_MIN_COUNT requests is not given at all (the outcomes count URLs, but one person's
request for many URLs is still one request), and within a breakdown a count below it is
withheld (None); when only one would be withheld, the next smallest is withheld too, so that
the total cannot give it back. Appeals, their decisions, reversals and suspensions are withheld
below it too. Times and the share that met the deadline are withheld below the threshold as
well: a median of one case is that case. Across periods, a half-year withholds every cell that
one of its months withholds (all of a breakdown a month does not give), so that the half-year's
less the other months' never gives a month's back: every cell a half-year shows is one each of
its months shows. Totals (requests, URLs, decided), fail-safes and breaches are shown exactly:
they count our own work, and withholding a few breaches would hide the promise's failures.

The time to outcome reuses the SLA dashboard's definition (`selectors._case_outcomes`) and its
percentile (`selectors._percentile`, PostgreSQL's percentile_cont computed in Python).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case as DbCase
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import TruncMonth

from rights import clock
from rights.deadlines import Rung
from rights.models import (
    AuditEvent,
    Channel,
    LadderRung,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.selectors import _case_outcomes, _percentile
from rights.statements import Basis
from rights.states import TargetState

MONTHS = 12  # months shown at least, back from the current one
SUSPENDED_ACTION = "requester.suspended"  # rights.services.abuse's audit action
NO_BASIS = "none"

DOORS: list[tuple[str, str]] = [(str(v), str(label)) for v, label in Channel.choices]
BASES: list[tuple[str, str]] = [
    (str(Basis.COPYRIGHT), "Copyright"),
    (str(Basis.PRIVACY), "Privacy"),
    (str(Basis.DEFAMATION), "Defamation"),
    (str(Basis.OTHER), "Owner's wish (other)"),
    (NO_BASIS, "None stated"),
]
# What was done, per URL: the target's state. "Not ours": a URL we do not publish.
OUTCOMES: list[tuple[str, str]] = [
    (str(TargetState.REMOVED), "Removed"),
    (str(TargetState.DISABLED), "Disabled pending review"),
    (str(TargetState.REJECTED), "Rejected"),
    (str(TargetState.RESTORED), "Restored"),
    (str(TargetState.NOT_FOUND), "Not ours"),
]
DOOR_KEYS = [key for key, _ in DOORS]
BASIS_KEYS = [key for key, _ in BASES]
OUTCOME_KEYS = [key for key, _ in OUTCOMES]
BREAKDOWNS = [("by_door", DOOR_KEYS), ("by_basis", BASIS_KEYS), ("outcomes", OUTCOME_KEYS)]
# Counts shown on their own, withheld below the threshold like any other.
SMALL_COUNTS = ("appeals", "appeal_decisions", "reversals", "suspensions")


@dataclass(frozen=True)
class Period:
    key: str  # "2026-11" or "2026-H2"
    kind: str  # "month" or "half-year"
    label: str
    start: date
    end: date  # exclusive


@dataclass(frozen=True)
class Figures:
    period: Period
    received: int
    by_door: dict[str, int | None] | None  # None: too few to break down
    by_basis: dict[str, int | None] | None
    urls: int
    outcomes: dict[str, int | None] | None
    decided: int  # requests with an outcome for every URL
    met_deadline: int | None
    median: timedelta | None
    p95: timedelta | None
    failsafes: int  # shown exactly: our own keeping of the promise
    breaches: int
    appeals: int | None  # None: withheld
    appeal_decisions: int | None
    reversals: int | None
    suspensions: int | None

    @property
    def met_share(self) -> float | None:
        if self.met_deadline is None or not self.decided:
            return None
        return self.met_deadline / self.decided


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    min_count: int
    months: list[Figures]  # newest first
    halves: list[Figures]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _half_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def periods(today: date) -> tuple[list[Period], list[Period]]:
    """The months and half-years shown: the last MONTHS months, from the start of the half-year
    the first of them falls in (so every half-year shown is whole), to the current one."""
    start = _half_start(_add_months(_month_start(today), -(MONTHS - 1)))
    months: list[Period] = []
    month = start
    while month <= today:
        following = _add_months(month, 1)
        months.append(Period(f"{month:%Y-%m}", "month", f"{month:%B %Y}", month, following))
        month = following
    halves: list[Period] = []
    half = start
    while half <= today:
        following = _add_months(half, 6)
        first = half.month == 1
        label = f"{'January to June' if first else 'July to December'} {half.year}"
        halves.append(
            Period(f"{half.year}-H{1 if first else 2}", "half-year", label, half, following)
        )
        half = following
    return months, halves


def _month_of(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return _month_start(value)


def _withheld(
    counts: dict[str, int],
    keys: list[str],
    total: int,
    k: int,
    also: Iterable[str] = (),
) -> dict[str, int | None] | None:
    """A breakdown as it may be published (see the module's docstring): None when `total`
    (the period's requests) is below `k`; else each count, with those below `k` withheld, and
    those in `also` (withheld in a month of this half-year: `transparency_report`) whatever they
    are; and when only one would be withheld, the next smallest too."""
    if total < k:
        return None
    shown: dict[str, int | None] = {key: counts.get(key, 0) for key in keys}
    hidden = {key for key in keys if 0 < counts.get(key, 0) < k} | (set(also) & set(keys))
    for key in hidden:
        shown[key] = None
    if len(hidden) == 1:
        others = sorted((counts.get(key, 0), key) for key in keys if key not in hidden)
        others = [(n, key) for n, key in others if n > 0]
        if others:
            shown[others[0][1]] = None
    return shown


def _hidden(breakdown: dict[str, int | None] | None, keys: list[str], received: int) -> set[str]:
    """The cells of a month's breakdown that are withheld: every one when the whole breakdown is
    (unless the month had no request, when every cell is known to be 0)."""
    if breakdown is None:
        return set(keys) if received else set()
    return {key for key in keys if breakdown.get(key) is None}


def _small(n: int, k: int, month_hidden: bool = False) -> int | None:
    """A count on its own (appeals, suspensions...): withheld below `k`, or when the same count
    is withheld in a month of this half-year (the half-year's less the other months' would give
    it back)."""
    return None if 0 < n < k or month_hidden else n


Counted = dict[date, dict[tuple[str, ...], int]]  # month -> key -> count


def _per_month(rows: QuerySet[Any], *keys: str) -> Counted:
    counted: dict[date, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        if row["month"] is None:
            continue
        counted[_month_of(row["month"])][tuple(str(row[key]) for key in keys)] += row["n"]
    return counted


Latency = tuple[int, int, timedelta | None, timedelta | None]  # decided, met, median, p95


def _latencies(since: datetime) -> dict[tuple[str, date], Latency]:
    """Per (kind, start) of month or half-year: requests decided, those that met the deadline,
    and the median and 95th percentile time to outcome."""
    outcomes = _case_outcomes().filter(clock_started_at__gte=since)
    result: dict[tuple[str, date], Latency] = {}
    # One query for the durations, the percentiles in Python (as PostgreSQL's percentile_cont
    # computes them): aggregating in the database evaluates `_case_outcomes`' correlated
    # subqueries once per aggregate and again for half-years, three times slower (measured
    # with tests/bench/bench_transparency.py: 4.3 s against 1.4 s for 20,000 cases).
    groups: dict[tuple[str, date], list[tuple[float, bool]]] = defaultdict(list)
    for started, outcome_at, deadline_at in outcomes.values_list(
        "clock_started_at", "outcome_at", "deadline_at"
    ):
        taken = (outcome_at - started).total_seconds()
        kept = deadline_at is not None and outcome_at <= deadline_at
        groups[("month", _month_of(started))].append((taken, kept))
        groups[("half-year", _half_start(_month_of(started)))].append((taken, kept))
    for key, values in groups.items():
        seconds = [taken for taken, _ in values]
        median, p95 = _percentile(seconds, 0.5), _percentile(seconds, 0.95)
        result[key] = (
            len(values),
            sum(1 for _, kept in values if kept),
            timedelta(seconds=median) if median is not None else None,
            timedelta(seconds=p95) if p95 is not None else None,
        )
    return result


def transparency_report(*, now: datetime | None = None) -> Report:
    """Every figure of the public report. Seven queries, whatever the number of cases."""
    now = now if now is not None else clock.now()
    k = settings.TRANSPARENCY_MIN_COUNT
    months, halves = periods(now.astimezone(UTC).date())
    since = _at(months[0].start)

    received = _per_month(
        TakedownRequest.objects.filter(clock_started_at__gte=since)
        .annotate(month=TruncMonth("clock_started_at", tzinfo=UTC))
        .values("month", "channel", "basis")
        .annotate(n=Count("pk"))
        .order_by(),
        "channel",
        "basis",
    )
    outcomes = _per_month(
        Target.objects.filter(case__clock_started_at__gte=since)
        .annotate(month=TruncMonth("case__clock_started_at", tzinfo=UTC))
        .values("month", "state")
        .annotate(n=Count("pk"))
        .order_by(),
        "state",
    )
    rungs = _per_month(
        LadderRung.objects.filter(fired_at__gte=since, rung__in=[Rung.FAILSAFE, Rung.BREACH])
        .annotate(month=TruncMonth("fired_at", tzinfo=UTC))
        .values("month", "rung")
        .annotate(n=Count("pk"))
        .order_by(),
        "rung",
    )
    appeals = _per_month(
        TakedownRequest.objects.filter(appealed_at__gte=since)
        .annotate(month=TruncMonth("appealed_at", tzinfo=UTC))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by(),
    )
    # An appeal's decision reverses the first when its measure differs from the first round's
    # (a refusal turned into a removal, a removal restored); an upheld one repeats it.
    first_measure = StatementOfReasons.objects.filter(case=OuterRef("case"), round=0).order_by(
        "-decided_at"
    )
    decisions = _per_month(
        StatementOfReasons.objects.filter(round__gte=1, decided_at__gte=since)
        .annotate(
            month=TruncMonth("decided_at", tzinfo=UTC),
            first=Subquery(first_measure.values("measure")[:1]),
        )
        .annotate(
            reversed=DbCase(
                When(~Q(measure=F("first")), then=Value("yes")),
                default=Value("no"),
            )
        )
        .values("month", "reversed")
        .annotate(n=Count("pk"))
        .order_by(),
        "reversed",
    )
    suspensions = _per_month(
        AuditEvent.objects.filter(action=SUSPENDED_ACTION, created_at__gte=since)
        .annotate(month=TruncMonth("created_at", tzinfo=UTC))
        .values("month")
        .annotate(n=Count("pk"))
        .order_by(),
    )
    latency = _latencies(since)

    def figures(
        period: Period, hide: dict[str, set[str]] | None = None, hide_counts: Iterable[str] = ()
    ) -> Figures:
        """One period's figures; `hide` and `hide_counts` name the cells and counts withheld
        whatever they are (a half-year's, withheld in one of its months)."""
        hide = hide or {}
        hushed = set(hide_counts)
        covered = [p.start for p in months if period.start <= p.start < period.end]

        def total(source: Counted, pick: int | None = None) -> dict[str, int]:
            summed: dict[str, int] = defaultdict(int)
            for month in covered:
                for key, n in source.get(month, {}).items():
                    if pick is None:
                        summed[""] += n
                    else:
                        summed[key[pick]] += n
            return summed

        doors = total(received, 0)
        bases = total(received, 1)
        bases = {(NO_BASIS if key == "" else key): n for key, n in bases.items()}
        count = sum(doors.values())
        states = total(outcomes, 0)
        ladder = total(rungs, 0)
        decided_rows = total(decisions, 0)
        n, met, median, p95 = latency.get((period.kind, period.start), (0, 0, None, None))
        enough = n >= k
        return Figures(
            period=period,
            received=count,
            by_door=_withheld(doors, DOOR_KEYS, count, k, hide.get("by_door", ())),
            by_basis=_withheld(bases, BASIS_KEYS, count, k, hide.get("by_basis", ())),
            urls=sum(states.values()),
            # Broken down when the period has enough requests: one person's request for many
            # URLs is still one request.
            outcomes=_withheld(states, OUTCOME_KEYS, count, k, hide.get("outcomes", ())),
            decided=n,
            met_deadline=met if enough and "met_deadline" not in hushed else None,
            median=median if enough else None,
            p95=p95 if enough else None,
            failsafes=ladder.get(str(Rung.FAILSAFE), 0),
            breaches=ladder.get(str(Rung.BREACH), 0),
            appeals=_small(sum(total(appeals).values()), k, "appeals" in hushed),
            appeal_decisions=_small(sum(decided_rows.values()), k, "appeal_decisions" in hushed),
            reversals=_small(decided_rows.get("yes", 0), k, "reversals" in hushed),
            suspensions=_small(sum(total(suspensions).values()), k, "suspensions" in hushed),
        )

    monthly = [figures(p) for p in months]

    def half_year(period: Period) -> Figures:
        """Complementary suppression: a cell withheld in any month of the half-year is withheld
        in the half-year too, or the half-year's less the other months' would give it back.
        Every cell the half-year then shows is one every month shows, so it tells nothing the
        months do not."""
        covered = [f for f in monthly if period.start <= f.period.start < period.end]
        hide = {
            name: set().union(*(_hidden(getattr(f, name), keys, f.received) for f in covered))
            for name, keys in BREAKDOWNS
        }
        hushed = {name for name in SMALL_COUNTS if any(getattr(f, name) is None for f in covered)}
        if any(f.met_deadline is None and f.decided for f in covered):
            hushed.add("met_deadline")
        return figures(period, hide, hushed)

    return Report(
        generated_at=now,
        min_count=k,
        months=list(reversed(monthly)),
        halves=[half_year(p) for p in reversed(halves)],
    )
