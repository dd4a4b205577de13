"""Benchmarks of the transparency report and the statements' export. Prints figures; asserts
nothing about speed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rights_sor \
        .venv/bin/python tests/bench/bench_transparency.py

Runs against real PostgreSQL (the database DATABASE_URL names: its rights tables are emptied
first). BENCH_CASES (default 20000) cases are spread over the last twelve months, one to three
URLs each, nine in ten removed with a statement of reasons, one in twenty with a fail-safe.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rights_sor")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
os.environ["TRANSPARENCY_CACHE_SECONDS"] = "0"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from rights.models import (  # noqa: E402
    ContentItem,
    LadderRung,
    Requester,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.selectors_transparency import transparency_report  # noqa: E402
from rights.services.transparency import statements_export  # noqa: E402
from tests.factories import telegraph_items  # noqa: E402

CASES = int(os.environ.get("BENCH_CASES", "20000"))

call_command("migrate", verbosity=0)
TABLES = [m._meta.db_table for m in django.apps.apps.get_app_config("rights").get_models()]


def seed() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    rng = random.Random(12)
    now = timezone.now()
    item_ids = telegraph_items(CASES * 3 // 2, prefix="bench")
    items = list(ContentItem.objects.filter(pk__in=item_ids).only("pk", "source_url"))
    requester = Requester.objects.create(email="bench@example.org", name="Bench")
    cases = []
    for n in range(CASES):
        start = now - timedelta(seconds=rng.randrange(360 * 86400))
        cases.append(
            TakedownRequest(
                reference=f"TD-B{n:07d}",
                channel=rng.choice(["web", "email", "api", "staff"]),
                requester=requester,
                basis=rng.choice(["copyright", "privacy", "defamation", "other", ""]),
                statements=[],
                statements_version="1",
                state="removed",
                received_at=start,
                clock_started_at=start,
                deadline_seconds=86400,
                deadline_at=start + timedelta(days=1),
                closed_at=start + timedelta(hours=rng.uniform(0.01, 26)),
            )
        )
    cases = TakedownRequest.objects.bulk_create(cases, batch_size=2000)
    targets, statements, rungs = [], [], []
    used = 0
    for case in cases:
        assert case.clock_started_at is not None
        assert case.closed_at is not None
        count = rng.choice([1, 1, 2, 3])
        removed = rng.random() < 0.9
        mine = items[used % len(items) : used % len(items) + count]
        used += count
        for item in mine:
            targets.append(
                Target(
                    case=case,
                    url=item.source_url,
                    content_item=item,
                    state="removed" if removed else "rejected",
                    outcome_at=case.closed_at,
                )
            )
        if rng.random() < 0.05:
            rungs.append(
                LadderRung(
                    case=case,
                    rung="failsafe",
                    fired_at=case.clock_started_at + timedelta(hours=22),
                    due_at=case.clock_started_at + timedelta(hours=22),
                    pending_targets=count,
                )
            )
    targets = Target.objects.bulk_create(targets, batch_size=5000)
    by_case: dict[int, list[Target]] = {}
    for target in targets:
        by_case.setdefault(target.case_id, []).append(target)
    for case in cases:
        assert case.closed_at is not None
        named = by_case[case.pk]
        statements.append(
            StatementOfReasons(
                case=case,
                measure="removal" if named[0].state == "removed" else "no_action",
                scope=[[t.pk, t.state] for t in named],
                ground=case.basis or "terms",
                facts="f",
                reasons="r",
                redress="x",
                decided_at=case.closed_at,
            )
        )
    StatementOfReasons.objects.bulk_create(statements, batch_size=5000)
    LadderRung.objects.bulk_create(rungs, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    started = time.monotonic()
    seed()
    print(
        f"seeded {CASES} cases, {Target.objects.count()} URLs in {time.monotonic() - started:.1f} s"
    )
    timings = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            began = time.perf_counter()
            transparency_report()
            timings.append(time.perf_counter() - began)
    print(
        f"transparency_report: median {statistics.median(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms over 5 runs, {len(queries)} queries"
    )
    began = time.perf_counter()
    exported = sum(1 for _ in statements_export())
    took = time.perf_counter() - began
    print(f"statements_export: {exported} statements in {took:.1f} s ({exported / took:.0f}/s)")


if __name__ == "__main__":
    main()
