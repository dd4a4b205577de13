"""Read queries. Writes live in rights.services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError, connection
from django.db.models import (
    Aggregate,
    Count,
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models import Case as DbCase
from django.db.models.functions import TruncDate
from django.shortcuts import get_object_or_404
from django.utils import timezone

from rights import clock
from rights.deadlines import Rung
from rights.models import (
    Channel,
    ContentItem,
    LadderRung,
    Notification,
    RemovalEffect,
    SweeperRun,
    TakedownRequest,
    Target,
    WebhookDelivery,
    WebhookDeliveryState,
)
from rights.presenters import Viewer, ViewerKind
from rights.states import (
    CLOCK_RUNNING_STATES,
    CLOSED_CASE_STATES,
    TARGET_OUTCOMES,
    VISIBLE_CONTENT,
    CaseState,
    TargetState,
)

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class _TargetCount(TypedDict):
        target_count: int

    # A case as `case_summaries` returns it (for type checkers only; django_stubs_ext is a
    # development dependency).
    CaseSummary = WithAnnotations[TakedownRequest, _TargetCount]


REFERENCE_MAX = TakedownRequest._meta.get_field("reference").max_length or 16


def content_item_by_slug(slug: str) -> ContentItem:
    return get_object_or_404(ContentItem.objects.select_related("outlet"), slug=slug)


def content_latest(*, limit: int) -> list[ContentItem]:
    """The newest articles readers may see (taken-down ones never are), with their outlets."""
    return list(
        ContentItem.objects.filter(status__in=VISIBLE_CONTENT)
        .select_related("outlet")
        .order_by("-published_at", "-pk")[:limit]
    )


def item_held_elsewhere(*, content_item_id: int, case_id: int) -> bool:
    """Another case keeps this item down, or is taking it down right now."""
    return (
        Target.objects.filter(content_item_id=content_item_id)
        .exclude(case_id=case_id)
        .filter(
            Q(state__in=[TargetState.DISABLED, TargetState.REMOVED])
            | Q(state=TargetState.PENDING, case__state__in=[CaseState.APPROVED, CaseState.REMOVING])
        )
        .exists()
    )


def domain_held_elsewhere(*, domain: str, case_id: int) -> bool:
    """Another whole-domain case for `domain` has removed it, or is removing it now."""
    return (
        TakedownRequest.objects.filter(
            whole_domain=domain,
            state__in=[CaseState.REMOVED, CaseState.APPROVED, CaseState.REMOVING],
        )
        .exclude(pk=case_id)
        .exists()
    )


def staff_user(username: str) -> AbstractBaseUser | None:
    """An active staff account, by username: who a decision from the command line is by."""
    return get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()


def cases_visible_to(viewer: Viewer) -> QuerySet[TakedownRequest]:
    """The cases `viewer` may see, scoped by construction: a partner its outlet's, a requester
    their own, staff all. Every read of cases for a door starts here."""
    cases = TakedownRequest.objects.all()
    if viewer.kind == ViewerKind.STAFF:
        return cases
    # A viewer without its outlet or requester sees nothing (never "cases without one").
    if viewer.kind == ViewerKind.PARTNER and viewer.outlet_id is not None:
        return cases.filter(outlet_id=viewer.outlet_id)
    if viewer.kind == ViewerKind.REQUESTER and viewer.requester_id is not None:
        return cases.filter(requester_id=viewer.requester_id)
    return cases.none()


def case_for(*, viewer: Viewer, reference: str) -> tuple[TakedownRequest, list[Target]] | None:
    """One case `viewer` may see, with its targets and their items (two queries whatever the
    size), or None: another outlet's or another requester's case does not exist for them.
    Nor does a reference no case can have (too long, or with a NUL, which PostgreSQL refuses)."""
    return cases_for(viewer=viewer, references=[reference]).get(reference.strip().upper())


def cases_for(
    *, viewer: Viewer, references: Sequence[str]
) -> dict[str, tuple[TakedownRequest, list[Target]]]:
    """`case_for` for many references, in the same two queries: by reference (upper case), the
    cases `viewer` may see; the others are absent."""
    wanted = {reference.strip().upper() for reference in references}
    wanted = {r for r in wanted if r and len(r) <= REFERENCE_MAX and "\x00" not in r}
    if not wanted:
        return {}
    cases = (
        cases_visible_to(viewer)
        .select_related("requester", "outlet")
        .prefetch_related(
            Prefetch(
                "targets",
                queryset=Target.objects.select_related("content_item").order_by("id"),
            )
        )
        .filter(reference__in=wanted)
    )
    return {case.reference: (case, list(case.targets.all())) for case in cases}


def case_by_status_link(reference: str) -> tuple[Viewer, TakedownRequest, list[Target]] | None:
    """The case a requester's secret status link names, shown as that case's requester sees it.

    The verified link is the requester's proof of access (links.reference_from_status_token):
    it scopes the read to this one case and its own requester.
    """
    owner = TakedownRequest.objects.filter(reference=reference).values_list(
        "requester_id", flat=True
    )
    requester_id = owner.first()
    if requester_id is None:
        return None
    viewer = Viewer(ViewerKind.REQUESTER, requester_id=requester_id)
    found = case_for(viewer=viewer, reference=reference)
    return (viewer, *found) if found is not None else None


def cases_with_targets(
    *, viewer: Viewer, state: str | None = None, updated_since: datetime | None = None
) -> QuerySet[TakedownRequest]:
    """The cases `viewer` may see, newest received first, each with its targets and their items
    prefetched (a page of any size is three queries); optionally in one state, or changed since
    a moment (a partner's sync)."""
    cases = cases_visible_to(viewer)
    if state is not None:
        cases = cases.filter(state=state)
    if updated_since is not None:
        cases = cases.filter(updated_at__gte=updated_since)
    # The requester's row too: whether a decision can still be appealed depends on it.
    return (
        cases.select_related("requester", "outlet")
        .prefetch_related(
            Prefetch(
                "targets", queryset=Target.objects.select_related("content_item").order_by("id")
            )
        )
        .order_by("-received_at", "-pk")
    )


def case_summaries(*, viewer: Viewer, open_only: bool = False) -> QuerySet[CaseSummary]:
    """The cases `viewer` may see, newest first, with each one's `target_count` (one query)."""
    cases = cases_visible_to(viewer)
    if open_only:
        cases = cases.exclude(state__in=CLOSED_CASE_STATES)
    return cases.annotate(target_count=Count("targets")).order_by("-received_at", "-pk")


@dataclass(frozen=True)
class SlaStatus:
    database: bool
    broker: bool
    sweeper_last_run: datetime | None
    sweeper_lag_seconds: float | None
    sweep_interval_seconds: float
    oldest_open_deadline: datetime | None
    open_cases: int
    due_now: int
    unsent_notifications: int
    breaches: int
    dead_effects: int = 0
    # Partner webhook deliveries given up on (rights.services.webhooks): the partner's endpoint,
    # not the promise, so they are shown, not counted as needing attention.
    dead_webhooks: int = 0

    @property
    def healthy(self) -> bool:
        """Database and broker answer, and the sweeper ran within a few intervals: the service
        itself works. What only a person can fix is `needs_attention`, apart, so that a load
        balancer reading /healthz never takes working web servers out of rotation for it."""
        return (
            self.database
            and self.broker
            and self.sweeper_lag_seconds is not None
            and self.sweeper_lag_seconds <= max(3 * self.sweep_interval_seconds, 15.0)
        )

    @property
    def needs_attention(self) -> bool:
        """A removal effect is a dead letter: the CMS refused it for good, staff must act."""
        return self.dead_effects > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": (
                "degraded" if not self.healthy else "attention" if self.needs_attention else "ok"
            ),
            "database": "ok" if self.database else "down",
            "broker": "ok" if self.broker else "down",
            "sweeper": {
                "last_run_at": self.sweeper_last_run.isoformat() if self.sweeper_last_run else None,
                "lag_seconds": (
                    round(self.sweeper_lag_seconds, 3)
                    if self.sweeper_lag_seconds is not None
                    else None
                ),
                "interval_seconds": self.sweep_interval_seconds,
            },
            "oldest_open_deadline": (
                self.oldest_open_deadline.isoformat() if self.oldest_open_deadline else None
            ),
            "open_cases": self.open_cases,
            "due_now": self.due_now,
            "unsent_notifications": self.unsent_notifications,
            "breaches": self.breaches,
            "dead_effects": self.dead_effects,
            "dead_webhooks": self.dead_webhooks,
        }


