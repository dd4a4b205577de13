"""The witness outside the database: a database owner cannot cut the trail's tail, delete the
checkpoints, or let them go stale without `audit_verify` failing; and production refuses to
start without a signing key of its own (rights/audit.py, config/settings.py).

The tampering is what the owner of the tables can do on real PostgreSQL: switch the append-only
triggers off, delete and rewrite rows, reset a stream's head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connection, connections
from django.test import override_settings

from rights import audit
from rights.audit import GENESIS, AuditBroken, WitnessError, event_hash
from rights.models import AuditCheckpoint, AuditEvent, AuditStream
from tests.integration.test_settings import manage

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(
    "postgresql" not in connection.settings_dict["ENGINE"],
    reason="tampering as the tables' owner needs PostgreSQL (ALTER TABLE ... DISABLE TRIGGER)",
)

ROOT = Path(__file__).resolve().parents[2]
STREAM = "case:TD-RESTORE1"
T0 = datetime.fromisoformat("2031-03-04T09:00:00+00:00")


# --- Helpers -----------------------------------------------------------------------------


def sql(statement: str, params: Any = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def as_owner(table: str, statement: str, params: Any = None) -> None:
    """What the tables' owner can do whatever the triggers say: switch them off, edit, on."""
    sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    sql(statement, params)
    sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def grace() -> timedelta:
    return timedelta(seconds=settings.AUDIT_CHECKPOINT_GRACE)


def witness_path() -> Path:
    return Path(settings.AUDIT_WITNESS)


def witness_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in witness_path().read_text().splitlines()]


def case_history(stream: str = STREAM, steps: range = range(1, 6)) -> list[AuditEvent]:
    """A case's events, with some traffic in the system stream beside them."""
    events = []
    for n in steps:
        events.append(audit.append(stream=stream, actor="staff:1", action=f"case.step{n}"))
        audit.append(stream="system", actor="system:sweeper", action="sweep", data={"n": n})
    return events


def signed() -> AuditCheckpoint:
    checkpoint = audit.checkpoint_create()
    assert checkpoint is not None
    return checkpoint


def rechain(stream: str, start: int, change: dict[str, Any]) -> None:
    """The forger's best: edit event `start`, recompute every later hash, fix the head row."""
    previous = AuditEvent.objects.get(stream=stream, seq=start - 1).hash if start > 1 else GENESIS
    for event in AuditEvent.objects.filter(stream=stream, seq__gte=start).order_by("seq"):
        if event.seq == start:
            for name, value in change.items():
                setattr(event, name, value)
        event.prev_hash = previous
        event.hash = event_hash(event)
        as_owner(
            "rights_auditevent",
            "UPDATE rights_auditevent SET data=%s::jsonb, prev_hash=%s, hash=%s WHERE id=%s",
            [json.dumps(event.data), event.prev_hash, event.hash, event.pk],
        )
        previous = event.hash
    AuditStream.objects.filter(name=stream).update(head_hash=previous)


@pytest.fixture
def at_t0() -> Any:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


# --- The attack: the newest checkpoint and the tail after the one before ----------


@on_postgres
def test_cut_tail_with_its_checkpoint_and_reset_head_fails(run_command: Any) -> None:
    case_history()
    first = signed()
    restored = audit.append(stream=STREAM, actor="staff:7", action="case.restored")
    audit.append(stream=STREAM, actor="system:enforcement", action="content.restored")
    second = signed()
    assert second.heads[STREAM] == [7, AuditEvent.objects.get(stream=STREAM, seq=7).hash]
    assert run_command("audit_verify").code == 0
    assert [line["id"] for line in witness_lines()] == [first.pk, second.pk]

    # The staff restore decision goes without trace: the newest checkpoint, the events written
    # after the one before, and the stream's head put back where the earlier checkpoint saw it.
    as_owner(
        "rights_auditcheckpoint", "DELETE FROM rights_auditcheckpoint WHERE id = %s", [second.pk]
    )
    as_owner(
        "rights_auditevent",
        "DELETE FROM rights_auditevent WHERE stream = %s AND seq > 5",
        [STREAM],
    )
    seq, head_hash = first.heads[STREAM]
    AuditStream.objects.filter(name=STREAM).update(seq=seq, head_hash=head_hash)
    assert not AuditEvent.objects.filter(pk=restored.pk).exists()
    # What the database still holds is consistent: chains, heads, signatures ...
    database_only = audit.MemoryWitness(
        [audit.WitnessRecord.of(AuditCheckpoint.objects.get(), GENESIS)]
    )
    audit.verify(witness=database_only)

    # ... but the witness outside it recorded the checkpoint that is gone.
    result = run_command("audit_verify")
    assert result.code == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith(f"audit trail BROKEN: the witness {witness_path()}: line 2 ")
    assert f"records checkpoint {second.pk} of " in line
    assert "which the database does not hold" in line
    assert f"events written after checkpoint {first.pk} may have been cut" in line

    # Nor will the next checkpoint paper over it: nothing is signed, nothing is written.
    before = witness_path().read_bytes()
    refused = run_command("audit_checkpoint")
    assert refused.code == 1
    assert f"ends with checkpoint {second.pk}" in refused.stderr
    assert "which this database does not hold" in refused.stderr
    assert AuditCheckpoint.objects.count() == 1
    assert witness_path().read_bytes() == before


