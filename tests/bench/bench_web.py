"""Benchmarks of the owner's door. Prints figures; asserts nothing about speed.

    .venv/bin/python tests/bench/bench_web.py [form|status|all]

`form`: complete form submissions per second (GET the form, POST it; each POST a new request
with its own submission token, written to PostgreSQL and mailed through the outbox) through
gunicorn with 2 sync workers, beside the same server's rate for a trivial view (a constant
response through the same middleware), and the ratio of the two.
`status`: the status page's p50 / p99 time with BENCH_OPEN_CASES (default 1,000) open cases.

Runs against real PostgreSQL (database `rights_bench_web`, recreated) and real Redis (db 13,
emptied before and after: the broker's queue and the rate-limit counters), with the production
settings (DEBUG off); the rate limits are raised out of the way, since they are what is measured
least. Clients: BENCH_CLIENTS threads (default 2, one per gunicorn worker) on keep-alive
connections, BENCH_SECONDS (default 15) per measurement.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATABASE = "rights_bench_web"
REDIS_URL = "redis://127.0.0.1:6379/13"
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
OPEN_CASES = int(os.environ.get("BENCH_OPEN_CASES", "1000"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "tests.bench.web_settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": REDIS_URL,
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "AUDIT_SIGNING_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "127.0.0.1",
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "REQUEST_RATE_PER_IP": "1000000/h",
    "REQUEST_RATE_PER_EMAIL": "1000000/h",
    "LOG_LEVEL": "WARNING",
}
os.environ.update({k: ENV[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")})
os.environ.update(
    {k: ENV[k] for k in ("DEBUG", "SECRET_KEY", "AUDIT_SIGNING_KEY", "PUBLIC_BASE_URL")}
)

import django  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
    admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {DATABASE}")

django.setup()

from django.core.management import call_command  # noqa: E402

from rights import links  # noqa: E402
from rights.models import ContentItem  # noqa: E402
from rights.services.intake import Submission, takedown_submit  # noqa: E402
from rights.statements import REQUIRED_STATEMENTS  # noqa: E402

TOKEN = re.compile(r'name="token" value="([^"]+)"')
VERSION = re.compile(r'name="statements_version" value="([^"]*)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


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
            ],
            cwd=ROOT,
            env=ENV,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.get("/bench/trivial")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not answer within 30 s")

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


Work = Callable[[http.client.HTTPConnection, int, int], None]


def run_clients(work: Work, seconds: float = SECONDS) -> tuple[int, float, list[float]]:
    """Run `work(connection)` in CLIENTS threads for `seconds`; (count, elapsed, latencies)."""
    stop = time.monotonic() + seconds
    counts: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        done = 0
        mine: list[float] = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            work(connection, index, done)
            mine.append(time.perf_counter() - started)
            done += 1
        with lock:
            counts.append(done)
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.monotonic() - started, latencies


def fetch(
    connection: http.client.HTTPConnection, method: str, path: str, **kwargs: object
) -> tuple[int, bytes, http.client.HTTPResponse]:
    connection.request(method, path, **kwargs)  # type: ignore[arg-type]
    response = connection.getresponse()
    return response.status, response.read(), response


def trivial(connection: http.client.HTTPConnection, index: int, done: int) -> None:
    status, _, _ = fetch(connection, "GET", "/bench/trivial")
    assert status == 200, status


def submission(connection: http.client.HTTPConnection, index: int, done: int) -> None:
    """One owner's request: open the form (prefilled from an article's notice), send it."""
    item_url = ITEM_URLS[(index * 7919 + done) % len(ITEM_URLS)]
    status, body, response = fetch(connection, "GET", "/request/?" + urlencode({"url": item_url}))
    assert status == 200, status
    page = body.decode()
    cookie = SimpleCookie(response.headers.get("Set-Cookie", ""))
    csrf_cookie = cookie["csrftoken"].value
    fields = {
        "csrfmiddlewaretoken": CSRF.findall(page)[0],
        "token": TOKEN.findall(page)[0],
        "statements_version": VERSION.findall(page)[0],
        "urls": item_url,
        "basis": "copyright",
        "statements_copyright": list(REQUIRED_STATEMENTS["copyright"]),
        "explanation": "I wrote this article and did not licence it.",
        "name": "Bench Owner",
        "email": f"owner-{index}-{done}@bench.example",
        "leave_empty": "",
    }
    status, body, response = fetch(
        connection,
        "POST",
        "/request/",
        body=urlencode(fields, doseq=True),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
        },
    )
    if status != 302:
        errors = re.findall(r'class="error-message"[^>]*>(.*?)</div>', body.decode(), re.S)
        raise AssertionError(f"the form answered {status}: {errors or body[:2000]!r}")
    assert response.headers["Location"].endswith("/request/sent/"), response.headers["Location"]


def bench_form() -> None:
    count, elapsed, _ = run_clients(trivial)
    trivial_rate = count / elapsed
    count, elapsed, latencies = run_clients(submission)
    form_rate = count / elapsed
    print(f"form: trivial view           {trivial_rate:8.1f} requests/s")
    print(
        f"form: complete submissions   {form_rate:8.1f} /s (GET form + POST, "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms)"
    )
    print(f"form: ratio                  {form_rate / trivial_rate:8.3f}")


def bench_status() -> None:
    items = list(ContentItem.objects.values_list("source_url", flat=True)[:OPEN_CASES])
    tokens = []
    for number in range(OPEN_CASES):
        case = takedown_submit(
            submission=Submission(
                channel="email",
                email=f"status-{number}@bench.example",
                name="Bench Owner",
                basis="copyright",
                statements=list(REQUIRED_STATEMENTS["copyright"]),
                urls=[items[number % len(items)]],
            )
        ).case
        tokens.append(links.status_token(case))

    def status_page(connection: http.client.HTTPConnection, index: int, done: int) -> None:
        token = tokens[(index * 104729 + done) % len(tokens)]
        status, _, _ = fetch(connection, "GET", f"/status/{token}/")
        assert status == 200, status

    count, elapsed, latencies = run_clients(status_page)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"status: {OPEN_CASES} open cases, {count} pages in {elapsed:.1f} s: "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"{count / elapsed:.1f} pages/s"
    )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    ITEM_URLS = [item.public_url for item in ContentItem.objects.all()]
    print(f"{len(ITEM_URLS)} articles; {CLIENTS} clients; {SECONDS:.0f} s a measurement")
    server = Server()
    try:
        if which in {"form", "all"}:
            bench_form()
        if which in {"status", "all"}:
            bench_status()
    finally:
        server.stop()
        broker.flushdb()