def _broker_answers() -> bool:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        return bool(client.ping())
    except (redis.RedisError, ValueError):  # down, or REDIS_URL malformed
        return False


# Cases that still need someone or something: the clock is running, or the fail-safe disabled
# the content and a decision is still owed.
AWAITING_OUTCOME_STATES = CLOCK_RUNNING_STATES | {CaseState.DISABLED_PENDING_REVIEW}


def sla_status() -> SlaStatus:
    """The figures an operator needs at 3 a.m.; every count is served by an index."""
    try:
        now = clock.now()
        running = TakedownRequest.objects.filter(state__in=CLOCK_RUNNING_STATES)
        # Open: racing a deadline, or disabled by the fail-safe and still waiting for a decision.
        open_cases = TakedownRequest.objects.filter(state__in=AWAITING_OUTCOME_STATES).count()
        oldest = running.aggregate(at=Min("deadline_at"))["at"]
        due_now = TakedownRequest.objects.filter(next_check_at__lte=now).count()
        # Still owed: a dead webhook delivery (no next attempt) waits for staff, not the sweeper.
        unsent = Notification.objects.filter(
            sent_at__isnull=True, next_attempt_at__isnull=False
        ).count()
        dead_webhooks = WebhookDelivery.objects.filter(state=WebhookDeliveryState.DEAD).count()
        breaches = LadderRung.objects.filter(rung=Rung.BREACH).count()
        dead = RemovalEffect.objects.filter(dead_at__isnull=False, done_at__isnull=True).count()
        heartbeat = SweeperRun.objects.filter(name="sweeper").first()
        database = True
    except DatabaseError:
        now = timezone.now()
        open_cases = due_now = unsent = breaches = dead = dead_webhooks = 0
        oldest = None
        heartbeat = None
        database = False
    last_run = heartbeat.last_run_at if heartbeat is not None else None
    return SlaStatus(
        database=database,
        broker=_broker_answers(),
        sweeper_last_run=last_run,
        sweeper_lag_seconds=(now - last_run).total_seconds() if last_run else None,
        sweep_interval_seconds=settings.SWEEP_INTERVAL,
        oldest_open_deadline=oldest,
        open_cases=open_cases,
        due_now=due_now,
        unsent_notifications=unsent,
        breaches=breaches,
        dead_effects=dead,
        dead_webhooks=dead_webhooks,
    )