@on_postgres
def test_all_checkpoints_deleted_and_a_stream_rewritten_fails(run_command: Any) -> None:
    case_history()
    signed()
    audit.append(stream=STREAM, actor="staff:7", action="case.approved")
    signed()
    as_owner("rights_auditcheckpoint", "DELETE FROM rights_auditcheckpoint")
    rechain(STREAM, 1, {"data": {"rewritten": True}})
    # Consistent as far as the database alone can tell.
    audit.verify(witness=audit.MemoryWitness())

    result = run_command("audit_verify")
    assert result.code == 1
    assert "line 1 records checkpoint" in result.stderr
    assert "which the database does not hold" in result.stderr
    assert "any event may have been rewritten" in result.stderr


@on_postgres
def test_no_checkpoint_at_all_for_events_older_than_the_grace_fails(
    run_command: Any, at_t0: Any
) -> None:
    """Without a witness line to compare with (none was ever written, or it is not kept), a
    trail with no checkpoints still fails once its events are older than the grace."""
    events = case_history()
    at_t0.shift(grace() - timedelta(seconds=1))
    assert run_command("audit_verify").code == 0  # a live system, not yet checkpointed
    at_t0.shift(timedelta(seconds=2))
    result = run_command("audit_verify")
    assert result.code == 1
    assert f"event id={events[0].pk} (stream {STREAM!r}, seq 1)" in result.stderr
    assert "no checkpoint in the witness covers it (10 such events)" in result.stderr
    assert "the database holds no signed checkpoint at all" in result.stderr


# --- Stale checkpoints, and a live trail ------------------------------------------------


@on_postgres
def test_stale_checkpoint_fails_until_a_new_one_is_written(run_command: Any, at_t0: Any) -> None:
    case_history()
    signed()
    at_t0.shift(timedelta(minutes=1))
    late = audit.append(stream=STREAM, actor="staff:7", action="case.restored")
    at_t0.shift(grace())
    assert run_command("audit_verify").code == 0  # `late` is just inside the grace
    at_t0.shift(timedelta(minutes=1, seconds=1))

    result = run_command("audit_verify")
    assert result.code == 1
    assert f"event id={late.pk} (stream {STREAM!r}, seq 6)" in result.stderr
    assert "(1 such event): checkpoints are not being written" in result.stderr

    signed()
    assert run_command("audit_verify").code == 0


@on_postgres
def test_live_trail_with_recent_events_not_yet_checkpointed_passes(
    run_command: Any, at_t0: Any
) -> None:
    case_history()
    first = signed()
    at_t0.shift(grace() + timedelta(hours=1))
    case_history(stream="case:TD-RECENT1")
    audit.append(stream=STREAM, actor="staff:7", action="case.appealed")
    result = run_command("audit_verify")
    assert result.code == 0, result.stderr
    total = AuditEvent.objects.count()
    assert result.stdout.strip() == (
        f"audit trail intact: {total} events in 3 streams verified (1 signed checkpoint), "
        f"1 of them in the witness {witness_path()}"
    )
    assert [line["id"] for line in witness_lines()] == [first.pk]


