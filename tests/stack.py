"""Whole-stack test harness: real Celery worker and beat processes, real Redis and PostgreSQL,
and a real HTTP server on loopback standing in for the aggregator's CMS.

Processes run against the test database that pytest-django created, so the tests that use this
must be `django_db(transaction=True)`: the workers only see committed rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
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

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
WEBHOOK_SECRET = "stack-test-webhook-secret"
# The Celery app of this process, untyped: its broker connections are reset below through the
# attributes Celery itself resets after a fork.
celery_app: Any = app


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

    def __init__(self, tmp: Path, receiver: Receiver, deadline: int, redis_url: str) -> None:
        self.tmp = tmp
        self.receiver = receiver
        self.deadline = deadline
        self.redis_url = redis_url
        self.mail_dir = tmp / "mail"
        self.mail_dir.mkdir()
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": (f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"),
            "REDIS_URL": redis_url,
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
    """This test process's own Redis database (one per pytest-xdist worker, see
    config/test_settings.py): flush it at will, never the whole server."""
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


def _reset_broker_pools() -> None:
    """Forget the in-process Celery app's broker connections (as Celery does after a fork), so
    the next publish connects to whatever `broker_url` says now."""
    if celery_app._pool is not None:
        with suppress(Exception):
            celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """This process's fast path (intake's `dispatch.enqueue`) publishes to the broker at `url`
    meanwhile: the one the stack's workers consume, when that is not settings.REDIS_URL."""
    before = celery_app.conf.broker_url
    _reset_broker_pools()
    celery_app.conf.broker_url = url
    try:
        yield
    finally:
        _reset_broker_pools()
        celery_app.conf.broker_url = before


# tests/conftest.py names the lock file, one per parallel run, in the run's own temporary
# directory; unset without pytest-xdist, where every test runs alone anyway.
RUN_LOCK = "RIGHTS_TEST_RUN_LOCK"


@contextmanager
def sharing_the_run(*, alone: bool = False) -> Iterator[None]:
    """In a parallel run (pytest-xdist), every test holds the run's lock shared while it runs,
    and a test marked `alone` holds it exclusively: the other processes wait meanwhile. For the
    tests that need the whole machine (the backlog keeps every core busy for a minute) or whose
    clock has no room for neighbours (the trickling-CMS worker test has 2 s from its fail-safe to
    its deadline while the CMS holds every worker slot). They run last, so the wait is short. The
    lock goes with the process, however it ends."""
    path = os.environ.get(RUN_LOCK, "")
    if not path:
        yield
        return
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


@contextmanager
def running_stack(tmp: Path, deadline: int, redis_url: str | None = None) -> Iterator[Stack]:
    """A stack on `redis_url` (default: this test process's database of the shared Redis,
    flushed before and after; it must be nobody else's)."""
    url = redis_url or settings.REDIS_URL
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    receiver = Receiver()
    stack = Stack(tmp, receiver, deadline, url)
    try:
        with publishing_to(url):
            yield stack
    finally:
        stack.stop()
        receiver.close()
        with suppress(redis.ConnectionError):  # a private server a test left stopped
            broker.flushdb()
        broker.close()
        connection.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own, on a free loopback port, that a test may shut down,
    flush entirely and start again while other tests run beside it: the shared Redis (and the
    other test processes' databases on it) is never touched. Nothing is saved to disk."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "the fault tests need redis-server (Debian's redis-server package)"
        self.binary = binary
        self.dir = tmp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        # A free port can be taken between our look and redis-server's bind: try another.
        for _ in range(5):
            self.port = free_port()
            if self._spawn():
                break
        else:
            raise AssertionError(f"a private redis-server would not start:\n{self.log()}")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> bool:
        """Start redis-server on self.port; True once it answers, False if it exited."""
        process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.process = process
        try:
            wait_for(
                lambda: self.answers() or process.poll() is not None,
                timeout=10,
                interval=0.05,
                what="the private redis-server to answer",
            )
        except AssertionError:
            self.close()
            raise
        return process.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def answers(self) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def shutdown(self) -> None:
        """SHUTDOWN NOSAVE: the broker dies and forgets every message it held."""
        # The server closes the connection as it goes.
        with suppress(redis.ConnectionError), self.client() as client:
            client.shutdown(nosave=True)
        assert self.process is not None
        self.process.wait(timeout=10)
        wait_for(lambda: not self.answers(), timeout=10, what="the private Redis to stop")

    def start(self) -> None:
        """Start it again, on the same port (the stack's processes have its URL)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        if not self._spawn():
            raise AssertionError(f"the private redis-server did not restart:\n{self.log()}")

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        """Kill our own server (by its pid), whatever state the test left it in."""
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(timeout=10)


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
