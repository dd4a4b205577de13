"""`python manage.py sla_status`: the deadline engine's figures, as /healthz serves them.

Exits 0 when healthy, 1 when degraded (database or broker down, or the sweeper lagging), so it
can stand in a cron job or a monitoring check.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from rights import selectors


class Command(BaseCommand):
    help = "Print the deadline engine's health and SLA figures as JSON."

    def handle(self, *args: Any, **options: Any) -> None:
        status = selectors.sla_status()
        self.stdout.write(json.dumps(status.as_dict(), indent=2))
        if not status.healthy:
            raise SystemExit(1)
