"""System checks that `manage.py check` (and `--deploy`) runs."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError

from rights import removal
from rights.models import Suppression


@register(Tags.database, deploy=True)
def check_production_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        return [
            Warning(
                "SQLite ignores SELECT ... FOR UPDATE, so the deadline engine's row locks and "
                "leases do not hold between processes.",
                hint="Set DATABASE_URL to a PostgreSQL database in production.",
                id="rights.W001",
            )
        ]
    return []


@register(Tags.database)
def check_sqlite_version(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The audit trail takes sequence numbers with UPDATE ... RETURNING (SQLite 3.35+)."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.sqlite3" and sqlite3.sqlite_version_info < (3, 35):
        return [
            Error(
                f"SQLite {sqlite3.sqlite_version} is too old: the audit trail needs 3.35 or later.",
                id="rights.E001",
            )
        ]
    return []


@register()
def check_removal_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The deadline engine's removal settings, checked again wherever settings come from.

    config/settings.py refuses bad values from the environment; this also catches a settings
    module that sets them some other way, on every `manage.py check` and `runserver`.
    """
    errors: list[CheckMessage] = []
    names = settings.REMOVAL_BACKENDS
    problem = removal.backends_problem(list(names) if isinstance(names, list | tuple) else [])
    if problem is not None:
        errors.append(Error(problem, id="rights.E002"))
    url = settings.REMOVAL_WEBHOOK_URL
    if url and (problem := removal.webhook_url_problem(url, debug=settings.DEBUG)):
        errors.append(Error(problem, id="rights.E003"))
    if "webhook" in names and not (url and settings.REMOVAL_WEBHOOK_SECRET):
        errors.append(
            Error(
                "the webhook removal backend needs REMOVAL_WEBHOOK_URL and REMOVAL_WEBHOOK_SECRET",
                id="rights.E003",
            )
        )
    timeout = settings.REMOVAL_WEBHOOK_TIMEOUT
    if (
        not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not removal.WEBHOOK_TIMEOUT_MIN <= timeout <= removal.WEBHOOK_TIMEOUT_MAX
    ):
        errors.append(
            Error(
                f"REMOVAL_WEBHOOK_TIMEOUT must be a number of seconds from "
                f"{removal.WEBHOOK_TIMEOUT_MIN} to {removal.WEBHOOK_TIMEOUT_MAX:g}, "
                f"not {timeout!r}",
                id="rights.E004",
            )
        )
    elif timeout >= settings.TARGET_LEASE:
        errors.append(
            Error(
                "TARGET_LEASE must be longer than REMOVAL_WEBHOOK_TIMEOUT, or a second worker "
                "could make the same call while the first is still waiting",
                id="rights.E004",
            )
        )
    return errors


@register(deploy=True)
def check_partner_webhook_loopback(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """PARTNER_WEBHOOK_ALLOW_LOOPBACK is for tests and local runs: in production it lets any
    partner point the workers at services on their own machine over plain http."""
    if settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK and not settings.DEBUG:
        return [
            Warning(
                "PARTNER_WEBHOOK_ALLOW_LOOPBACK is on with DEBUG off: partners may register "
                "webhook endpoints on this machine (127.0.0.0/8, ::1), over plain http.",
                hint="Unset PARTNER_WEBHOOK_ALLOW_LOOPBACK outside tests and local runs.",
                id="rights.W002",
            )
        ]
    return []


@register(Tags.database)
def check_suppression_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Rules whose lookup keys another version of the key functions or of the Public Suffix
    List computed: until they are computed again, a URL they cover may be allowed."""
    try:
        stale = Suppression.objects.stale().count()
    except DatabaseError:
        return []  # not migrated yet: `migrate` computes them
    if stale:
        return [
            Warning(
                f"{stale} suppression rule{'s' if stale != 1 else ''} have lookup keys of "
                "another version: the publication check may allow what they cover.",
                hint="Run `python manage.py migrate` or `python manage.py suppression_rekey`.",
                id="rights.W003",
            )
        ]
    return []
