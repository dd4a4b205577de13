"""Publishing tasks: a fast path only.

Every task is published after the transaction that made its work due has committed. If the
broker is unreachable the publish is logged and dropped: the work is already in the database,
and the sweeper hands it out once the broker answers again.
"""

from __future__ import annotations

import logging

from django.db import transaction

from config.celery import app
from rights.task_names import TaskName

logger = logging.getLogger(__name__)


def publish_now(task_name: TaskName, *args: int, queue: str | None = None) -> bool:
    try:
        app.send_task(task_name, args=list(args), queue=queue)
    except Exception as exc:  # the broker's errors vary by transport; none may escape
        logger.warning(
            "could not publish %s%r (%s); the sweeper will hand it out",
            task_name,
            args,
            type(exc).__name__,
        )
        return False
    return True


def enqueue(task_name: TaskName, *args: int) -> None:
    """Publish `task_name(*args)` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish_now(task_name, *args))
