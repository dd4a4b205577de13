"""Settings, read from the environment.

Defaults are the safe production ones: DEBUG is off and a missing SECRET_KEY is an error unless
DEBUG is on. The local run script turns DEBUG on; nothing else does.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from rights import removal  # validation helpers only: imports no models
from rights.mail import mailbox  # validation helpers only: imports no models
from rights.task_names import TaskName

BASE_DIR = Path(__file__).resolve().parent.parent
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A rate limit as django-ratelimit reads it: "10/h" is ten an hour (s, m, h or d)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not re.fullmatch(r"[1-9][0-9]*/([1-9][0-9]*)?[smhd]", value):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 10/h (a count per s, m, h or d), not {raw!r}"
        )
    return value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on-0123456789"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

INSTALLED_APPS = [
    # First, so that its templates/admin/ (the console's stylesheet on every page, a labelled
    # search box) take the place of the admin's own; nothing else of the admin's is replaced.
    "rights",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # The partner API's OpenAPI schema from the code, and Swagger UI's files served as our own
    # static files (no CDN; see rights/api/docs.py).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # For their system checks (and csp's template tag); the policy itself is the middleware's.
    "csp",
    "django_ratelimit",
    # Locks out repeated failed staff logins (settings under "Staff logins" below).
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Under /api/, any error answered outside a DRF view (a bad Host header included) is RFC
    # 9457 problem JSON too.
    "rights.api.errors.ProblemMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, the first to read a POST: an unreadable body is a 400, never a 500.
    "rights.web.errors.UnreadableBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the single-machine demo database: wait for the writer instead of failing.
    # IMMEDIATE: a writing transaction takes the write lock when it begins, so the web, the
    # worker and the standby sweeper queue for it instead of failing with "database is locked"
    # when a reader upgrades to a writer.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Staff logins ---------------------------------------------------------------------------
# Staff sign in to the console with their own accounts. Repeated failures lock that username
# from that address out for a cool-off (django-axes, counted in the database). By the pair: a
# lock by username alone would let anyone lock any colleague out, and one by address alone
# would lock out a whole office behind one NAT. (A guesser with many addresses gets the limit
# at each of them; the password validators are what stands against that.)
AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out login is refused before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Where a login goes when its `next` is missing or unsafe (another site): the console.
LOGIN_REDIRECT_URL = "/admin/"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
# Seconds a locked-out username and address wait before they may try again; each try during
# the lockout starts the wait again (django-axes' default).
AXES_COOLOFF_TIME = timedelta(seconds=env_int("AXES_COOLOFF_TIME", 15 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The address as the rate limits see it (TRUST_X_FORWARDED_FOR), never a forgeable header.
AXES_CLIENT_IP_CALLABLE = "rights.admin.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "rights/admin/locked_out.html"
# No start-up banner on every manage.py command and worker; lockouts are still logged.
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security -----------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Anything a public page shows runs under this policy: our own scripts and styles only (no
# inline script or style, no eval), no plugins, never framed, forms post only to us. The admin
# needs nothing more (Django 5.2's admin has no inline script). A view that needs more says so
# with csp.decorators.csp_update, so each exception is visible where it is made.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
# Django's own page for a refused form (an expired or missing CSRF cookie) has an inline style;
# ours says what to do next, in the site's words.
CSRF_FAILURE_VIEW = "rights.web.errors.csrf_failure"

# --- Logging: never personal data; the service logs identifiers only. ---------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Django logs the path of every 4xx and 5xx answer: the secret in a status or confirmation
    # link must not reach the logs with it.
    "filters": {"secret_links": {"()": "rights.web.logs.RedactSecretLinks"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["secret_links"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # django-axes narrates every login at INFO; its lockouts (WARNING) are what an operator
        # needs, and every login is in its access log table anyway.
        "axes": {"level": "WARNING"},
        # Django's own loggers (the development server's request lines, 4xx and 5xx paths)
        # write through the same filtered handler, never through handlers of their own.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- The promise --------------------------------------------------------------------------
# Seconds from receipt of a complete request to the deadline; the escalation ladder scales with it.
TAKEDOWN_DEADLINE = env_int("TAKEDOWN_DEADLINE", 86400)
# Stored in whole seconds and added to dates: ten years is far inside both limits, and far
# beyond any promise this service makes.
TAKEDOWN_DEADLINE_MAX = 10 * 366 * 86400
if TAKEDOWN_DEADLINE > TAKEDOWN_DEADLINE_MAX:
    raise ImproperlyConfigured(
        f"TAKEDOWN_DEADLINE must be at most {TAKEDOWN_DEADLINE_MAX} seconds (ten years), "
        f"not {TAKEDOWN_DEADLINE}"
    )
# How long a web-form request waits for the requester to confirm their address before it expires.
CONFIRMATION_WINDOW = env_int("CONFIRMATION_WINDOW", 72 * 3600)
# How long after a decision the requester may appeal it from their status page (DSA Art. 20
# asks for at least six months).
APPEAL_WINDOW = env_int("APPEAL_WINDOW", 183 * 86400)
if APPEAL_WINDOW < 183 * 86400 and not DEBUG:
    raise ImproperlyConfigured(
        f"APPEAL_WINDOW must be at least six months (15811200 seconds), not {APPEAL_WINDOW}"
    )
# Abuse controls (DSA Art. 23): unfounded requests, after a warning, that allow a suspension.
ABUSE_SUSPEND_AFTER = env_int("ABUSE_SUSPEND_AFTER", 3)
# A requester's contact details are erased this many days after their last case closed (GDPR
# Art. 5(1)(e)); never before a refusal can no longer be appealed, or the appeal has no address.
REQUESTER_RETENTION_DAYS = env_int("REQUESTER_RETENTION_DAYS", 365)
if REQUESTER_RETENTION_DAYS * 86400 < APPEAL_WINDOW:
    raise ImproperlyConfigured(
        f"REQUESTER_RETENTION_DAYS ({REQUESTER_RETENTION_DAYS}) must be at least APPEAL_WINDOW "
        f"({APPEAL_WINDOW // 86400} days): a requester may still appeal until then"
    )
# A domain verified by its TXT record is looked up again this often (seconds); found gone this
# many times in a row, it is unverified and lends no trust until staff verify it anew.
DOMAIN_RECHECK_INTERVAL = env_int("DOMAIN_RECHECK_INTERVAL", 86400, minimum=60)
DOMAIN_RECHECK_LAPSE_AFTER = env_int("DOMAIN_RECHECK_LAPSE_AFTER", 3)
TAKEDOWN_MAX_URLS = env_int("TAKEDOWN_MAX_URLS", 100)
TAKEDOWN_MAX_EXPLANATION = env_int("TAKEDOWN_MAX_EXPLANATION", 10_000)
# A whole-domain request may name at most this many articles (the fail-safe disables them all
# in one transaction, which must stay well inside a task's time limit).
TAKEDOWN_MAX_DOMAIN_ITEMS = env_int("TAKEDOWN_MAX_DOMAIN_ITEMS", 1000)
# The aggregator's own public address: URLs on this host name our copies, not primary sources.
# Every link in every message is built on it, so a wrong value sends requesters' secret links
# somewhere else: with DEBUG off it must be given, and be https unless it is this machine.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
if not PUBLIC_BASE_URL:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PUBLIC_BASE_URL must be set when DEBUG is off: the address readers and requesters "
            "use, such as https://news.example"
        )
    PUBLIC_BASE_URL = "http://localhost:8000"
_public = urlsplit(PUBLIC_BASE_URL)
if (
    _public.scheme not in {"http", "https"}
    or not _public.hostname
    or _public.path
    or _public.query
    or _public.fragment
    or "@" in _public.netloc
):
    raise ImproperlyConfigured(
        "PUBLIC_BASE_URL must be a site's address, a scheme and a host with no path (such as "
        f"https://news.example), not {PUBLIC_BASE_URL!r}"
    )
if not DEBUG and _public.scheme != "https" and _public.hostname not in LOOPBACK_HOSTS:
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL must be https when DEBUG is off (the links it makes carry secrets), "
        f"not {PUBLIC_BASE_URL!r}"
    )
TAKEDOWN_MAILBOX = os.environ.get("TAKEDOWN_MAILBOX", "takedown@localhost")
# Signs audit checkpoints (and keys the digests of free text in the trail). A key of its own:
# whoever holds SECRET_KEY (every web host) must not be able to re-sign a rewritten trail.
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
if not DEBUG:
    if not AUDIT_SIGNING_KEY:
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be set when DEBUG is off")
    if AUDIT_SIGNING_KEY.strip() == SECRET_KEY.strip():
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY must differ from SECRET_KEY")
    if len(AUDIT_SIGNING_KEY) < 32 or len(set(AUDIT_SIGNING_KEY.strip())) < 10:
        raise ImproperlyConfigured(
            "AUDIT_SIGNING_KEY must be a random key of at least 32 characters (not blanks or "
            "one character repeated): python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
elif not AUDIT_SIGNING_KEY:
    AUDIT_SIGNING_KEY = "insecure-development-audit-key-only-used-when-DEBUG-is-on"
# Where each signed checkpoint is also written, outside the database: an append-only file of
# JSON lines (keep it where the database's owner cannot rewrite it; see README, The audit trail).
AUDIT_WITNESS = os.environ.get("AUDIT_WITNESS", "").strip() or str(
    BASE_DIR / "var" / "audit-witness.jsonl"
)
if "://" in AUDIT_WITNESS or AUDIT_WITNESS.startswith("mailto:"):
    raise ImproperlyConfigured(
        f"AUDIT_WITNESS must be a file path (no other kind of witness is supported), "
        f"not {AUDIT_WITNESS!r}"
    )
AUDIT_WITNESS = str(BASE_DIR / AUDIT_WITNESS)  # a relative path is taken from the project
# Seconds between signed checkpoints (beat's task and the standby sweeper each write them).
AUDIT_CHECKPOINT_INTERVAL = env_int("AUDIT_CHECKPOINT_INTERVAL", 300)
# `audit_verify` fails when an event or a checkpoint older than this is not covered by a
# checkpoint in the witness: two intervals (one run may be missed) and two minutes for the
# longest transaction and the checkpoint itself.
AUDIT_CHECKPOINT_GRACE = env_int("AUDIT_CHECKPOINT_GRACE", 2 * AUDIT_CHECKPOINT_INTERVAL + 120)
if AUDIT_CHECKPOINT_GRACE <= AUDIT_CHECKPOINT_INTERVAL:
    raise ImproperlyConfigured(
        f"AUDIT_CHECKPOINT_GRACE ({AUDIT_CHECKPOINT_GRACE}) must be longer than "
        f"AUDIT_CHECKPOINT_INTERVAL ({AUDIT_CHECKPOINT_INTERVAL})"
    )

# --- The deadline engine ------------------------------------------------------------------
# Every interval scales with the deadline, so a short test deadline keeps the ladder's precision.
# How often the sweeper runs: 5 s, never more than 1 % of the deadline.
SWEEP_INTERVAL = min(5.0, TAKEDOWN_DEADLINE / 100)
# How long a claimed case or notification is held before another sweep may hand it out again.
SWEEP_LEASE = max(1.0, min(60.0, TAKEDOWN_DEADLINE / 40))
SWEEP_BATCH = env_int("SWEEP_BATCH", 500)
# Retry backoff for removal backends and notifications: doubles from the first to the cap.
RETRY_FIRST = max(0.5, min(10.0, TAKEDOWN_DEADLINE / 200))
RETRY_CAP = max(2.0, min(300.0, TAKEDOWN_DEADLINE / 50))
# How long one case's work may run in one go (a worker's `case_advance`, or the standby
# sweeper) before what is left is handed back: well inside the 45 s soft time limit, even when
# the last call it starts runs into REMOVAL_WEBHOOK_TIMEOUT.
CASE_WORK_BUDGET = 15.0
# The fail-safe disables this many targets per transaction, each committed on its own, so a
# case of any size finishes within its budget and a resumed fail-safe carries on where it was.
FAILSAFE_CHUNK = 100
# A case the fail-safe disabled still needs a decision: reviewers are reminded this often
# (seconds; half the deadline by default) until someone decides.
REVIEW_REMINDER_INTERVAL = env_int(
    "REVIEW_REMINDER_INTERVAL", max(1, TAKEDOWN_DEADLINE // 2), minimum=1
)
# Which removal backends run, in order. `catalogue` takes the page down here; `webhook` tells
# the aggregator's CMS (it needs REMOVAL_WEBHOOK_URL and REMOVAL_WEBHOOK_SECRET). A name that
# is not a backend, or an empty list, stops start-up (and `manage.py check`: rights.E002).
REMOVAL_BACKENDS = env_list("REMOVAL_BACKENDS", ["catalogue"])
if _problem := removal.backends_problem(REMOVAL_BACKENDS):
    raise ImproperlyConfigured(_problem)
REMOVAL_WEBHOOK_URL = os.environ.get("REMOVAL_WEBHOOK_URL", "").strip()
if REMOVAL_WEBHOOK_URL and (
    _problem := removal.webhook_url_problem(REMOVAL_WEBHOOK_URL, debug=DEBUG)
):
    raise ImproperlyConfigured(_problem)
REMOVAL_WEBHOOK_SECRET = os.environ.get("REMOVAL_WEBHOOK_SECRET", "")
# Seconds for the whole call to the CMS (connect, send, answer), not for each read.
REMOVAL_WEBHOOK_TIMEOUT = removal.parse_webhook_timeout(os.environ.get("REMOVAL_WEBHOOK_TIMEOUT"))
# A target being worked on is held longer than any call to a backend can take (the lease is
# renewed just before each remote call), so no second worker makes the same call meanwhile.
TARGET_LEASE = max(SWEEP_LEASE, 2 * REMOVAL_WEBHOOK_TIMEOUT + 5)
if "webhook" in REMOVAL_BACKENDS and not (REMOVAL_WEBHOOK_URL and REMOVAL_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "the webhook removal backend needs REMOVAL_WEBHOOK_URL and REMOVAL_WEBHOOK_SECRET"
    )
# --- Partner webhooks (rights.services.webhooks) -------------------------------------------
# Seconds for the whole call to a partner's endpoint (connect, TLS, send, answer).
PARTNER_WEBHOOK_TIMEOUT = removal.parse_webhook_timeout(
    os.environ.get("PARTNER_WEBHOOK_TIMEOUT"), name="PARTNER_WEBHOOK_TIMEOUT"
)
# Attempts (the first and its retries, with RETRY_FIRST..RETRY_CAP backoff) before a delivery
# is a dead letter that staff put back in line; 20 span about 75 minutes at the 24-hour deadline.
PARTNER_WEBHOOK_MAX_ATTEMPTS = env_int("PARTNER_WEBHOOK_MAX_ATTEMPTS", 20)
if PARTNER_WEBHOOK_MAX_ATTEMPTS > 100:
    raise ImproperlyConfigured(
        f"PARTNER_WEBHOOK_MAX_ATTEMPTS must be at most 100, not {PARTNER_WEBHOOK_MAX_ATTEMPTS}"
    )
# For tests and local runs only: partners' endpoints may be on this machine (127.0.0.0/8, ::1),
# over plain http. Every other private, link-local or reserved address stays refused, always.
PARTNER_WEBHOOK_ALLOW_LOOPBACK = env_bool("PARTNER_WEBHOOK_ALLOW_LOOPBACK", False)

# Staff addresses for the ladder's notifications.
REVIEWERS_EMAIL = os.environ.get("REVIEWERS_EMAIL", "reviewers@localhost")
LEADS_EMAIL = os.environ.get("LEADS_EMAIL", "leads@localhost")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", TAKEDOWN_MAILBOX)
# Locally (DEBUG on) mail is written to files under EMAIL_FILE_PATH instead of being sent.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))

# --- The takedown mailbox (rights/mail) -----------------------------------------------------
# Where `mail_fetch` (and beat, when set) reads mail: imaps://user:password@host/INBOX; empty
# when mail arrives only through the MTA's pipe (`mail_receive`).
MAILBOX_URL = os.environ.get("MAILBOX_URL", "").strip()
if MAILBOX_URL:
    try:
        mailbox.parse_mailbox_url(MAILBOX_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
# Where a fetched message goes once it is stored: it leaves the inbox only then.
MAIL_PROCESSED_FOLDER = os.environ.get("MAIL_PROCESSED_FOLDER", "Processed").strip()
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}", MAIL_PROCESSED_FOLDER):
    raise ImproperlyConfigured(
        "MAIL_PROCESSED_FOLDER must be a folder name of letters, digits and . _ / -, not "
        f"{MAIL_PROCESSED_FOLDER!r}"
    )
# The authserv-id our own receiving server writes in its Authentication-Results headers; only
# those headers are believed (anyone can write one with another id, or ours, before it reaches
# us: the receiver must remove incoming ones that claim ours, as RFC 8601 section 5 asks).
# Empty: no header is believed, and every sender is unverified.
MAIL_AUTHSERV_ID = os.environ.get("MAIL_AUTHSERV_ID", "").strip().lower()
if MAIL_AUTHSERV_ID and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{0,252}", MAIL_AUTHSERV_ID):
    raise ImproperlyConfigured(
        f"MAIL_AUTHSERV_ID must be a host name such as mx.news.example, not {MAIL_AUTHSERV_ID!r}"
    )
# A message's bytes are kept up to this size (and flagged as cut beyond it).
MAIL_MAX_BYTES = env_int("MAIL_MAX_BYTES", 10 * 1024 * 1024, minimum=16 * 1024)
if MAIL_MAX_BYTES > 100 * 1024 * 1024:
    raise ImproperlyConfigured(f"MAIL_MAX_BYTES must be at most 104857600, not {MAIL_MAX_BYTES}")
# Messages from one sender (its +tag aside; verified and unverified counted apart) answered per
# window; beyond it they are stored, still open their case, and are never answered.
MAIL_RATE_PER_SENDER = env_rate("MAIL_RATE_PER_SENDER", "10/h")
# Automatic answers (the help reply) the mailbox sends in one hour, from all senders together:
# past it, messages are kept and not answered, so nobody can make us a mail cannon.
MAIL_ANSWERS_PER_HOUR = env_int("MAIL_ANSWERS_PER_HOUR", 200)
if MAIL_ANSWERS_PER_HOUR > 100_000:
    raise ImproperlyConfigured(
        f"MAIL_ANSWERS_PER_HOUR must be at most 100000, not {MAIL_ANSWERS_PER_HOUR}"
    )
# Seconds between two reads of the mailbox (beat's entry, and `mail_fetch` without --once).
MAIL_POLL_INTERVAL = env_int("MAIL_POLL_INTERVAL", 60)
# Messages one read takes from the mailbox (the rest wait for the next read).
MAIL_FETCH_BATCH = env_int("MAIL_FETCH_BATCH", 50)
# Seconds to wait for the IMAP server on any one exchange.
MAIL_IMAP_TIMEOUT = env_int("MAIL_IMAP_TIMEOUT", 30)

# --- Celery (read by config/celery.py, namespace CELERY_) ----------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged message after the visibility timeout; every time limit
# stays well below it so a running task is never handed to a second worker.
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_SOFT_TIME_LIMIT = 45
# Publishing is a fast path only (the sweeper finds what was not published), so a publish fails
# fast when the broker is down instead of holding a web request for seconds. The worker's own
# consumer reconnects on its own terms (broker_connection_max_retries), unaffected.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# On a lost broker connection, stop running tasks rather than finish them unacknowledged: every
# task is idempotent and the sweeper hands the work out again.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TIMEZONE = "UTC"
# Three queues, all consumed by every worker, which takes from them in turn: `sweep` carries only
# the sweeps, `clock` the cases and notifications they hand out (ladder rungs, the fail-safe,
# retries), `celery` the fast path. A backlog of removals and mail never delays the clock, and
# slow work handed out by the clock never makes a sweep expire unrun.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("sweep"), Queue("clock"), Queue("celery"))
CELERY_TASK_ROUTES = {TaskName.SWEEP: {"queue": "sweep"}}
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": TaskName.SWEEP,
        "schedule": SWEEP_INTERVAL,
        # A backlog must not run the same sweep twice in a row.
        "options": {"expires": SWEEP_INTERVAL},
    },
    "audit-checkpoint": {
        "task": TaskName.AUDIT_CHECKPOINT,
        "schedule": AUDIT_CHECKPOINT_INTERVAL,
        "options": {"expires": 60},
    },
    "requesters-retention": {
        "task": TaskName.REQUESTERS_RETENTION,
        "schedule": 3600,
        "options": {"expires": 3600},
    },
    "domains-recheck": {
        "task": TaskName.DOMAINS_RECHECK,
        "schedule": DOMAIN_RECHECK_INTERVAL,
        "options": {"expires": DOMAIN_RECHECK_INTERVAL},
    },
}
# Messages stored but not yet read (a reader that died after storing): read them again.
CELERY_BEAT_SCHEDULE["mail-pending"] = {
    "task": TaskName.MAIL_PENDING,
    "schedule": 60,
    "options": {"expires": 60},
}
if MAILBOX_URL:
    CELERY_BEAT_SCHEDULE["mail-fetch"] = {
        "task": TaskName.MAIL_FETCH,
        "schedule": MAIL_POLL_INTERVAL,
        "options": {"expires": MAIL_POLL_INTERVAL},
    }

# --- The public doors' rate limits (django-ratelimit) --------------------------------------
# Counted in Redis through Django's cache: every web server shares the counters. Nothing else is
# cached, and losing every key loses nothing but the counts.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "rights-cache",
        # A slow or absent Redis answers within half a second; the limits then let requests
        # through (RATELIMIT_FAIL_OPEN, below).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}
RATELIMIT_USE_CACHE = "default"
# A Redis outage must never take the request form down: with no counter to read, the limits let
# the request through (PostgreSQL still records everything, and each door's own checks still
# run). The views also treat any error from the cache as "no counter" (rights.web.limits).
RATELIMIT_FAIL_OPEN = True
# The limits, as a count per second, minute, hour or day ("10/h"). The per-IP limit counts every
# post of the form, mistakes included, so it is set for a household or an office behind one
# address correcting a few; the per-address limit counts complete requests only.
REQUEST_RATE_PER_IP = env_rate("REQUEST_RATE_PER_IP", "30/h")
REQUEST_RATE_PER_EMAIL = env_rate("REQUEST_RATE_PER_EMAIL", "5/h")
# "Lost your link?": the status links go only to the address asked for, at most once an hour.
STATUS_LINKS_RATE_PER_IP = env_rate("STATUS_LINKS_RATE_PER_IP", "10/h")
STATUS_LINKS_RATE_PER_EMAIL = env_rate("STATUS_LINKS_RATE_PER_EMAIL", "3/h")
# Pressing "Confirm" on a confirmation link (links are signed; this stops guessing at scale).
CONFIRM_RATE_PER_IP = env_rate("CONFIRM_RATE_PER_IP", "30/h")
# Whose address a limit counts: the connection's (REMOTE_ADDR). Behind a reverse proxy every
# request comes from the proxy, so set TRUST_X_FORWARDED_FOR=1 there, and only there: the
# address is then the last one in X-Forwarded-For (the one our own proxy added; anything before
# it is what the client claimed). Without a proxy that header is the client's to forge.
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
if TRUST_X_FORWARDED_FOR:
    RATELIMIT_IP_META_KEY = "rights.web.limits.forwarded_client_ip"
# django-ratelimit lists the cache backends it has tested, and Django's own Redis backend (an
# atomic INCR on a shared server) is not among them yet.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

# --- The partner API (rights/api) -----------------------------------------------------------
# Requests per key, counted in the Redis cache: a count per second, minute, hour or day.
PARTNER_API_RATE = env_rate("PARTNER_API_RATE", "1200/m")
if not re.fullmatch(r"[1-9][0-9]*/[smhd]", PARTNER_API_RATE):
    raise ImproperlyConfigured(
        "PARTNER_API_RATE must be a count per s, m, h or d such as 1200/m, "
        f"not {PARTNER_API_RATE!r}"
    )

# The largest request body read, in bytes (Django's DATA_UPLOAD_MAX_MEMORY_SIZE). The API's
# largest lawful call, a batch of 1,000 URLs of the longest length with 100 explanations of the
# longest, is under 7 MB; a larger body is answered 413 (rights.api.errors).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY", 8 * 1024 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: a form-encoded or multipart body is a 415, not a differently shaped request.
    "DEFAULT_PARSER_CLASSES": ["rights.api.parsers.JSONParser"],
    # Partner keys only, and nothing allowed unless a view says who may (rights.api.auth).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rights.api.auth.PartnerKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rights.api.auth.TakedownsScope"],
    "DEFAULT_THROTTLE_CLASSES": ["rights.api.auth.PartnerKeyThrottle"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "rights.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Takedown partner API",
    "DESCRIPTION": """\
