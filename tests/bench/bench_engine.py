"""Benchmarks of the deadline engine. Prints figures; asserts nothing about speed.

    .venv/bin/python tests/bench/bench_engine.py [drain|latency|sweeper|all]

Runs against real PostgreSQL (database `rights_bench`, recreated) and real Redis (db 12), with
real worker and beat processes started as in the whole-stack tests. Sizes can be changed with
BENCH_DRAIN (default 1000 cases), BENCH_NOOP (5000 tasks), BENCH_BACKLOG (10000 cases) and
BENCH_OPEN (1000000 cases).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.test_settings"
os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/rights_bench"
os.environ["REDIS_URL"] = "redis://127.0.0.1:6379/12"
os.environ["TAKEDOWN_DEADLINE"] = "3600"

import django  # noqa: E402
import psycopg  # noqa: E402

with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
    admin.execute("DROP DATABASE IF EXISTS rights_bench WITH (FORCE)")
    admin.execute("CREATE DATABASE rights_bench")

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from rights.models import AuditEvent, Requester, TakedownRequest  # noqa: E402
from rights.services import scheduling  # noqa: E402
from rights.states import CaseState  # noqa: E402
from tests.factories import telegraph_items  # noqa: E402
from tests.stack import Stack, redis_client, running_stack, submit_many, wait_for  # noqa: E402

call_command("migrate", verbosity=0)
TABLES = [m._meta.db_table for m in django.apps.apps.get_app_config("rights").get_models()]


def reset() -> None:
    # TRUNCATE is the table owner's: the append-only triggers refuse UPDATE and DELETE only.
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    redis_client().flushdb()


def items(count: int) -> list[int]:
    return telegraph_items(count, prefix="bench")


def queue_length() -> int:
    return int(redis_client().llen("celery"))


def consume(stack: Stack, workers: int, done: object, total: int) -> float:
    """Start `workers` worker processes; seconds from the first message taken to `done()`."""
    for n in range(workers):
        stack.start_worker(f"worker-{n}", concurrency=1)
    start_length = queue_length()
    while queue_length() >= start_length:
        time.sleep(0.005)
    started = time.monotonic()
    wait_for(done, timeout=1800, interval=0.02, what="the queue to drain")  # type: ignore[arg-type]
    return time.monotonic() - started


def bench_noop(workers: int, count: int) -> float:
    reset()
    from config.celery import app

    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), 3600) as stack:
        with app.producer_or_acquire() as producer:
            for _ in range(count):
                app.send_task("rights.ping", producer=producer)
        elapsed = consume(stack, workers, lambda: queue_length() == 0, count)
    return count / elapsed


def bench_drain(workers: int, count: int) -> float:
    reset()
    ids = items(count)
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), 3600) as stack:
        submit_many(stack.env, ids)
        stack.start_beat()
        elapsed = consume(
            stack,
            workers,
            lambda: TakedownRequest.objects.filter(state=CaseState.REMOVED).count() == count,
            count,
        )
    return count / elapsed


def drain() -> None:
    noop_count = int(os.environ.get("BENCH_NOOP", "5000"))
    drain_count = int(os.environ.get("BENCH_DRAIN", "1000"))
    print(f"drain rate ({drain_count} trusted cases queued, then workers started)")
    for workers in (1, 2):
        noop = bench_noop(workers, noop_count)
        removals = bench_drain(workers, drain_count)
        print(
            f"  {workers} worker(s): {removals:7.1f} removals/s | no-op task {noop:7.1f} tasks/s"
            f" | ratio {removals / noop:.3f}"
        )


def latency() -> None:
    count = int(os.environ.get("BENCH_BACKLOG", "10000"))
    reset()
    ids = items(count)
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp), 3600) as stack:
        stack.start_worker("worker-1", concurrency=1)
        stack.start_worker("worker-2", concurrency=1)
        stack.start_beat()
        started = time.monotonic()
        submit_many(stack.env, ids)
        submitted = time.monotonic() - started
        wait_for(
            lambda: TakedownRequest.objects.filter(state=CaseState.REMOVED).count() == count,
            timeout=3000,
            interval=1,
            what="the backlog",
        )
        total = time.monotonic() - started
    received = dict(TakedownRequest.objects.values_list("reference", "received_at"))
    gone = {
        stream.removeprefix("case:"): at
        for stream, at in AuditEvent.objects.filter(action="content.removed").values_list(
            "stream", "created_at"
        )
    }
    seconds = sorted((gone[ref] - received[ref]).total_seconds() for ref in received)
    p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
    print(
        f"intake to content gone, {count} trusted cases submitted at once by 2 processes "
        f"(intake took {submitted:.0f} s, all gone after {total:.0f} s; 2 workers):\n"
        f"  p50 {statistics.median(seconds):.1f} s | p99 {p99:.1f} s | max {seconds[-1]:.1f} s"
    )


def sweeper() -> None:
    count = int(os.environ.get("BENCH_OPEN", "1000000"))
    reset()
    requester = Requester.objects.create(email="bench@example.org", name="Bench")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO rights_takedownrequest (
                reference, channel, requester_id, basis, explanation, statements,
                statements_version, whole_domain, trusted, state, received_at,
                clock_started_at, deadline_seconds, deadline_at, next_check_at,
                decision_reasons, created_at, updated_at)
            SELECT 'TB-' || g, 'email', %s, 'copyright', '', '[]', '2026-11', '', false,
                   'in_review', now(), now(), 86400, now() + interval '1 day',
                   now() + interval '12 hours' + g * interval '1 millisecond', '', now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [requester.pk, count],
        )
        cursor.execute("ANALYZE rights_takedownrequest")
    runs = []
    for _ in range(200):
        started = time.perf_counter()
        claimed = scheduling.sweep_claim()
        runs.append((time.perf_counter() - started) * 1000)
        assert not claimed.cases
    runs.sort()
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM rights_takedownrequest "
            "WHERE next_check_at <= now() AND (lease_until IS NULL OR lease_until < now()) "
            "ORDER BY next_check_at LIMIT 500 FOR UPDATE SKIP LOCKED"
        )
        plan = "\n".join("    " + row[0] for row in cursor.fetchall())
    print(
        f"sweeper cost with {count:,} open cases, none due (200 sweeps):\n"
        f"  median {statistics.median(runs):.2f} ms | p99 {runs[int(len(runs) * 0.99)]:.2f} ms"
        f" | max {runs[-1]:.2f} ms\n  plan of the claim query:\n{plan}"
    )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, bench in (("drain", drain), ("latency", latency), ("sweeper", sweeper)):
        if which in (name, "all"):
            bench()
