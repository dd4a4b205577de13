"""System checks that `manage.py check --deploy` runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


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
    import sqlite3

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.sqlite3" and sqlite3.sqlite_version_info < (3, 35):
        return [
            Error(
                f"SQLite {sqlite3.sqlite_version} is too old: the audit trail needs 3.35 or later.",
                id="rights.E001",
            )
        ]
    return []
