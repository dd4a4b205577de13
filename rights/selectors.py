"""Read queries. Writes live in rights.services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import DatabaseError
from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from rights import clock
from rights.deadlines import Rung
from rights.models import (
    ContentItem,
    LadderRung,
    Notification,
    RemovalEffect,
    SweeperRun,
    TakedownRequest,
    Target,
)
from rights.presenters import Viewer, ViewerKind
from rights.states import (
    CLOCK_RUNNING_STATES,
    CLOSED_CASE_STATES,
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
    size), or None: another outlet's or another requester's case does not exist for them."""
    case = (
        cases_visible_to(viewer)
        .select_related("requester", "outlet")
        .prefetch_related(
            Prefetch(
                "targets",
                queryset=Target.objects.select_related("content_item").order_by("id"),
            )
        )
        .filter(reference=reference.strip().upper())
        .first()
    )
    return (case, list(case.targets.all())) if case is not None else None


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
        unsent = Notification.objects.filter(sent_at__isnull=True).count()
        breaches = LadderRung.objects.filter(rung=Rung.BREACH).count()
        dead = RemovalEffect.objects.filter(dead_at__isnull=False, done_at__isnull=True).count()
        heartbeat = SweeperRun.objects.filter(name="sweeper").first()
        database = True
    except DatabaseError:
        now = timezone.now()
        open_cases = due_now = unsent = breaches = dead = 0
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
    )
