"""The outbox: messages (emails, webhook deliveries) written in the transaction of the event they
tell of, each under a key naming that event, so that a retry of the step adds nothing."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError, transaction

from rights.dispatch import enqueue
from rights.models import Notification
from rights.task_names import TaskName


def outbox_add(rows: Sequence[Notification]) -> list[Notification]:
    """Add the messages not in the outbox yet (by key) and publish their sending once the
    transaction commits; the ones added, in order. Two queries for any number of messages."""
    keys = [row.key for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError("one message per key")
    if not rows:
        return []
    present = set(Notification.objects.filter(key__in=keys).values_list("key", flat=True))
    new = [row for row in rows if row.key not in present]
    try:
        with transaction.atomic():
            Notification.objects.bulk_create(new)
    except IntegrityError:
        # A concurrent writer added one of them meanwhile: each on its own, then.
        new = [row for row in new if _add_one(row)]
    for row in new:
        enqueue(TaskName.NOTIFICATION_SEND, row.pk)
    return new


def _add_one(row: Notification) -> bool:
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        return False
    return True
