"""`python manage.py sweep [--once]`: the sweeper, run in this process, without the broker.

Beat and the workers need Redis. This command claims due work exactly as the `rights.sweep`
task does (SKIP LOCKED and leases, so it runs safely beside beat and the workers) and does the
work itself: ladder rungs, the fail-safe, removals, notifications. Run it as a standby service
so that the clock keeps ticking, and the fail-safe keeps its promise, while Redis is down.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection

from rights.services import enforcement, notifications

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the deadline engine's sweeper in this process, with no broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.SWEEP_INTERVAL,
            help="seconds between sweeps (default: SWEEP_INTERVAL)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            # A restarted database must not end the process: drop dead connections each round
            # (never from inside a caller's transaction, as when run from a test).
            if not connection.in_atomic_block:
                close_old_connections()
            try:
                done = self.sweep()
            except DatabaseError:
                if options["once"]:
                    raise
                logger.exception("sweep failed; trying again in %s s", options["interval"])
                done = 0
            if options["once"]:
                self.stdout.write(f"swept: {done} item(s) of work done")
                return
            time.sleep(options["interval"])

    def sweep(self) -> int:
        claimed = enforcement.sweep_claim()
        for case_id in claimed.cases:
            try:
                enforcement.case_work(case_id=case_id)
            except Exception:  # one bad case must not stop the clock for the others
                logger.exception("sweep: case %s failed; its lease will expire", case_id)
        for notification_id in claimed.notifications:
            notifications.notification_send(notification_id=notification_id)
        return len(claimed.cases) + len(claimed.notifications)