@on_postgres
def test_head_signed_behind_an_earlier_checkpoint_fails() -> None:
    case_history()
    first = signed()
    as_owner(
        "rights_auditevent", "DELETE FROM rights_auditevent WHERE stream = %s AND seq = 5", [STREAM]
    )
    four = AuditEvent.objects.get(stream=STREAM, seq=4)
    AuditStream.objects.filter(name=STREAM).update(seq=4, head_hash=four.hash)
    later = signed()  # whoever holds the key signs the shortened stream
    assert later.heads[STREAM] == [4, four.hash]
    with pytest.raises(AuditBroken) as excinfo:
        audit.verify()
    assert excinfo.value.stream == "checkpoints"
    assert str(excinfo.value) == (
        f"stream 'checkpoints': checkpoint {later.pk} signs stream {STREAM!r} up to #4, behind "
        f"#5 signed by checkpoint {first.pk} (the stream's head was moved back)"
    )


# --- The witness itself: missing, cut, edited ---------------------------------------------


def two_checkpoints() -> tuple[AuditCheckpoint, AuditCheckpoint]:
    case_history()
    first = signed()
    audit.append(stream=STREAM, actor="staff:7", action="case.approved")
    return first, signed()


def test_missing_witness_fails(run_command: Any) -> None:
    two_checkpoints()
    witness_path().unlink()
    result = run_command("audit_verify")
    assert result.code == 1
    assert f"the witness {witness_path()}: does not exist, but the database holds signed" in (
        result.stderr
    )
    # The checkpoint writer does not begin a new witness behind anyone's back either.
    refused = run_command("audit_checkpoint")
    assert refused.code == 1
    assert "does not exist, but the database holds signed checkpoints" in refused.stderr
    assert "--start-witness" in refused.stderr
    assert not witness_path().exists()


def test_witness_cut_in_the_middle_of_a_line_fails(run_command: Any) -> None:
    two_checkpoints()
    size = witness_path().stat().st_size
    with witness_path().open("r+b") as file:
        file.truncate(size - 10)
    result = run_command("audit_verify")
    assert result.code == 1
    assert "line 2: the line is incomplete" in result.stderr
    refused = run_command("audit_checkpoint")
    assert refused.code == 1
    assert "the last line of the witness" in refused.stderr


def test_witness_lacking_its_last_line_fails_after_the_grace(run_command: Any, at_t0: Any) -> None:
    _, second = two_checkpoints()
    lines = witness_path().read_bytes().splitlines(keepends=True)
    witness_path().write_bytes(b"".join(lines[:-1]))
    at_t0.shift(grace() + timedelta(seconds=1))
    result = run_command("audit_verify")
    assert result.code == 1
    assert f"lacks checkpoint {second.pk} of " in result.stderr
    assert "older than the grace" in result.stderr


def test_witness_lacking_a_line_in_the_middle_fails(run_command: Any) -> None:
    _, second = two_checkpoints()
    audit.append(stream=STREAM, actor="staff:7", action="case.closed")
    signed()
    lines = witness_path().read_bytes().splitlines(keepends=True)
    witness_path().write_bytes(lines[0] + lines[2])
    result = run_command("audit_verify")
    assert result.code == 1
    assert (
        f"line 2 records checkpoint {second.pk + 1} where checkpoint {second.pk} was expected"
    ) in result.stderr


@pytest.mark.parametrize("field", ["heads", "signature", "created_at", "previous"])
def test_edited_witness_line_fails(run_command: Any, field: str) -> None:
    first, _ = two_checkpoints()
    lines = witness_lines()
    record = lines[0]
    if field == "heads":
        record["heads"][STREAM][0] = 4
    elif field == "created_at":
        record["created_at"] = "2020-01-01T00:00:00.000000Z"
    else:
        record[field] = "f" * 64
    witness_path().write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_command("audit_verify")
    assert result.code == 1
    assert f"checkpoint {first.pk} differs from line 1 of the witness" in result.stderr
    assert f"({field})" in result.stderr


def test_witness_line_that_is_not_a_record_fails(run_command: Any) -> None:
    two_checkpoints()
    with witness_path().open("ab") as file:
        file.write(b'{"v": 1, "id": "three"}\n')
    result = run_command("audit_verify")
    assert result.code == 1
    assert "line 3: a record has exactly the fields" in result.stderr


def test_witness_of_another_database_is_refused(run_command: Any, tmp_path: Path) -> None:
    """A witness belongs to one database: pointing a fresh one at an old witness is refused."""
    two_checkpoints()
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_bytes(
        json.dumps(
            {
                "v": 1,
                "id": 10**9,
                "created_at": "2020-01-01T00:00:00.000000Z",
                "heads": {},
                "previous": GENESIS,
                "digest": "a" * 64,
                "signature": "b" * 64,
            }
        ).encode()
        + b"\n"
    )
    with override_settings(AUDIT_WITNESS=str(foreign)):
        result = run_command("audit_checkpoint")
    assert result.code == 1
    assert f"ends with checkpoint {10**9}" in result.stderr
    assert "a new database needs a new witness" in result.stderr