File takedown requests for your outlet's content, follow them to their outcome, and ask whether
URLs may be published. Send your key as `Authorization: Bearer <key>`. Every error is RFC 9457
problem details (`application/problem+json`) naming the fields at fault. Send bodies as JSON with
a `Content-Length` (a chunked body is a 411; one over 8 MiB is a 413).

**Batches** answer 200 as a whole; each item's own status (201, 200 for a retry, 4xx with its
problem) is in `results`, in order. **Retries** are safe with an idempotency key: the same key and
body return the first case. Withdrawing a case already withdrawn answers 409
`not_withdrawable`: after a lost answer, read the case to see that the first call took.

**Webhooks.** Register one endpoint (`PUT /api/v1/webhook/endpoint`, https on a public address)
and every event of the cases your key filed is POSTed to it as JSON
`{"type", "timestamp", "data"}`, `data` being the case as `GET /api/v1/takedowns/{reference}`
shows it at that moment. Types: `case.received`, `case.approved`, `case.removed`,
`case.disabled` (the fail-safe, pending a decision), `case.rejected` (with the statement of
reasons), `case.restored`, `case.breached`, `case.not_found`, `case.withdrawn`. Each call is
signed per the Standard Webhooks specification (headers `webhook-id`, `webhook-timestamp`,
`webhook-signature`, your `whsec_` secret): verify it with the `standardwebhooks` package,
`Webhook(secret).verify(body, headers)`. Delivery is at least once: a retry of an event carries
the same `webhook-id` (use it to drop duplicates). Answer 2xx within a few seconds; anything else
is retried with a backoff of 10 s doubling to 5 minutes, then kept as a dead letter that staff
can send again (`GET /api/v1/webhook/deliveries` lists each one's state). Events may arrive out
of order (two are often sent at once): order them by `timestamp`, or read the case. Your own
content is approved as it is received, so its `case.received` already shows it approved.
""",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["rights.api.docs.paths_as_named"],
}

# --- Transparency (DSA Art. 17 and 24(5)): the statements' export and the public report -------
# Where `sor_export --submit` sends statements of reasons: the EU DSA transparency database's
# endpoint for several statements at once (POST {"statements": [...]}, at most 100), with
# SOR_SUBMIT_TOKEN as its bearer token. https, or plain http to this machine (or with DEBUG on).
SOR_SUBMIT_URL = os.environ.get("SOR_SUBMIT_URL", "").strip()
if SOR_SUBMIT_URL:
    _sor_url = urlsplit(SOR_SUBMIT_URL)
    if _sor_url.scheme not in {"http", "https"} or not _sor_url.hostname:
        raise ImproperlyConfigured(f"SOR_SUBMIT_URL must be an http(s) URL, not {SOR_SUBMIT_URL!r}")
    if _sor_url.scheme == "http" and not DEBUG and _sor_url.hostname not in LOOPBACK_HOSTS:
        raise ImproperlyConfigured(
            "SOR_SUBMIT_URL must use https when DEBUG is off (it carries the bearer token)"
        )
SOR_SUBMIT_TOKEN = os.environ.get("SOR_SUBMIT_TOKEN", "")
# Seconds for one call to the database, from 1 to 300.
SOR_SUBMIT_TIMEOUT = env_int("SOR_SUBMIT_TIMEOUT", 30)
if SOR_SUBMIT_TIMEOUT > 300:
    raise ImproperlyConfigured(f"SOR_SUBMIT_TIMEOUT must be at most 300, not {SOR_SUBMIT_TIMEOUT}")
# The public report (/transparency/): a figure below this is shown as "fewer than N" and never
# broken down further, so that no small group of requests can be told apart (1 to 1000).
TRANSPARENCY_MIN_COUNT = env_int("TRANSPARENCY_MIN_COUNT", 5)
if TRANSPARENCY_MIN_COUNT > 1000:
    raise ImproperlyConfigured(
        f"TRANSPARENCY_MIN_COUNT must be at most 1000, not {TRANSPARENCY_MIN_COUNT}"
    )
# Seconds the report's figures are kept in the cache (0: computed for every request).
TRANSPARENCY_CACHE_SECONDS = env_int("TRANSPARENCY_CACHE_SECONDS", 300, minimum=0)
if TRANSPARENCY_CACHE_SECONDS > 86400:
    raise ImproperlyConfigured(
        f"TRANSPARENCY_CACHE_SECONDS must be at most 86400, not {TRANSPARENCY_CACHE_SECONDS}"
    )
