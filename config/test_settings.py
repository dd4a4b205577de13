"""Settings for the test suite: the environment's settings, with test-friendly defaults.

Only defaults are set here; the test command passes DATABASE_URL and REDIS_URL explicitly.
"""

import os
import tempfile

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

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files are served from the finders in tests; no collectstatic has run.
WHITENOISE_AUTOREFRESH = True