# --- Writing the witness ------------------------------------------------------------------


def test_witness_lines_can_be_checked_without_the_database() -> None:
    """Each line holds what its checkpoint signed: an auditor with the key and the witness
    alone can recompute every digest and signature and follow the chain."""
    two_checkpoints()
    assert not witness_path().read_bytes().startswith(b"\n")
    previous = GENESIS
    key = settings.AUDIT_SIGNING_KEY.encode()
    for line in witness_lines():
        assert set(line) == {"v", "id", "created_at", "heads", "previous", "digest", "signature"}
        assert line["previous"] == previous
        body = {"created_at": line["created_at"], "heads": line["heads"], "previous": previous}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == line["digest"]
        signature = hmac.new(key, line["digest"].encode(), hashlib.sha256).hexdigest()
        assert signature == line["signature"]
        previous = line["signature"]
    for name, (seq, head_hash) in witness_lines()[-1]["heads"].items():
        assert AuditEvent.objects.get(stream=name, seq=seq).hash == head_hash


def test_first_checkpoint_creates_the_witness_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "witness.jsonl"
    case_history()
    with override_settings(AUDIT_WITNESS=str(path)):
        checkpoint = signed()
        assert [line["id"] for line in witness_lines()] == [checkpoint.pk]
        assert audit.verify().witnessed == 1


def test_nothing_to_sign_writes_nothing(run_command: Any) -> None:
    result = run_command("audit_checkpoint")
    assert result.code == 0
    assert "nothing to sign" in result.stdout
    assert witness_path().read_bytes() == b""  # begun, empty: the first checkpoint's place


@on_postgres
def test_a_checkpoint_the_witness_could_not_take_counts_for_nothing_until_written_late(
    run_command: Any, at_t0: Any
) -> None:
    first, _ = two_checkpoints()
    audit.append(stream=STREAM, actor="staff:7", action="case.restored")
    # The witness's disk is full (a real ENOSPC): the checkpoint is signed in the database
    # but cannot be written where it would count.
    with override_settings(AUDIT_WITNESS="/dev/full"), pytest.raises(WitnessError) as excinfo:
        audit.checkpoint_create()
    assert "cannot write the witness /dev/full: No space left on device" in str(excinfo.value)
    unwitnessed = AuditCheckpoint.objects.order_by("-pk").first()
    assert unwitnessed is not None
    assert len(witness_lines()) == 2

    ok = run_command("audit_verify")  # within the grace: it may yet be written
    assert ok.code == 0
    assert "(3 signed checkpoints), 2 of them in the witness" in ok.stdout
    at_t0.shift(grace() + timedelta(seconds=1))
    late = run_command("audit_verify")
    assert late.code == 1
    assert f"lacks checkpoint {unwitnessed.pk}" in late.stderr

    # The next run writes it, late, before its own.
    newest = signed()
    assert [line["id"] for line in witness_lines()][-2:] == [unwitnessed.pk, newest.pk]
    assert run_command("audit_verify").code == 0
    assert first.pk == witness_lines()[0]["id"]


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checkpoint_writers_keep_one_witness_in_order() -> None:
    """Beat's task and the standby sweeper may sign at the same moment, on two connections:
    the witness gets every checkpoint once, in the order of the chain."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                audit.append(stream=f"case:TD-RACE{n}", actor="system:test", action=f"step{i}")
                audit.checkpoint_create()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [line["id"] for line in witness_lines()]
    assert ids == list(AuditCheckpoint.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 20
    result = audit.verify(now=audit.clock.now())
    assert (result.checkpoints, result.witnessed) == (20, 20)


def manage_on_this_database(*args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py` in a process of its own, on the test database, with no broker."""
    db = connection.settings_dict
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": "redis://127.0.0.1:1/0",  # nothing listens there
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_standby_sweeper_signs_into_the_witness_and_the_cut_is_caught() -> None:
    """The standby sweeper (no broker) writes checkpoints to the same witness, and the
    operator's `audit_verify`, run on its own, catches the issue's attack on them."""
    case_history()
    swept = manage_on_this_database("sweep", "--once")
    assert swept.returncode == 0, swept.stderr
    [first] = AuditCheckpoint.objects.all()
    assert [line["id"] for line in witness_lines()] == [first.pk]
    audit.append(stream=STREAM, actor="staff:7", action="case.restored")
    swept = manage_on_this_database("sweep", "--once")
    assert swept.returncode == 0, swept.stderr
    second = AuditCheckpoint.objects.order_by("-pk").first()
    assert second is not None
    assert second.heads[STREAM][0] == 6
    assert [line["id"] for line in witness_lines()] == [first.pk, second.pk]
    intact = manage_on_this_database("audit_verify")
    assert intact.returncode == 0, intact.stderr
    assert "(2 signed checkpoints), 2 of them in the witness" in intact.stdout

    as_owner(
        "rights_auditcheckpoint", "DELETE FROM rights_auditcheckpoint WHERE id = %s", [second.pk]
    )
    as_owner(
        "rights_auditevent", "DELETE FROM rights_auditevent WHERE stream = %s AND seq = 6", [STREAM]
    )
    AuditStream.objects.filter(name=STREAM).update(
        seq=first.heads[STREAM][0], head_hash=first.heads[STREAM][1]
    )
    broken = manage_on_this_database("audit_verify")
    assert broken.returncode == 1
    assert f"records checkpoint {second.pk} of " in broken.stderr
    assert "which the database does not hold" in broken.stderr


