"""The public transparency report (/transparency/, its CSV and JSON): figures checked against a
fixture computed by hand, small counts withheld, a fixed number of queries, and nothing that
could identify anyone (planted markers appear nowhere)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from rights import audit
from rights.models import LadderRung, Measure, StatementOfReasons, TakedownRequest
from rights.selectors_transparency import _withheld, transparency_report
from rights.states import CaseState, TargetState
from rights.web.transparency import cache_key, report_page
from tests.factories import TakedownRequestFactory, TargetFactory
from tests.integration.test_sor_export import every_kind

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _report_settings(settings: Any) -> None:
    settings.TRANSPARENCY_MIN_COUNT = 3
    settings.TRANSPARENCY_CACHE_SECONDS = 0


def case(
    start: datetime,
    *,
    channel: str = "email",
    basis: str = "copyright",
    outcome: str = TargetState.REMOVED,
    hours: float = 1,
    state: str = CaseState.REMOVED,
) -> TakedownRequest:
    made: TakedownRequest = TakedownRequestFactory.create(
        channel=channel,
        basis=basis,
        statements=[] if not basis else ["accurate"],
        received_at=start,
        state=state,
        closed_at=start + hours * H,
    )
    TargetFactory.create(case=made, state=outcome, outcome_at=start + hours * H)
    return made


def fixture() -> dict[str, TakedownRequest]:
    """October 2026: six requests; September 2026: two; appeals and a suspension in November.
    Every expected figure below is worked out by hand from these."""
    oct1 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
    made = {
        "c1": case(oct1, hours=1),
        "c2": case(oct1, hours=2),
        "c3": case(oct1, outcome=TargetState.REJECTED, hours=3, state=CaseState.REJECTED),
        "c4": case(oct1, hours=30),  # late: its deadline was 24 hours
        "c5": case(
            oct1,
            channel="web",
            basis="privacy",
            outcome=TargetState.DISABLED,
            hours=4,
            state=CaseState.DISABLED_PENDING_REVIEW,
        ),
        "c6": case(
            oct1,
            channel="staff",
            basis="",
            outcome=TargetState.NOT_FOUND,
            hours=0,
            state="not_found",
        ),
    }
    sep = datetime(2026, 9, 20, 9, 0, tzinfo=UTC)
    made["s1"] = case(sep, channel="api", hours=1)
    made["s2"] = case(sep, channel="api", hours=5)
    for key, rung, at in (("c5", "failsafe", oct1 + 22 * H), ("c4", "breach", oct1 + 24 * H)):
        LadderRung.objects.create(
            case=made[key], rung=rung, fired_at=at, due_at=at, pending_targets=1
        )
    nov = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)

    def sor(key: str, round: int, measure: str, at: datetime) -> None:
        StatementOfReasons.objects.create(
            case=made[key],
            round=round,
            measure=measure,
            scope=[],
            ground="copyright",
            facts="f",
            reasons="r",
            redress="x",
            decided_at=at,
        )

    # c3 refused, appealed, then granted: reversed. c1 removed, appealed, upheld: not reversed.
    sor("c3", 0, Measure.NO_ACTION, oct1 + 3 * H)
    sor("c3", 1, Measure.REMOVAL, nov)
    sor("c1", 0, Measure.REMOVAL, oct1 + H)
    sor("c1", 1, Measure.REMOVAL, nov)
    TakedownRequest.objects.filter(pk__in=[made["c1"].pk, made["c3"].pk]).update(
        appealed_at=nov - 24 * H
    )
    with time_machine.travel(datetime(2026, 11, 5, tzinfo=UTC), tick=False):
        audit.append(stream="requester:1", actor="staff:1", action="requester.suspended")
    return made


def test_withheld_counts_cannot_be_worked_back() -> None:
    assert _withheld({"a": 1, "b": 10, "c": 7}, ["a", "b", "c", "d"], 18, 5) == {
        "a": None,
        "b": 10,
        "c": None,  # the next smallest too, or 18 - 10 - 7 would give "a" back
        "d": 0,
    }
    assert _withheld({"a": 1, "b": 2}, ["a", "b"], 3, 5) is None  # too few to break down
    assert _withheld({"a": 6, "b": 9}, ["a", "b"], 15, 5) == {"a": 6, "b": 9}


@pytest.mark.smoke
def test_the_figures_are_those_worked_out_by_hand() -> None:
    fixture()
    report = transparency_report(now=NOW)
    months = {f.period.key: f for f in report.months}
    halves = {f.period.key: f for f in report.halves}
    assert [f.period.key for f in report.months][:3] == ["2026-11", "2026-10", "2026-09"]
    assert report.months[-1].period.key == "2025-07"  # from the start of a whole half-year
    assert list(halves) == ["2026-H2", "2026-H1", "2025-H2"]

    october = months["2026-10"]
    assert october.received == 6
    assert october.by_door == {"web": None, "email": 4, "api": 0, "staff": None}
    assert october.by_basis == {
        "copyright": 4,
        "privacy": None,
        "defamation": 0,
        "other": 0,
        "none": None,
    }
    assert october.urls == 6
    assert october.outcomes == {
        "removed": 3,
        "disabled": None,
        "rejected": None,
        "restored": 0,
        "not_found": None,
    }
    # Hours to outcome 0, 1, 2, 3, 4, 30: median 2.5 h, p95 4 + 26 * 0.75 = 23.5 h.
    assert october.decided == 6
    assert october.met_deadline == 5
    assert october.median == 2.5 * H
    assert october.p95 == 23.5 * H
    assert (october.failsafes, october.breaches) == (1, 1)

    september = months["2026-09"]
    assert september.received == 2
    assert september.by_door is None  # fewer than 3: not broken down
    assert september.outcomes is None
    assert september.decided == 2
    assert (september.met_deadline, september.median, september.p95) == (None, None, None)

    november = months["2026-11"]
    assert november.received == 0
    # Two appeals, two decided, one reversal, one suspension: each below 3, withheld.
    assert (november.appeals, november.appeal_decisions, november.reversals) == (None,) * 3
    assert november.suspensions is None

    half = halves["2026-H2"]
    assert half.received == 8
    # September's two requests are not broken down, so neither is any cell of the half-year:
    # the half-year's less October's would give September's back.
    assert half.by_door == dict.fromkeys(["web", "email", "api", "staff"])
    assert half.outcomes == dict.fromkeys(
        ["removed", "disabled", "rejected", "restored", "not_found"]
    )
    # Hours 0, 1, 1, 2, 3, 4, 5, 30: median 2.5 h; p95 at 6.65: 5 + 25 * 0.65 = 21.25 h. The
    # share that met the deadline is withheld: September's (two decided) would follow from it.
    assert (half.decided, half.met_deadline) == (8, None)
    assert half.median == 2.5 * H
    assert half.p95 == 21.25 * H
    # Fail-safes and breaches are shown exactly (our own keeping of the promise).
    assert (half.failsafes, half.breaches, half.appeals, half.reversals) == (1, 1, None, None)
    assert halves["2026-H1"].received == 0


def test_a_month_withheld_cell_cannot_be_worked_back_from_its_half_year(settings: Any) -> None:
    """The reviewer's case, threshold 5: privacy requests October 6, November 3, the half-year
    9. November's 3 is withheld, so the half-year's 9 must be too (9 - 6 = 3)."""
    settings.TRANSPARENCY_MIN_COUNT = 5
    october = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
    november = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    for _ in range(6):
        case(october, basis="privacy")
    for _ in range(3):
        case(november, basis="privacy")
    for _ in range(5):
        case(november, basis="copyright")
    report = transparency_report(now=NOW)
    months = {f.period.key: f for f in report.months}
    half = next(f for f in report.halves if f.period.key == "2026-H2")
    assert months["2026-10"].by_basis is not None
    assert months["2026-10"].by_basis["privacy"] == 6
    nov = months["2026-11"].by_basis
    assert nov is not None
    assert nov["privacy"] is None
    assert nov["copyright"] is None  # the next smallest, or 8 - 5 would give privacy back
    assert half.by_basis is not None
    assert half.by_basis["privacy"] is None
    assert half.by_basis["copyright"] is None
    assert half.by_basis["defamation"] == 0
    # In general: no cell of the half-year is shown that a month withholds.
    for name in ("by_door", "by_basis", "outcomes"):
        shown = getattr(half, name) or {}
        for month in (m for m in report.months if m.period.key in ("2026-10", "2026-11")):
            cells = getattr(month, name)
            for key, value in shown.items():
                if value is not None:
                    assert cells is not None
                    assert cells[key] is not None, (name, key)


def test_one_request_for_many_urls_is_not_broken_down(settings: Any) -> None:
    settings.TRANSPARENCY_MIN_COUNT = 5
    one = case(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))
    for _ in range(24):
        TargetFactory.create(case=one, state=TargetState.REMOVED, outcome_at=one.closed_at)
    report = transparency_report(now=NOW)
    may = next(f for f in report.months if f.period.key == "2026-05")
    assert (may.received, may.urls) == (1, 25)
    assert may.outcomes is None
    assert next(f for f in report.halves if f.period.key == "2026-H1").outcomes is None


def test_a_fixed_number_of_queries_whatever_the_number_of_cases() -> None:
    fixture()
    with CaptureQueriesContext(connection) as few:
        transparency_report(now=NOW)
    start = datetime(2026, 8, 1, tzinfo=UTC)
    for n in range(40):
        case(start + n * H, channel=["web", "email", "api"][n % 3], hours=n % 7)
    with CaptureQueriesContext(connection) as many:
        transparency_report(now=NOW)
    assert len(few) == len(many) == 7


@pytest.mark.smoke
def test_the_page_and_its_downloads(client: Client) -> None:
    fixture()
    with time_machine.travel(NOW, tick=False):
        # The view itself, counted before the test client's requests reset the log.
        with CaptureQueriesContext(connection) as queries:
            report_page(RequestFactory().get("/transparency/"))
        assert len(queries) == 7  # the report's, and nothing more for the page
        page = client.get("/transparency/")
        data = client.get("/transparency/report.json")
        table = client.get("/transparency/report.csv")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Transparency report" in html
    assert "withheld" in html
    # The promise comes first: the headline share, then the breakdowns.
    assert html.index('data-testid="headline-month"') < html.index('data-testid="months-doors"')
    assert "of requests met the" in html
    assert "<text x" in html
    assert ">2026</text>" in html  # the charts' axes name the year
    assert "<svg" in html
    assert "style=" not in html  # the Content Security Policy allows no inline style
    assert "<script>" not in html

    assert data.status_code == 200
    body = json.loads(data.content)
    october = next(m for m in body["months"] if m["period"] == "2026-10")
    assert october["received"] == 6
    assert october["received_by_door"]["web"] is None
    assert october["met_deadline_share"] == round(5 / 6, 4)
    assert october["median_seconds_to_outcome"] == 9000
    assert october["p95_seconds_to_outcome"] == 84600

    assert table.status_code == 200
    assert table["Content-Disposition"] == 'attachment; filename="transparency-report.csv"'
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    row = next(r for r in rows if r["period"] == "2026-10")
    assert row["received_by_door_email"] == "4"
    assert row["received_by_door_web"] == "withheld"
    assert row["median_seconds_to_outcome"] == "9000"
    assert {r["kind"] for r in rows} == {"month", "half-year"}

    assert client.post("/transparency/").status_code == 405


def test_nothing_personal_is_ever_reported(client: Client, submit: Any, outlet: Any) -> None:
    made = every_kind(submit, outlet)
    pages = "\n".join(
        client.get(path).content.decode()
        for path in ("/transparency/", "/transparency/report.csv", "/transparency/report.json")
    ).lower()
    for marker in made.markers:
        assert marker.lower() not in pages, marker
    for reference in (c.reference for c in made.cases.values()):
        assert reference.lower() not in pages
    assert "@" not in pages.replace("mailto:", "")


def test_the_report_is_cached_briefly(client: Client, settings: Any) -> None:
    settings.TRANSPARENCY_CACHE_SECONDS = 60
    cache.delete(cache_key())
    with time_machine.travel(NOW, tick=False):
        first = json.loads(client.get("/transparency/report.json").content)
        case(NOW - H)
        again = json.loads(client.get("/transparency/report.json").content)
        assert again == first  # from the cache
        cache.delete(cache_key())
        fresh = json.loads(client.get("/transparency/report.json").content)
    assert fresh["months"][0]["received"] == first["months"][0]["received"] + 1


def test_the_cache_is_one_deployment_s_and_one_threshold_s(client: Client, settings: Any) -> None:
    settings.TRANSPARENCY_CACHE_SECONDS = 60
    for k in (3, 1):
        settings.TRANSPARENCY_MIN_COUNT = k
        cache.delete(cache_key())
    settings.TRANSPARENCY_MIN_COUNT = 3
    for n in range(4):
        case(NOW - (n + 1) * H, channel="web" if n else "email")
    with time_machine.travel(NOW, tick=False):
        first = json.loads(client.get("/transparency/report.json").content)
        assert first["months"][0]["received_by_door"]["email"] is None  # 1, below 3
        # A changed threshold is never served the old one's figures.
        settings.TRANSPARENCY_MIN_COUNT = 1
        again = json.loads(client.get("/transparency/report.json").content)
        assert again["withheld_below"] == 1
        assert again["months"][0]["received_by_door"]["email"] == 1
    # Another deployment's database, on the same Redis, has its own key.
    mine = cache_key()
    other = {**settings.DATABASES["default"], "NAME": "another_deployment"}
    with pytest.warns(UserWarning, match="DATABASES"):  # Django's warning: expected here
        settings.DATABASES = {**settings.DATABASES, "default": other}
    assert cache_key() != mine
    cache.delete(mine)


def test_a_cache_that_is_down_costs_a_recomputation_not_the_page(
    client: Client, settings: Any
) -> None:
    settings.TRANSPARENCY_CACHE_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    case(NOW - H)
    with time_machine.travel(NOW, tick=False):
        answer = client.get("/transparency/report.json")
    assert answer.status_code == 200
    assert json.loads(answer.content)["months"][0]["received"] == 1