# --- The SLA dashboard ------------------------------------------------------------------------
#
# Every figure is aggregated in the database, so the page costs the same few queries whether
# the service holds ten cases or ten million (tests/integration/test_sla_dashboard.py counts).

# Open cases by time to their deadline: (label, upper bound); the last bucket has none.
DEADLINE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("overdue", timedelta(0)),
    ("under 2 h", timedelta(hours=2)),
    ("2-4 h", timedelta(hours=4)),
    ("4-12 h", timedelta(hours=12)),
    ("12-24 h", timedelta(hours=24)),
    ("later", None),
)
SLA_DAYS = 14
LATENCY_WINDOWS = (7, 30)


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(f) WITHIN GROUP (ORDER BY x)`: the continuous percentile,
    interpolated between the two nearest values (as `_percentile` computes it elsewhere)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction is between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def _percentile(values: list[float], fraction: float) -> float | None:
    """The continuous percentile of `values`, as PostgreSQL's percentile_cont computes it."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Latency:
    """Time from the clock's start to the outcome, for cases whose outcome fell in a window."""

    days: int
    cases: int
    median: timedelta | None
    p95: timedelta | None


@dataclass(frozen=True)
class OldestOpen:
    pk: int
    reference: str
    state: str
    clock_started_at: datetime | None
    deadline_at: datetime | None


@dataclass(frozen=True)
class SlaDashboard:
    now: datetime
    today: date
    days: list[date]  # the last SLA_DAYS days, oldest first, today last
    # (label, count) in DEADLINE_BUCKETS order: cases whose clock is running
    deadline_buckets: list[tuple[str, int]]
    # disabled by the fail-safe, the deadline met, a decision still owed
    disabled_pending_review: int
    channels: list[tuple[str, str]]  # (value, label), in Channel order
    received: dict[date, dict[str, int]]  # day -> channel -> cases whose clock started
    rungs: dict[date, dict[str, int]]  # day -> "failsafe"/"breach" -> rungs fired
    latency: list[Latency]
    oldest_open: OldestOpen | None
    closed_today: int

    @property
    def open_cases(self) -> int:
        return sum(count for _label, count in self.deadline_buckets)

    @property
    def overdue(self) -> int:
        return self.deadline_buckets[0][1]

    @property
    def received_today(self) -> int:
        return sum(self.received[self.today].values())

    @property
    def failsafes_today(self) -> int:
        return self.rungs[self.today][Rung.FAILSAFE]

    @property
    def breaches_today(self) -> int:
        return self.rungs[self.today][Rung.BREACH]


def _deadline_buckets(now: datetime) -> list[tuple[str, int]]:
    aggregates: dict[str, Any] = {}
    lower: timedelta | None = None
    for n, (_label, upper) in enumerate(DEADLINE_BUCKETS):
        window = Q()
        if lower is not None:
            window &= Q(deadline_at__gte=now + lower)
        if upper is not None:
            window &= Q(deadline_at__lt=now + upper)
        aggregates[f"b{n}"] = Count("pk", filter=window)
        lower = upper
    counts = TakedownRequest.objects.filter(
        state__in=CLOCK_RUNNING_STATES, deadline_at__isnull=False
    ).aggregate(**aggregates)
    return [(label, counts[f"b{n}"]) for n, (label, _upper) in enumerate(DEADLINE_BUCKETS)]


def _case_outcomes() -> QuerySet[Any]:  # annotated with outcome_at
    """First-round cases with a clock that reached an outcome, each with `outcome_at`: when
    its last target had one, or, for a case without targets, when it closed. A withdrawn case
    has no outcome of ours; an appeal runs a clock of its own and is left out."""
    targets = Target.objects.filter(case=OuterRef("pk")).order_by()
    last_outcome = targets.values("case").annotate(at=Max("outcome_at")).values("at")
    return (
        TakedownRequest.objects.filter(clock_started_at__isnull=False, appeal_round=0)
        .exclude(state__in=[CaseState.WITHDRAWN, CaseState.EXPIRED])
        .annotate(
            has_targets=Exists(targets),
            waiting=Exists(targets.exclude(state__in=TARGET_OUTCOMES)),
            last_outcome=Subquery(last_outcome, output_field=DateTimeField()),
        )
        .filter(waiting=False)
        .annotate(
            outcome_at=DbCase(
                When(has_targets=True, then=F("last_outcome")),
                default=F("closed_at"),
                output_field=DateTimeField(),
            )
        )
        .filter(outcome_at__isnull=False)
    )


def _latencies(now: datetime) -> list[Latency]:
    outcomes = _case_outcomes()
    windows = {days: Q(outcome_at__gte=now - timedelta(days=days)) for days in LATENCY_WINDOWS}
    if connection.vendor == "postgresql":
        taken = ExpressionWrapper(
            F("outcome_at") - F("clock_started_at"), output_field=DurationField()
        )
        aggregates: dict[str, Any] = {}
        for days, window in windows.items():
            aggregates[f"n{days}"] = Count("pk", filter=window)
            aggregates[f"median{days}"] = PercentileCont(
                taken, fraction=0.5, filter=window, output_field=DurationField()
            )
            aggregates[f"p95_{days}"] = PercentileCont(
                taken, fraction=0.95, filter=window, output_field=DurationField()
            )
        row = outcomes.aggregate(**aggregates)
        return [
            Latency(days, row[f"n{days}"], row[f"median{days}"], row[f"p95_{days}"])
            for days in LATENCY_WINDOWS
        ]
    # SQLite has no percentile_cont: the widest window's durations, one query, in Python.
    widest = max(LATENCY_WINDOWS)
    rows: list[tuple[datetime, datetime]] = list(
        outcomes.filter(windows[widest]).values_list("clock_started_at", "outcome_at")
    )
    spans = [(outcome_at, (outcome_at - started).total_seconds()) for started, outcome_at in rows]
    result = []
    for days in LATENCY_WINDOWS:
        since = now - timedelta(days=days)
        seconds = [taken for outcome_at, taken in spans if outcome_at >= since]
        median, p95 = _percentile(seconds, 0.5), _percentile(seconds, 0.95)
        result.append(
            Latency(
                days,
                len(seconds),
                timedelta(seconds=median) if median is not None else None,
                timedelta(seconds=p95) if p95 is not None else None,
            )
        )
    return result


def sla_dashboard(*, now: datetime | None = None) -> SlaDashboard:
    """What a lead reads at a glance: the open cases against their deadlines, the intake and
    the ladder's fail-safes and breaches per day, time to outcome, and the oldest open case.
    Seven queries, whatever the number of cases."""
    now = now if now is not None else clock.now()
    zone = timezone.get_current_timezone()
    today = timezone.localtime(now, zone).date()
    days = [today - timedelta(days=n) for n in range(SLA_DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], time.min, tzinfo=zone)

    channels = [(str(value), str(label)) for value, label in Channel.choices]
    received: dict[date, dict[str, int]] = {day: dict.fromkeys(Channel.values, 0) for day in days}
    for day, channel, count in (
        TakedownRequest.objects.filter(clock_started_at__gte=since)
        .annotate(day=TruncDate("clock_started_at", tzinfo=zone))
        .values("day", "channel")
        .annotate(n=Count("pk"))
        .values_list("day", "channel", "n")
        .order_by()
    ):
        if day in received:
            received[day][channel] = received[day].get(channel, 0) + count

    shown_rungs = [Rung.FAILSAFE, Rung.BREACH]
    rungs: dict[date, dict[str, int]] = {day: dict.fromkeys(shown_rungs, 0) for day in days}
    for day, rung, count in (
        LadderRung.objects.filter(fired_at__gte=since, rung__in=shown_rungs)
        .annotate(day=TruncDate("fired_at", tzinfo=zone))
        .values("day", "rung")
        .annotate(n=Count("pk"))
        .values_list("day", "rung", "n")
        .order_by()
    ):
        if day in rungs:
            rungs[day][rung] += count

    oldest = (
        TakedownRequest.objects.filter(state__in=AWAITING_OUTCOME_STATES)
        .order_by(F("clock_started_at").asc(nulls_last=True), "pk")
        .values_list("pk", "reference", "state", "clock_started_at", "deadline_at")
        .first()
    )
    return SlaDashboard(
        now=now,
        today=today,
        days=days,
        deadline_buckets=_deadline_buckets(now),
        disabled_pending_review=TakedownRequest.objects.filter(
            state=CaseState.DISABLED_PENDING_REVIEW
        ).count(),
        channels=channels,
        received=received,
        rungs=rungs,
        latency=_latencies(now),
        oldest_open=OldestOpen(*oldest) if oldest is not None else None,
        closed_today=TakedownRequest.objects.filter(
            closed_at__gte=datetime.combine(today, time.min, tzinfo=zone)
        ).count(),
    )