# --- Beginning a witness for a trail that has checkpoints already ---------------------------


def test_start_witness_for_an_existing_trail(run_command: Any) -> None:
    two_checkpoints()
    witness_path().unlink()  # as after an upgrade from a version without a witness
    begun = run_command("audit_checkpoint", "--start-witness")
    assert begun.code == 0, begun.stderr
    assert f"began the witness {witness_path()} with 2 checkpoints" in begun.stdout
    assert len(witness_lines()) == 2
    assert run_command("audit_verify").code == 0
    again = run_command("audit_checkpoint", "--start-witness")
    assert again.code == 1
    assert "exists already" in again.stderr


@on_postgres
def test_start_witness_refuses_a_trail_that_does_not_verify(run_command: Any) -> None:
    two_checkpoints()
    witness_path().unlink()
    rechain(STREAM, 2, {"data": {"rewritten": True}})
    result = run_command("audit_checkpoint", "--start-witness")
    assert result.code == 1
    assert "audit trail BROKEN" in result.stderr
    assert "differs from what a signed checkpoint recorded" in result.stderr
    assert not witness_path().exists()


# --- Production settings ------------------------------------------------------------------


SECRET = secrets.token_urlsafe(50)


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "AUDIT_SIGNING_KEY must be set when DEBUG is off"),
        ({"AUDIT_SIGNING_KEY": SECRET}, "AUDIT_SIGNING_KEY must differ from SECRET_KEY"),
        ({"AUDIT_SIGNING_KEY": "short"}, "AUDIT_SIGNING_KEY must be a random key of at least"),
        ({"AUDIT_SIGNING_KEY": " " * 40}, "AUDIT_SIGNING_KEY must be a random key of at least"),
        ({"AUDIT_SIGNING_KEY": SECRET + " "}, "AUDIT_SIGNING_KEY must differ from SECRET_KEY"),
        (
            {"AUDIT_SIGNING_KEY": secrets.token_urlsafe(40), "AUDIT_WITNESS": "s3://b/w.jsonl"},
            "AUDIT_WITNESS must be a file path",
        ),
        (
            {
                "AUDIT_SIGNING_KEY": secrets.token_urlsafe(40),
                "AUDIT_CHECKPOINT_INTERVAL": "600",
                "AUDIT_CHECKPOINT_GRACE": "600",
            },
            "AUDIT_CHECKPOINT_GRACE (600) must be longer than AUDIT_CHECKPOINT_INTERVAL (600)",
        ),
    ],
    ids=[
        "missing",
        "same-as-secret-key",
        "short",
        "blanks",
        "secret-key-and-a-blank",
        "witness-not-a-path",
        "grace-too-short",
    ],
)
def test_production_refuses_to_start_without_an_audit_key_of_its_own(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = manage(
        "check",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="rights.example",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **env,
    )
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.smoke
def test_production_starts_with_a_key_of_its_own_and_debug_needs_none(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    own = manage(
        "check",
        SECRET_KEY=SECRET,
        AUDIT_SIGNING_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="rights.example",
        DATABASE_URL=db,
    )
    assert own.returncode == 0, own.stderr
    debug = manage("check", DEBUG="1", DATABASE_URL=db)
    assert debug.returncode == 0, debug.stderr
