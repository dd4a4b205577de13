"""System checks that `manage.py check --deploy` runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


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
