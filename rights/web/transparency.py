"""The public transparency report, /transparency/ (DSA Art. 15 and 24 in spirit: how many
requests came in, what was done, and how often the deadline held), with its figures as CSV
(/transparency/report.csv) and JSON (/transparency/report.json).

The figures come from `selectors_transparency.transparency_report` (aggregates only, small
counts withheld) and are kept in the cache for TRANSPARENCY_CACHE_SECONDS: the page is public
and its queries scan a year of cases. A cache that is down costs a recomputation, never the
page. The charts are the SLA dashboard's server-drawn SVG (rights.admin.dashboard), so the
strict Content Security Policy holds: no script, no inline style, no CDN.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from rights.admin.dashboard import RUNG_COLOURS, column_chart, time_words
from rights.deadlines import Rung, duration_words
from rights.selectors_transparency import (
    BASES,
    DOORS,
    OUTCOMES,
    Figures,
    Period,
    Report,
    transparency_report,
)

logger = logging.getLogger(__name__)


_SHAPE = hashlib.sha256(
    ",".join(f.name for cls in (Report, Figures, Period) for f in dataclasses.fields(cls)).encode()
).hexdigest()[:12]


def cache_key() -> str:
    """The report's cache key. It names the report's shape, so that a release that changes it
    never reads an older release's figures back (they are pickled objects); the database the
    figures come from (a digest of its name, host and port), so that two deployments sharing
    one Redis never serve each other's; and the threshold below which counts are withheld, so
    that a changed one never serves figures withheld by the old."""
    db = settings.DATABASES["default"]
    where = "|".join(str(db.get(name) or "") for name in ("NAME", "HOST", "PORT"))
    deployment = hashlib.sha256(where.encode()).hexdigest()[:12]
    return f"rights:transparency-report:{_SHAPE}:{deployment}:k{settings.TRANSPARENCY_MIN_COUNT}"


DOOR_COLOURS = {"web": "#4263eb", "email": "#2b8a3e", "api": "#e8890c", "staff": "#862e9c"}
OUTCOME_COLOURS = {
    "removed": "#2b8a3e",
    "disabled": "#e8890c",
    "rejected": "#b00020",
    "restored": "#4263eb",
    "not_found": "#868e96",
}


def report_cached() -> Report:
    """The report, from the cache when it is fresh enough; computed (and kept) otherwise."""
    seconds = settings.TRANSPARENCY_CACHE_SECONDS
    if seconds:
        try:
            kept = cache.get(cache_key())
        except Exception:  # a cache that is down is no reason to fail the page
            logger.warning("transparency report: the cache did not answer; computing it")
            kept = None
        if isinstance(kept, Report):
            return kept
    report = transparency_report()
    if seconds:
        try:
            cache.set(cache_key(), report, seconds)
        except Exception:
            logger.warning("transparency report: the cache did not take it")
    return report


def _seconds(delta: timedelta | None) -> int | None:
    return int(delta.total_seconds()) if delta is not None else None


def figures_dict(figures: Figures) -> dict[str, Any]:
    """One period's figures as published: null for what is withheld."""
    share = figures.met_share
    return {
        "period": figures.period.key,
        "kind": figures.period.kind,
        "start": figures.period.start.isoformat(),
        "end": figures.period.end.isoformat(),
        "received": figures.received,
        "received_by_door": figures.by_door,
        "received_by_basis": figures.by_basis,
        "urls": figures.urls,
        "urls_by_outcome": figures.outcomes,
        "decided": figures.decided,
        "met_deadline": figures.met_deadline,
        "met_deadline_share": round(share, 4) if share is not None else None,
        "median_seconds_to_outcome": _seconds(figures.median),
        "p95_seconds_to_outcome": _seconds(figures.p95),
        "failsafe_activations": figures.failsafes,
        "breaches": figures.breaches,
        "appeals_received": figures.appeals,
        "appeals_decided": figures.appeal_decisions,
        "decisions_reversed_on_appeal": figures.reversals,
        "suspensions_for_misuse": figures.suspensions,
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "generated_at": report.generated_at.isoformat(),
        "deadline_seconds": settings.TAKEDOWN_DEADLINE,
        "withheld_below": report.min_count,
        "note": (
            f"null: withheld (fewer than {report.min_count}, or a count from which one could be "
            "worked out: another of the same breakdown, or a half-year's when one of its "
            "months withholds it); a period's requests are those whose clock started in it"
        ),
        "months": [figures_dict(f) for f in report.months],
        "half_years": [figures_dict(f) for f in report.halves],
    }


