"""Transaction helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection, transaction


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
