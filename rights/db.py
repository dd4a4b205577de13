"""Transaction helpers, and one lookup the ORM lacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connection, transaction
from django.db.models import Lookup
from django.db.models.lookups import In

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


class AnyOf(Lookup):
    """`column = ANY(...)` with the whole list sent as one text parameter, split by PostgreSQL:
    `value__in` with tens of thousands of values costs a placeholder each (to build, send and
    parse), and even an array parameter costs psycopg a quoting pass per element. For text that
    holds no line break (normalised URLs and domains never do; any value that does is dropped,
    since no such value is ever stored). Used as an expression:
    `.filter(AnyOf(F("value"), values))`. SQLite, which has neither, gets `IN`."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        values = [value for value in self.rhs if "\n" not in value]
        if connection.vendor != "postgresql":
            sql, params = In(self.lhs, values).as_sql(compiler, connection)
            return sql, tuple(params)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(string_to_array(%s, E'\\n'))", (*lhs_params, "\n".join(values))
