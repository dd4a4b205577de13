"""The SLA dashboard (/admin/sla/): who may see it, its figures against a known set of cases,
and a query count that does not grow with the number of cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rights import selectors
from rights.models import Channel, LadderRung, TakedownRequest
from rights.states import CaseState, TargetState
from tests.factories import TakedownRequestFactory, TargetFactory
from tests.integration.test_review_queue import staff_in

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SLA = "/admin/sla/"


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def open_case(left: timedelta, *, started: datetime | None = None, **fields: Any) -> Any:
    started = started if started is not None else NOW - timedelta(hours=1)
    case = TakedownRequestFactory.create(
        received_at=started, clock_started_at=started, deadline_at=NOW + left, **fields
    )
    TargetFactory.create(case=case)
    return case


def decided_case(started: datetime, took: timedelta, **fields: Any) -> Any:
    """A case whose every target had its outcome `took` after the clock started."""
    case = TakedownRequestFactory.create(
        received_at=started,
        clock_started_at=started,
        state=CaseState.REMOVED,
        closed_at=started + took + timedelta(minutes=5),
        **fields,
    )
    TargetFactory.create(case=case, state=TargetState.REMOVED, outcome_at=started + took)
    TargetFactory.create(
        case=case, state=TargetState.REJECTED, outcome_at=started + took - timedelta(minutes=30)
    )
    return case


def rung(case: Any, name: str, fired_at: datetime) -> None:
    LadderRung.objects.create(
        case=case, rung=name, round=0, fired_at=fired_at, due_at=fired_at, pending_targets=1
    )


@pytest.fixture
def world(db: None, frozen: Any) -> dict[str, Any]:
    """Six open cases, one per bucket; four decided; one disabled by the fail-safe; rungs."""
    cases = {
        "overdue": open_case(-timedelta(minutes=30), started=NOW - timedelta(hours=30)),
        "under 2 h": open_case(timedelta(minutes=90), channel=Channel.WEB),
        "2-4 h": open_case(timedelta(hours=3), channel=Channel.API),
        "4-12 h": open_case(timedelta(hours=4)),  # 4 h exactly is in 4-12 h
        "12-24 h": open_case(timedelta(hours=23)),
        "later": open_case(timedelta(hours=30), state=CaseState.APPEALED),
    }
    two_days_ago = NOW - timedelta(days=2)
    decided = [
        decided_case(two_days_ago, timedelta(hours=1)),
        decided_case(two_days_ago, timedelta(hours=2), channel=Channel.API),
        decided_case(two_days_ago, timedelta(hours=3)),
        decided_case(NOW - timedelta(days=20), timedelta(hours=10)),
    ]
    # Left out of the time to outcome: a withdrawal is no outcome of ours, a URL still open
    # means no outcome yet, and an appeal has a clock of its own.
    withdrawn = TakedownRequestFactory.create(
        received_at=two_days_ago,
        clock_started_at=two_days_ago,
        state=CaseState.WITHDRAWN,
        closed_at=two_days_ago + timedelta(hours=20),
    )
    partial = decided_case(two_days_ago, timedelta(hours=20))
    TargetFactory.create(case=partial, state=TargetState.PENDING)
    decided_case(two_days_ago, timedelta(hours=40), appeal_round=1)
    disabled = open_case(-timedelta(hours=2), state=CaseState.DISABLED_PENDING_REVIEW)
    # Never confirmed: no clock, not received.
    TakedownRequestFactory.create(
        state=CaseState.AWAITING_CONFIRMATION,
        channel=Channel.WEB,
        clock_started_at=None,
        deadline_at=None,
        deadline_seconds=None,
    )
    rung(cases["overdue"], "failsafe", NOW - timedelta(hours=2))
    rung(disabled, "failsafe", NOW - timedelta(hours=3))
    rung(cases["overdue"], "breach", NOW - timedelta(minutes=30))
    rung(cases["overdue"], "reminder", NOW - timedelta(hours=10))  # not shown
    rung(decided[0], "failsafe", NOW - timedelta(days=1))
    rung(decided[3], "breach", NOW - timedelta(days=19))  # outside the 14 days
    return {"cases": cases, "decided": decided, "withdrawn": withdrawn, "disabled": disabled}


# --- Who may see it ---------------------------------------------------------------------------


def test_reviewer_is_refused_and_a_lead_sees_the_dashboard(db: None) -> None:
    reviewer, lead = staff_in("reviewer", "rita"), staff_in("lead", "leah")
    assert reverse("admin:rights_sla_dashboard") == SLA
    assert login(reviewer).get(SLA).status_code == 403
    response = login(lead).get(SLA)
    assert response.status_code == 200
    assert b'data-testid="sla-dashboard"' in response.content


def test_anonymous_and_plain_staff_are_turned_away(db: None) -> None:
    response = Client().get(SLA)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    plain = User.objects.create_user("plain", is_staff=True)
    assert login(plain).get(SLA).status_code == 403


def test_the_front_page_links_leads_to_it(db: None) -> None:
    index = reverse("admin:index")
    assert SLA.encode() in login(staff_in("lead", "leah")).get(index).content
    assert SLA.encode() not in login(staff_in("reviewer", "rita")).get(index).content


# --- The figures ------------------------------------------------------------------------------


def test_open_cases_by_time_to_deadline(world: dict[str, Any]) -> None:
    figures = selectors.sla_dashboard()
    assert figures.deadline_buckets == [
        ("overdue", 1),
        ("under 2 h", 1),
        ("2-4 h", 1),
        ("4-12 h", 1),
        ("12-24 h", 1),
        ("later", 1),
    ]
    assert figures.open_cases == 6
    assert figures.overdue == 1
    assert figures.disabled_pending_review == 1


def test_received_per_day_by_channel(world: dict[str, Any]) -> None:
    figures = selectors.sla_dashboard()
    today, yesterday = date(2026, 3, 10), date(2026, 3, 9)
    assert figures.days[-1] == today
    assert len(figures.days) == 14
    assert figures.days[0] == date(2026, 2, 25)
    # Today: five open cases and the disabled one (clock started an hour ago).
    assert figures.received[today] == {"web": 1, "email": 4, "api": 1, "staff": 0}
    assert figures.received_today == 6
    # The overdue case's clock started 30 h ago.
    assert figures.received[yesterday] == {"web": 0, "email": 1, "api": 0, "staff": 0}
    # Two days ago: three decided, the withdrawn, the partial and the appealed ones.
    assert figures.received[date(2026, 3, 8)] == {"web": 0, "email": 5, "api": 1, "staff": 0}
    assert sum(sum(day.values()) for day in figures.received.values()) == 13  # not 20 days ago


def test_fail_safes_and_breaches_per_day(world: dict[str, Any]) -> None:
    figures = selectors.sla_dashboard()
    assert figures.rungs[date(2026, 3, 10)] == {"failsafe": 2, "breach": 1}
    assert figures.rungs[date(2026, 3, 9)] == {"failsafe": 1, "breach": 0}
    assert figures.failsafes_today == 2
    assert figures.breaches_today == 1
    assert sum(day["breach"] for day in figures.rungs.values()) == 1


def test_time_from_receipt_to_outcome(world: dict[str, Any]) -> None:
    week, month = selectors.sla_dashboard().latency
    # 1 h, 2 h, 3 h in the last week (the last target's outcome, not the close five minutes on).
    assert (week.days, week.cases) == (7, 3)
    assert week.median == timedelta(hours=2)
    assert week.p95 == timedelta(hours=2, minutes=54)  # 2 + 0.9 x (3 - 2), interpolated
    # And 10 h twenty days ago.
    assert (month.days, month.cases) == (30, 4)
    assert month.median == timedelta(hours=2, minutes=30)
    assert month.p95 == timedelta(hours=8, minutes=57)  # 3 + 0.85 x (10 - 3)


def test_the_oldest_open_case(world: dict[str, Any]) -> None:
    oldest = selectors.sla_dashboard().oldest_open
    assert oldest is not None
    assert oldest.reference == world["cases"]["overdue"].reference


def test_the_page_shows_the_figures_with_charts_and_tables(world: dict[str, Any]) -> None:
    response = login(staff_in("lead", "leah")).get(SLA)
    html = response.content.decode()
    overdue = world["cases"]["overdue"]
    change = reverse("admin:rights_takedownrequest_change", args=[overdue.pk])
    assert f'<a href="{change}">{overdue.reference}</a>' in html
    assert "overdue by 30 min" in html
    assert '<td data-testid="closed-today">1</td>' in html  # the appeal-round one, at 04:05
    assert '<td data-testid="failsafes-today">2</td>' in html
    assert "<td>2 h 0 min</td><td>2 h 54 min</td>" in html
    # Three charts, each named for assistive technology, each followed by its table.
    assert html.count('<svg role="img" aria-labelledby=') == 3
    for table in ["table-deadlines", "table-received", "table-ladder", "table-latency"]:
        assert f'data-testid="{table}"' in html
    # The Content Security Policy allows no inline style or script.
    assert " style=" not in html.split('id="content-main"', 1)[1]
    assert "<script>" not in html


def test_an_empty_service(db: None, frozen: Any) -> None:
    figures = selectors.sla_dashboard()
    assert figures.open_cases == 0
    assert figures.oldest_open is None
    assert [row.median for row in figures.latency] == [None, None]
    response = login(staff_in("lead", "leah")).get(SLA)
    assert b"No case is open." in response.content


# --- Queries ----------------------------------------------------------------------------------


def _many(count: int) -> None:
    for n in range(count):
        started = NOW - timedelta(hours=n % 200)
        if n % 3:
            case = open_case(timedelta(hours=(n % 30) - 3), started=started)
        else:
            case = decided_case(started - timedelta(days=1), timedelta(hours=1 + n % 5))
        if n % 4 == 0:
            rung(case, "failsafe", started)


def _page_queries(client: Client) -> int:
    client.get(SLA)  # warm the session and permission caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(SLA)
    assert response.status_code == 200
    return len(queries)


def test_the_query_count_does_not_grow_with_the_cases(db: None, frozen: Any) -> None:
    client = login(staff_in("lead", "leah"))
    _many(10)
    few = _page_queries(client)
    _many(90)
    assert TakedownRequest.objects.count() == 100
    assert _page_queries(client) == few
    with CaptureQueriesContext(connection) as queries:
        selectors.sla_dashboard()
    assert len(queries) == 7
