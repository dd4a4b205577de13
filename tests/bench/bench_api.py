"""Benchmarks of the partner API. Prints figures; asserts nothing about speed.

    .venv/bin/python tests/bench/bench_api.py [batch|clearance|all]

`batch`: URLs accepted per second through `POST /api/v1/takedowns/batch`, BENCH_CALLS (default
10) calls of 10 requests of 10 URLs each (every request trusted: the partner's own articles,
approved at once, with its statement of reasons, audit events and outbox rows), and the same
with 100 requests of 10 URLs per call (the batch's limit).
`clearance`: URLs checked per second for batches of 1,000 URLs (half of them suppressed, in
every everyday spelling) through `POST /api/v1/clearance`, in-process through
`suppression.publication_verdicts`, and by a raw indexed lookup of the same URLs in PostgreSQL
(the exact-rule index only, one query), with the ratio in-process / raw.

Runs against real PostgreSQL (database `rights_bench_api`, or BENCH_DATABASE; recreated) and
real Redis (db 2, or BENCH_REDIS_URL; emptied before and after: the broker's queue and the
throttle counters) through gunicorn with 2 sync workers and the production settings (DEBUG
off); the per-key throttle is raised out of the way. Clients: BENCH_CLIENTS threads (default
2, one per worker) on keep-alive connections.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE = os.environ.get("BENCH_DATABASE", "rights_bench_api")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
CALLS = int(os.environ.get("BENCH_CALLS", "10"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
RULES = 20_000

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": REDIS_URL,
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "AUDIT_SIGNING_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "127.0.0.1",
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "PARTNER_API_RATE": "1000000/m",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(
    {
        k: ENV[k]
        for k in (
            "DJANGO_SETTINGS_MODULE",
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "SECRET_KEY",
            "AUDIT_SIGNING_KEY",
            "PUBLIC_BASE_URL",
            "ALLOWED_HOSTS",
        )
    }
)

import django  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
    admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {DATABASE}")

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from rights.models import ContentItem, Outlet, Suppression, SuppressionKind  # noqa: E402
from rights.normalise import normalise_url  # noqa: E402
from rights.services.partner_keys import partner_key_create  # noqa: E402
from rights.services.suppression import publication_verdicts  # noqa: E402
from rights.statements import REQUIRED_STATEMENTS  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "config.wsgi",
                "--workers=2",
                f"--bind=127.0.0.1:{self.port}",
                "--log-level=warning",
                "--timeout=120",
            ],
            cwd=ROOT,
            env=ENV,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status in (200, 503):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer within 30 s")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def post(conn: http.client.HTTPConnection, path: str, key: str, body: Any) -> dict[str, Any]:
    conn.request(
        "POST",
        path,
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    data = response.read()
    assert response.status == 200, (response.status, data[:500])
    answer: dict[str, Any] = json.loads(data)
    return answer


def in_threads(jobs: list[Any], work: Any) -> float:
    """Run `work(connection, job)` for every job over CLIENTS threads; the seconds it took."""
    lock = threading.Lock()
    queue = list(jobs)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop()
            work(conn, job)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def items(prefix: str, count: int, outlet: Outlet) -> list[str]:
    now = timezone.now()
    made = ContentItem.objects.bulk_create(
        ContentItem(
            slug=f"{prefix}-{n}",
            source_url=f"https://www.telegraph.co.uk/news/{prefix}/{n}/",
            source_domain="www.telegraph.co.uk",
            outlet=outlet,
            title=f"Article {n}",
            published_at=now,
        )
        for n in range(count)
    )
    return [item.source_url for item in made]


def request_body(urls: list[str]) -> dict[str, Any]:
    return {
        "urls": urls,
        "basis": "copyright",
        "statements": list(REQUIRED_STATEMENTS["copyright"]),
        "explanation": "Our article, republished without a licence.",
        "contact": {"email": "legal@telegraph.co.uk", "name": "Legal desk"},
    }


def bench_batch(per_call: int, label: str) -> None:
    outlet = Outlet.objects.get(slug="telegraph")
    key = partner_key_create(outlet=outlet, actor="bench").plaintext
    urls = items(f"batch{per_call}", CALLS * per_call * 10, outlet)
    calls = [
        [urls[(c * per_call + r) * 10 : (c * per_call + r + 1) * 10] for r in range(per_call)]
        for c in range(CALLS)
    ]
    accepted = [0]
    lock = threading.Lock()

    def work(conn: http.client.HTTPConnection, call: list[list[str]]) -> None:
        answer = post(
            conn, "/api/v1/takedowns/batch", key, {"requests": [request_body(u) for u in call]}
        )
        good = sum(10 for r in answer["results"] if r["status"] == 201)
        with lock:
            accepted[0] += good

    elapsed = in_threads(calls, work)
    total = CALLS * per_call * 10
    assert accepted[0] == total, (accepted[0], total)
    print(
        f"batch: {label:<28} {total / elapsed:8.0f} URLs/s ({CALLS} calls, {total:,} URLs, "
        f"{CALLS * per_call / elapsed:.0f} cases/s, {elapsed:.1f} s)"
    )


def bench_clearance() -> None:
    outlet = Outlet.objects.get(slug="telegraph")
    key = partner_key_create(outlet=outlet, scope="clearance", actor="bench").plaintext
    suppressed = [f"https://www.telegraph.co.uk/news/gone/{n}/" for n in range(RULES)]
    Suppression.objects.bulk_create(
        Suppression(kind=SuppressionKind.EXACT, value=url) for url in suppressed
    )
    Suppression.objects.bulk_create(
        [
            Suppression(kind=SuppressionKind.DOMAIN, value="spiegel.de"),
            Suppression(kind=SuppressionKind.PREFIX, value="https://www.lemonde.fr/international/"),
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rights_suppression")
    spellings = [
        lambda u: u,
        lambda u: u.replace("https://www.", "http://"),
        lambda u: u.rstrip("/"),
        lambda u: u + "?utm_source=feed",
    ]
    batches = []
    for b in range(CALLS):
        batch = []
        for n in range(500):
            gone = suppressed[(b * 500 + n) % RULES]
            batch.append(spellings[n % 4](gone))
            batch.append(f"https://www.telegraph.co.uk/news/live/{b}/{n}/")
        batches.append(batch)
    total = CALLS * 1000

    def work(conn: http.client.HTTPConnection, batch: list[str]) -> None:
        answer = post(conn, "/api/v1/clearance", key, {"urls": batch})
        assert sum(not r["allowed"] for r in answer["results"]) == 500

    api_rate = total / in_threads(batches, work)

    started = time.perf_counter()
    for batch in batches:
        verdicts = publication_verdicts(batch)
        assert sum(not v.allowed for v in verdicts) == 500
    process_rate = total / (time.perf_counter() - started)

    # The raw lookup: the same URLs, already normalised, against the exact rules' index.
    keys = [[normalise_url(url) for url in batch] for batch in batches]
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DATABASE}") as raw:
        started = time.perf_counter()
        for batch in keys:
            rows = raw.execute(
                "SELECT value FROM rights_suppression WHERE kind = 'exact' "
                "AND lifted_at IS NULL AND value = ANY(%s)",
                (batch,),
            ).fetchall()
            assert len(rows) > 0
        raw_rate = total / (time.perf_counter() - started)
    print(f"clearance: through the API        {api_rate:9.0f} URLs/s (batches of 1,000)")
    print(f"clearance: in-process             {process_rate:9.0f} URLs/s")
    print(f"clearance: raw indexed lookup     {raw_rate:9.0f} URLs/s")
    print(f"clearance: in-process / raw       {process_rate / raw_rate:9.2f}")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    print(f"{CLIENTS} clients, gunicorn with 2 workers, {os.cpu_count()} cores")
    server = Server()
    try:
        if which in ("batch", "all"):
            bench_batch(10, "10 requests x 10 URLs")
            bench_batch(100, "100 requests x 10 URLs")
        if which in ("clearance", "all"):
            bench_clearance()
    finally:
        server.stop()
        broker.flushdb()