CSV_COLUMNS = [
    "period",
    "kind",
    "start",
    "end",
    "received",
    *(f"received_by_door_{key}" for key, _ in DOORS),
    *(f"received_by_basis_{key}" for key, _ in BASES),
    "urls",
    *(f"urls_{key}" for key, _ in OUTCOMES),
    "decided",
    "met_deadline",
    "met_deadline_share",
    "median_seconds_to_outcome",
    "p95_seconds_to_outcome",
    "failsafe_activations",
    "breaches",
    "appeals_received",
    "appeals_decided",
    "decisions_reversed_on_appeal",
    "suspensions_for_misuse",
]


def _csv_row(figures: Figures, withheld: str) -> list[Any]:
    flat = figures_dict(figures)
    for prefix, source, keys in (
        ("received_by_door_", figures.by_door, DOORS),
        ("received_by_basis_", figures.by_basis, BASES),
        ("urls_", figures.outcomes, OUTCOMES),
    ):
        for key, _ in keys:
            flat[f"{prefix}{key}"] = source.get(key) if source is not None else None
    return [withheld if flat.get(column) is None else flat[column] for column in CSV_COLUMNS]


@require_safe
def report_json(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(report_dict(report_cached()))
    patch_cache_control(response, public=True, max_age=60)
    return response


@require_safe
def report_csv(request: HttpRequest) -> HttpResponse:
    report = report_cached()
    withheld = "withheld"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for figures in [*report.months, *report.halves]:
        writer.writerow(_csv_row(figures, withheld))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="transparency-report.csv"'
    patch_cache_control(response, public=True, max_age=60)
    return response


def _series_values(
    months: list[Figures], pick: str, keys: list[tuple[str, str]]
) -> dict[date, dict[str, int]]:
    """A chart's values: withheld counts are drawn as nothing (the tables say "withheld")."""
    values: dict[date, dict[str, int]] = {}
    for figures in months:
        source = getattr(figures, pick)
        values[figures.period.start] = {
            key: (source.get(key) or 0) if source is not None else 0 for key, _ in keys
        }
    return values


def _row(figures: Figures) -> dict[str, Any]:
    share = figures.met_share
    return {
        "figures": figures,
        "doors": [
            (label, figures.by_door.get(key) if figures.by_door else None) for key, label in DOORS
        ],
        "bases": [
            (label, figures.by_basis.get(key) if figures.by_basis else None) for key, label in BASES
        ],
        "outcomes": [
            (label, figures.outcomes.get(key) if figures.outcomes else None)
            for key, label in OUTCOMES
        ],
        "share": f"{share:.0%}" if share is not None else None,
        "small_counts": [
            figures.appeals,
            figures.appeal_decisions,
            figures.reversals,
            figures.suspensions,
        ],
        "median": time_words(figures.median) if figures.median is not None else None,
        "p95": time_words(figures.p95) if figures.p95 is not None else None,
    }


def _latest(periods: list[Figures]) -> Figures:
    """The newest period in which a request was decided (the current one when none was)."""
    return next((f for f in periods if f.decided), periods[0])


@require_safe
def report_page(request: HttpRequest) -> HttpResponse:
    report = report_cached()
    oldest_first = list(reversed(report.months))
    days = [f.period.start for f in oldest_first]
    door_series = [(key, label, DOOR_COLOURS.get(key, "#495057")) for key, label in DOORS]
    outcome_series = [(key, label, OUTCOME_COLOURS[key]) for key, label in OUTCOMES]
    rung_series = [(str(rung), str(rung.label), RUNG_COLOURS[rung]) for rung in RUNG_COLOURS]
    rung_values = {
        f.period.start: {str(Rung.FAILSAFE): f.failsafes, str(Rung.BREACH): f.breaches}
        for f in oldest_first
    }
    share_values = {
        f.period.start: {"met": round(f.met_share * 100) if f.met_share is not None else 0}
        for f in oldest_first
    }
    context = {
        "report": report,
        "min_count": report.min_count,
        "months": [_row(f) for f in report.months],
        "halves": [_row(f) for f in report.halves],
        "headline": [
            ("month", _row(_latest(report.months))),
            ("half-year", _row(_latest(report.halves))),
        ],
        "doors": DOORS,
        "bases": BASES,
        "outcomes": OUTCOMES,
        "breakdown_span": len(DOORS) + len(BASES),
        "share_chart": column_chart(
            days, [("met", "% met the deadline", "#2b8a3e")], share_values, monthly=True
        ),
        "received_chart": column_chart(
            days, door_series, _series_values(oldest_first, "by_door", DOORS), monthly=True
        ),
        "outcome_chart": column_chart(
            days, outcome_series, _series_values(oldest_first, "outcomes", OUTCOMES), monthly=True
        ),
        "rung_chart": column_chart(days, rung_series, rung_values, monthly=True),
        "deadline": duration_words(settings.TAKEDOWN_DEADLINE),
    }
    response = render(request, "rights/web/transparency.html", context)
    patch_cache_control(response, public=True, max_age=60)
    return response
