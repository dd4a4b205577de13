"""The SLA dashboard, for leads: a staff page on the admin site at /admin/sla/.

The figures come from `selectors.sla_dashboard` (a fixed handful of queries); this module only
lays them out. Charts are SVG drawn here, on the server: the Content Security Policy allows no
inline script or style, and SVG presentation attributes (fill, x, y) are neither. Each chart has
a data table beside it, which is also its text alternative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse

from rights import selectors
from rights.admin.queue import duration_words
from rights.deadlines import Rung
from rights.permissions import VIEW_SLA_DASHBOARD

# Colours that keep their contrast on the admin's white and read apart in greyscale too.
BUCKET_COLOURS = ["#b00020", "#d9480f", "#e8890c", "#5c7cfa", "#4263eb", "#868e96"]
CHANNEL_COLOURS = {"web": "#4263eb", "email": "#2b8a3e", "api": "#e8890c", "staff": "#862e9c"}
RUNG_COLOURS = {Rung.FAILSAFE: "#e8890c", Rung.BREACH: "#b00020"}

URLs = list[URLPattern | URLResolver]


def site_urls_add(patterns: Callable[[], URLs]) -> None:
    """Put staff pages on the admin site, in front of its own URLs (whose catch-all would
    answer 404 for anything after them). Each page wraps itself in `admin_site.admin_view`
    and checks its own permission."""
    site = admin.site
    earlier = site.get_urls

    def get_urls() -> URLs:
        return [*patterns(), *earlier()]

    # mypy refuses assigning to a method; the admin site reads get_urls when config.urls loads.
    setattr(site, "get_urls", get_urls)  # noqa: B010


# --- Charts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # what a pointer's tooltip (<title>) says


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, name)


def bucket_chart(buckets: list[tuple[str, int]]) -> Chart:
    """Horizontal bars, one per time-to-deadline bucket, most urgent on top."""
    label_width, bar_area, row, bar = 80, 300, 26, 18
    chart = Chart(width=label_width + bar_area + 50, height=row * len(buckets) + 4)
    top = max([count for _label, count in buckets] + [1])
    for n, ((label, count), colour) in enumerate(zip(buckets, BUCKET_COLOURS, strict=True)):
        y = n * row + 4
        width = bar_area * count / top
        chart.labels.append(Label(label_width - 6, y + bar - 4, label, "end"))
        chart.bars.append(Bar(label_width, y, width, bar, colour, f"{label}: {count}"))
        chart.labels.append(Label(label_width + width + 6, y + bar - 4, str(count)))
    return chart


def column_chart(
    days: list[date],
    series: list[tuple[str, str, str]],
    values: dict[date, dict[str, int]],
    *,
    monthly: bool = False,
) -> Chart:
    """Stacked columns, one per day (or, `monthly`, per month: each of `days` the first of
    one); `series` is (key, name, colour), bottom first. Under each column its day (month),
    and under the first and each new month (year) the month (year)."""
    left, plot_height, column, gap, bottom = 30, 140, 22, 10, 36
    chart = Chart(width=left + len(days) * (column + gap) + 10, height=plot_height + bottom + 8)
    top = max([sum(values[day].values()) for day in days] + [1])
    base = plot_height + 8
    chart.labels.append(Label(left - 6, 16, str(top), "end"))
    chart.labels.append(Label(left - 6, base, "0", "end"))
    for n, day in enumerate(days):
        x = left + n * (column + gap)
        y = float(base)
        for key, name, colour in series:
            count = values[day].get(key, 0)
            if not count:
                continue
            height = plot_height * count / top
            y -= height
            when = f"{day:%B %Y}" if monthly else f"{day:%d %b}"
            chart.bars.append(Bar(x, y, column, height, colour, f"{when}: {count} {name}"))
        total = sum(values[day].values())
        if total:
            chart.labels.append(Label(x + column / 2, y - 3, str(total), "middle"))
        under, group = (f"{day:%b}", f"{day:%Y}") if monthly else (f"{day:%d}", f"{day:%b}")
        chart.labels.append(Label(x + column / 2, base + 14, under, "middle"))
        if n == 0 or (day.month == 1 if monthly else day.day == 1):
            chart.labels.append(Label(x + column / 2, base + 28, group, "middle"))
    chart.legend = [(colour, name) for _key, name, colour in series]
    return chart


def time_words(delta: timedelta | None) -> str:
    if delta is None:
        return "none"
    if delta < timedelta(minutes=1):
        return f"{int(delta.total_seconds())} s"
    return duration_words(delta)


# --- The page -----------------------------------------------------------------------------------


def sla_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_SLA_DASHBOARD):
        raise PermissionDenied
    figures = selectors.sla_dashboard()
    oldest: dict[str, Any] | None = None
    if figures.oldest_open is not None:
        case = figures.oldest_open
        left = case.deadline_at - figures.now if case.deadline_at is not None else None
        oldest = {
            "case": case,
            "url": reverse("admin:rights_takedownrequest_change", args=[case.pk]),
            "open_for": time_words(figures.now - case.clock_started_at)
            if case.clock_started_at
            else "none",
            "time_left": (
                "no clock"
                if left is None
                else f"overdue by {time_words(-left)}"
                if left <= timedelta(0)
                else f"{time_words(left)} left"
            ),
            "overdue": left is not None and left <= timedelta(0),
        }
    channel_series = [
        (value, label, CHANNEL_COLOURS.get(value, "#495057")) for value, label in figures.channels
    ]
    rung_series = [(str(rung), str(rung.label), RUNG_COLOURS[rung]) for rung in RUNG_COLOURS]
    context = {
        **admin.site.each_context(request),
        "title": "SLA dashboard",
        "figures": figures,
        "bucket_chart": bucket_chart(figures.deadline_buckets),
        "bucket_rows": list(zip(figures.deadline_buckets, BUCKET_COLOURS, strict=True)),
        "received_chart": column_chart(figures.days, channel_series, figures.received),
        "received_rows": [
            (day, [figures.received[day][value] for value, _label in figures.channels])
            for day in reversed(figures.days)
        ],
        "rung_chart": column_chart(figures.days, rung_series, figures.rungs),
        "rung_rows": [
            (day, figures.rungs[day][Rung.FAILSAFE], figures.rungs[day][Rung.BREACH])
            for day in reversed(figures.days)
        ],
        "latency": [
            {
                "days": row.days,
                "cases": row.cases,
                "median": time_words(row.median),
                "p95": time_words(row.p95),
            }
            for row in figures.latency
        ],
        "oldest": oldest,
        "queue_url": reverse("admin:rights_takedownrequest_changelist"),
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "rights/admin/sla_dashboard.html", context)


def _urls() -> URLs:
    return [path("sla/", admin.site.admin_view(sla_view), name="rights_sla_dashboard")]


site_urls_add(_urls)
