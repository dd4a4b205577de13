"""Transaction helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction

from rights.models import TakedownRequest


@contextlib.contextmanager
def joined_atomic() -> Iterator[None]:
    """A transaction of its own when there is none; otherwise the caller's, without a savepoint.

    For writers that check everything before their first write: a refusal raised before any
    write leaves the caller's transaction usable, and no SAVEPOINT/RELEASE round trips are paid
    on the hot path. An error after a write propagates into the caller's transaction, which
    rolls back with it, as it must.
    """
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        yield


def case_lock(case_id: int) -> TakedownRequest:
    """Lock one case's row and return it, inside the caller's transaction.

    The lock order every writer keeps: the case first, always; then its targets, then content
    items in id order; audit stream heads are taken as events are appended, under the case
    lock. Two writers therefore serialise on the case and never deadlock. Cases are never
    deleted, so a missing one is a bug: `DoesNotExist` says so.
    """
    return TakedownRequest.objects.select_for_update().get(pk=case_id)


def case_lock_if_any(case_id: int) -> TakedownRequest | None:
    """`case_lock` for a task handed a primary key that may not be (or no longer be) a case."""
    return TakedownRequest.objects.select_for_update().filter(pk=case_id).first()
