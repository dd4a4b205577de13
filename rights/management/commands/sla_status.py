"""`python manage.py sla_status`: the deadline engine's figures, as /healthz serves them.

Exits 0 when all is well, 1 when degraded (database or broker down, or the sweeper lagging) or
when something needs a person (a dead letter), so it can stand in a cron job or a monitoring
check. /healthz answers 503 only when degraded: load balancers read it.
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
        if not status.healthy or status.needs_attention:
            raise SystemExit(1)
