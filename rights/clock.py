"""The service's clock: the database's, not a host's.

Deadlines, leases and due times are compared across every host that runs a worker, a sweeper or
the web; a host whose clock runs fast would otherwise fire rungs early, or hold leases past a
deadline. PostgreSQL's `statement_timestamp()` is the one clock they all share. SQLite runs on
one machine only, where the host's clock is that machine's clock.

Tests that move time in-process (time-machine) replace `now` with `django.utils.timezone.now`
through the fixture in tests/conftest.py; the real clock is tested on its own.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone


def database_now() -> datetime:
    """The database server's current time (aware, UTC)."""
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        row = cursor.fetchone()
    assert row is not None
    moment: datetime = row[0]
    return moment


def now() -> datetime:
    """Now, by the clock every host shares. Use this for anything compared with a deadline."""
    return database_now()
