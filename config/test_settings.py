"""Settings for the test suite: the environment's settings, with test-friendly defaults.

Only defaults are set here; the test command passes DATABASE_URL and REDIS_URL explicitly.

Under pytest-xdist each worker process has a database of its own in PostgreSQL (pytest-django
adds _gw0, _gw1, ... to the test database's name) and in Redis: REDIS_URL names the first of the
Redis databases, and worker gwN takes the one N above it (see _redis_url_of_this_worker), so no
test flushes, or takes tasks from, another process's broker.
"""

import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

# Redis's databases are numbered 0-15 (its default `databases 16`).
_REDIS_DATABASES = 16


def _redis_url_of_this_worker() -> None:
    """REDIS_URL for this pytest-xdist worker: gw0 takes REDIS_URL's database, gwN the one N
    above. Without REDIS_URL, the workers take the topmost databases, the last being 15, the
    database of a run without xdist. Done once: a process a test starts inherits the result
    (and PYTEST_XDIST_WORKER) through its environment, and must not move up again."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker or os.environ.get("RIGHTS_TEST_REDIS_WORKER") == worker:
        return
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker.removeprefix("gw"))
    url = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{_REDIS_DATABASES - count}"
    parts = urlsplit(url)
    try:
        first = int(parts.path.strip("/") or "0")
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL must name a database number, not {url!r}") from None
    if parts.scheme not in {"redis", "rediss"} or first + count > _REDIS_DATABASES:
        raise ImproperlyConfigured(
            f"REDIS_URL {url!r} names the first of the {count} Redis databases the test workers "
            f"use, one each ({first} to {first + count - 1}), and Redis has 0 to "
            f"{_REDIS_DATABASES - 1}: name a lower database (redis://host:port/N) or run fewer "
            "workers (-n)"
        )
    os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{first + index}"))
    os.environ["RIGHTS_TEST_REDIS_WORKER"] = worker


_redis_url_of_this_worker()
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("AUDIT_SIGNING_KEY", "test-only-audit-signing-key-not-for-production-0123456")
# Never the project's own var/ witness; tests/conftest.py gives each test a fresh one, and
# processes a test starts inherit it through the environment.
os.environ.setdefault(
    "AUDIT_WITNESS",
    os.path.join(tempfile.gettempdir(), f"rights-test-audit-witness-{os.getpid()}.jsonl"),
)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rights")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("PUBLIC_BASE_URL", "https://news.example")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")

from config.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files are served from the finders in tests; no collectstatic has run.
WHITENOISE_AUTOREFRESH = True
