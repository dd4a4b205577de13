"""Whole-stack test harness: real Celery worker and beat processes, real Redis and PostgreSQL,
and a real HTTP server on loopback standing in for the aggregator's CMS.

Processes run against the test database that pytest-django created, so the tests that use this
must be `django_db(transaction=True)`: the workers only see committed rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
WEBHOOK_SECRET = "stack-test-webhook-secret"


class Receiver:
    """The CMS: counts calls, and effects by idempotency key, as a real idempotent CMS would.

    `fail_until` / `hang_until` (monotonic times) make it answer 500 or stall past the client's
    timeout until then.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.effects: dict[str, dict[str, Any]] = {}
        self.fail_until = 0.0
        self.hang_until = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                key = self.headers["Idempotency-Key"]
                now = time.monotonic()
                with receiver.lock:
                    receiver.calls[key] += 1
                if now < receiver.hang_until:
                    time.sleep(3)
                    return
                if now < receiver.fail_until:
                    self.send_response(500)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.effects.setdefault(key, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/takedown"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def effects_for(self, action: str) -> Counter[int]:
        """Effects per target for one action (distinct idempotency keys)."""
        with self.lock:
            return Counter(
                body["target"] for body in self.effects.values() if body["action"] == action
            )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    """Worker and beat processes for one test, with the environment they share."""

    def __init__(self, tmp: Path, receiver: Receiver, deadline: int) -> None:
        self.tmp = tmp
        self.receiver = receiver
        self.deadline = deadline
        self.mail_dir = tmp / "mail"
        self.mail_dir.mkdir()
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": (f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
            "REDIS_URL": settings.REDIS_URL,
            "TAKEDOWN_DEADLINE": str(deadline),
            "REMOVAL_BACKENDS": "catalogue,webhook",
            "REMOVAL_WEBHOOK_URL": receiver.url,
            "REMOVAL_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "REMOVAL_WEBHOOK_TIMEOUT": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [CELERY, "-A", "config", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> None:
        self._spawn(
            name,
            [
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                f"--hostname={name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )

    def start_beat(self, name: str = "beat") -> None:
        self._spawn(
            name,
            ["beat", "--loglevel=INFO", f"--schedule={self.tmp / (name + '-schedule')}"],
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group: a worker's pool children die with it."""
        process = self.processes.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def mails(self) -> list[str]:
        return [p.read_text(errors="replace") for p in sorted(self.mail_dir.glob("*.log"))]


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def wait_for(
    condition: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str = ""
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")


@contextmanager
def running_stack(tmp: Path, deadline: int) -> Iterator[Stack]:
    redis_client().flushdb()
    receiver = Receiver()
    stack = Stack(tmp, receiver, deadline)
    try:
        yield stack
    finally:
        stack.stop()
        receiver.close()
        redis_client().flushdb()
        connection.close()


REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def redis_shutdown() -> None:
    """SHUTDOWN NOSAVE: the broker dies and forgets every message it held."""
    # The server closes the connection as it goes.
    with contextlib.suppress(redis.ConnectionError):
        redis_client().shutdown(nosave=True)
    wait_for(lambda: not _redis_answers(), timeout=10, what="Redis to stop")


def redis_start() -> None:
    subprocess.run(REDIS_START, check=True, capture_output=True)
    wait_for(_redis_answers, timeout=10, what="Redis to answer")


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


SUBMIT_MANY = """
import sys
import django
django.setup()
from rights.models import ContentItem
from rights.services.intake import Submission, takedown_submit
from rights.statements import REQUIRED_STATEMENTS

first, last = int(sys.argv[1]), int(sys.argv[2])
statements = list(REQUIRED_STATEMENTS["copyright"])
for url in ContentItem.objects.filter(pk__gte=first, pk__lte=last).values_list(
    "source_url", flat=True
).iterator():
    takedown_submit(submission=Submission(
        channel="staff", email="desk@telegraph.co.uk", name="Desk", basis="copyright",
        urls=[url], statements=statements, email_verified=True, actor="staff:backlog",
    ))
"""


def submit_many(env: dict[str, str], item_ids: list[int], processes: int = 2) -> None:
    """Trusted requests for every item, through the real intake, from parallel processes."""
    item_ids = sorted(item_ids)
    size = -(-len(item_ids) // processes)
    chunks = [item_ids[i : i + size] for i in range(0, len(item_ids), size)]
    running = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMIT_MANY, str(chunk[0]), str(chunk[-1])],
            cwd=ROOT,
            env=env,
        )
        for chunk in chunks
    ]
    for process in running:
        assert process.wait(timeout=1200) == 0
