"""`python manage.py sweep [--once]`: the sweeper, run in this process, without the broker.

Beat and the workers need Redis. This command claims due work exactly as the `rights.sweep`
task does (SKIP LOCKED and leases, so it runs safely beside beat and the workers) and does the
work itself: ladder rungs, the fail-safe, removals, notifications. Run it as a standby service
so that the clock keeps ticking, and the fail-safe keeps its promise, while Redis is down.

It keeps a worker's budget and isolation. Each sweep first brings every claimed case's ladder up
to date (the fail-safe included, in chunks, within CASE_WORK_BUDGET per case), and only then
does removal work and mail, which may wait on a slow CMS or mail server. Without `--once` that
slower work runs on a few threads of its own, so the next sweep's rungs never wait for it; each
case gets CASE_WORK_BUDGET seconds, after which what is left is handed back to a later sweep.
It also writes a signed audit checkpoint every AUDIT_CHECKPOINT_INTERVAL, as beat does.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection

from rights import audit
from rights.services import effects, enforcement, notifications, scheduling

logger = logging.getLogger(__name__)


def case_finish(case_id: int, target_ids: list[int]) -> None:
    """A case's removal work within its budget; what is left goes back to a later sweep."""
    left = effects.targets_enforce(target_ids=target_ids, budget_seconds=settings.CASE_WORK_BUDGET)
    if left:
        scheduling.case_hand_back(case_id=case_id)


class SlowWork:
    """Removal work and mail on threads of their own, one job per case or notification.

    A case or notification already queued or running is not queued twice; the sweep that
    skips it leaves it to its lease and `next_check_at`, so nothing is lost.
    """

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sweep-work")
        self.lock = threading.Lock()
        self.busy: set[tuple[str, int]] = set()

    def submit(self, kind: str, pk: int, job: Callable[[], object]) -> bool:
        with self.lock:
            if (kind, pk) in self.busy:
                return False
            self.busy.add((kind, pk))
        self.pool.submit(self._run, kind, pk, job)
        return True

    def _run(self, kind: str, pk: int, job: Callable[[], object]) -> None:
        try:
            close_old_connections()
            job()
        except Exception:  # one bad case must not stop the others
            logger.exception("sweep: %s %s failed; its lease will expire", kind, pk)
        finally:
            with self.lock:
                self.busy.discard((kind, pk))
            connection.close()  # this thread's own connection

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


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
        parser.add_argument(
            "--threads",
            type=int,
            default=2,
            help="threads for removal work and mail, apart from the clock (default: 2)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        once = bool(options["once"])
        slow = None if once else SlowWork(max(1, options["threads"]))
        self.next_checkpoint = time.monotonic()
        if not once:
            logger.info(
                "standby sweeper running: a sweep every %s s, %d work threads, a checkpoint "
                "every %s s; it logs again only when it has work or trouble",
                options["interval"],
                max(1, options["threads"]),
                settings.AUDIT_CHECKPOINT_INTERVAL,
            )
        try:
            while True:
                # A restarted database must not end the process: drop dead connections each
                # round (never from inside a caller's transaction, as when run from a test).
                if not connection.in_atomic_block:
                    close_old_connections()
                try:
                    done = self.sweep(slow)
                    self.checkpoint()
                except DatabaseError:
                    if once:
                        raise
                    logger.exception("sweep failed; trying again in %s s", options["interval"])
                    done = 0
                if once:
                    self.stdout.write(f"swept: {done} item(s) of work done")
                    return
                if done:
                    logger.info("sweep: %d item(s) of work handed out", done)
                time.sleep(options["interval"])
        finally:
            if slow is not None:
                slow.shutdown()

    def sweep(self, slow: SlowWork | None = None) -> int:
        claimed = scheduling.sweep_claim()
        # The clock first: every claimed case's rungs, the fail-safe included, before any
        # removal work, so that one case waiting on a slow CMS never holds up another's ladder.
        owed: dict[int, list[int]] = {}
        for case_id in claimed.cases:
            try:
                targets = enforcement.case_advance(
                    case_id=case_id, failsafe_budget=settings.CASE_WORK_BUDGET
                )
            except Exception:  # one bad case must not stop the clock for the others
                logger.exception("sweep: case %s failed; its lease will expire", case_id)
                continue
            if targets:
                owed[case_id] = targets
        # Then the work that may wait on others' servers, each case within its budget.
        for case_id, targets in owed.items():
            job = functools.partial(case_finish, case_id, targets)
            if slow is not None:
                slow.submit("case", case_id, job)
                continue
            try:
                job()
            except Exception:
                logger.exception("sweep: case %s failed; its lease will expire", case_id)
        for notification_id in claimed.notifications:
            send = functools.partial(
                notifications.notification_send, notification_id=notification_id
            )
            if slow is not None:
                slow.submit("notification", notification_id, send)
            else:
                send()
        return len(claimed.cases) + len(claimed.notifications)

    def checkpoint(self) -> None:
        """A signed audit checkpoint every AUDIT_CHECKPOINT_INTERVAL, as beat schedules them."""
        if time.monotonic() < self.next_checkpoint:
            return
        self.next_checkpoint = time.monotonic() + settings.AUDIT_CHECKPOINT_INTERVAL
        try:
            audit.checkpoint_create()
        except DatabaseError:
            raise
        except Exception:  # the clock goes on; the next interval tries again
            logger.exception("sweep: the audit checkpoint failed")
