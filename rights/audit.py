"""The tamper-evident audit trail: append, canonical encoding, verify, checkpoints.

Canonical encoding of an event (version 1), hashed with SHA-256:

    UTF-8 bytes of JSON, keys sorted, separators "," and ":", no ASCII escaping, of
    {"v": 1, "stream": str, "seq": int, "created_at": "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC),
     "actor": str, "action": str, "data": {...}, "prev_hash": 64 hex digits}

`prev_hash` of a stream's first event is 64 zeros. `data` may hold strings, integers, booleans,
null, lists and objects, never floats (their text form is not stable across databases), and never
raw personal data: events name a requester as `requester:<id>`, and free text (such as a
reviewer's reasons) is recorded only as its keyed digest (`text_digest`).

A checkpoint signs, with HMAC-SHA256 under AUDIT_SIGNING_KEY, the heads of the streams written
since the previous checkpoint and the previous checkpoint's signature, so that rewriting a chain
consistently from some point on still fails verification. Each checkpoint is also written to a
witness outside the database (AUDIT_WITNESS), so that cutting the trail's tail together with the
checkpoints that vouch for it fails verification too.

Witness record (version 1), one line of the same canonical JSON per checkpoint, in order:

    {"v": 1, "id": int, "created_at": str, "heads": {stream: [seq, hash]},
     "previous": the previous checkpoint's signature (64 zeros for the first),
     "digest": SHA-256 of {"created_at", "heads", "previous"}, "signature": HMAC of the digest}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import connection, transaction

from rights import clock
from rights.db import joined_atomic
from rights.models import AuditCheckpoint, AuditEvent, AuditStream, TakedownRequest, Target

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
ENCODING_VERSION = 1
WITNESS_VERSION = 1
SYSTEM_STREAM = "system"
# Checkpoints look back this far past the previous one, so an event whose transaction was still
# open when the previous checkpoint was taken is covered by the next one.
CHECKPOINT_OVERLAP = timedelta(minutes=10)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{path}: NUL characters cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate: the canonical UTF-8 encoding, and so the hash, cannot be computed.
        raise ValueError(f"{path}: not valid Unicode text") from exc


def _check_json_safe(value: Any, path: str = "data") -> None:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        if isinstance(value, str):
            _check_text(value, path)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json_safe(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings")
            _check_text(key, f"{path} key {key!r}")
            _check_json_safe(item, f"{path}.{key}")
        return
    raise ValueError(f"{path}: {type(value).__name__} is not allowed in audit data")


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(
    *,
    stream: str,
    seq: int,
    created_at: datetime,
    actor: str,
    action: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    body = {
        "v": ENCODING_VERSION,
        "stream": stream,
        "seq": seq,
        "created_at": format_time(created_at),
        "actor": actor,
        "action": action,
        "data": data,
        "prev_hash": prev_hash,
    }
    return _json(body).encode("utf-8")


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(
        canonical_bytes(
            stream=event.stream,
            seq=event.seq,
            created_at=event.created_at,
            actor=event.actor,
            action=event.action,
            data=event.data,
            prev_hash=event.prev_hash,
        )
    ).hexdigest()


def text_digest(text: str) -> str:
    """What the trail keeps of free text: proof of what was written, not the words.

    Keyed (HMAC-SHA256 under AUDIT_SIGNING_KEY), so a short text such as "Not the owner."
    cannot be recovered by hashing guesses.
    """
    return hmac.new(
        settings.AUDIT_SIGNING_KEY.encode("utf-8"), text.encode("utf-8"), hashlib.sha256
    ).hexdigest()


def append(
    *, stream: str, actor: str, action: str, data: Mapping[str, Any] | None = None
) -> AuditEvent:
    """Append one event to `stream`, inside the caller's transaction if there is one.

    Writers of the same stream serialise on its head row; different streams never contend.
    """
    return append_many([Entry(stream=stream, actor=actor, action=action, data=data or {})])[0]


@dataclass(frozen=True)
class Entry:
    """One event to append: `append_many` takes a list of them."""

    stream: str
    actor: str
    action: str
    data: Mapping[str, Any] = field(default_factory=dict)


def append_many(entries: Sequence[Entry]) -> list[AuditEvent]:
    """Append `entries`, each to its stream in the order given, inside the caller's transaction
    if there is one: three queries for any number of events in any number of streams.

    Each stream's head row is taken (created for a new stream) and advanced by its count of
    events in one statement, in the streams' name order, so two writers of the same streams
    queue there, one at a time, and never deadlock; the chains cannot fork.
    """
    payloads = [check_data(entry.data) for entry in entries]
    if not entries:
        return []
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.stream] = counts.get(entry.stream, 0) + 1
    names = sorted(counts)
    with joined_atomic():
        heads = _take_many(names, [counts[name] for name in names])
        # The database's clock: `audit_verify` compares it with its own to find events that no
        # checkpoint covers, and a host's clock may be off.
        moment = clock.now()
        chains = {name: (seq - counts[name], prev) for name, (seq, prev) in heads.items()}
        events = []
        for entry, payload in zip(entries, payloads, strict=True):
            last_seq, prev_hash = chains[entry.stream]
            event = AuditEvent(
                stream=entry.stream,
                seq=last_seq + 1,
                created_at=moment,
                actor=entry.actor,
                action=entry.action,
                data=payload,
                prev_hash=prev_hash,
            )
            event.hash = event_hash(event)
            chains[entry.stream] = (event.seq, event.hash)
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        _set_heads({name: chains[name][1] for name in names})
    return events


def _take_many(names: list[str], counts: list[int]) -> dict[str, tuple[int, str]]:
    """Advance each stream's sequence by its count (creating the streams not yet written):
    each stream's new last number and the hash of its head before this append."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            heads = {}
            for name, count in zip(names, counts, strict=True):
                cursor.execute(
                    "INSERT INTO rights_auditstream (name, seq, head_hash) VALUES (%s, 0, %s) "
                    "ON CONFLICT (name) DO NOTHING",
                    [name, GENESIS],
                )
                cursor.execute(
                    "UPDATE rights_auditstream SET seq = seq + %s WHERE name = %s "
                    "RETURNING seq, head_hash",
                    [count, name],
                )
                row = cursor.fetchone()
                heads[name] = (int(row[0]), str(row[1]))
            return heads
        cursor.execute(
            "INSERT INTO rights_auditstream AS s (name, seq, head_hash) "
            "SELECT n, c, %s FROM unnest(%s::text[], %s::int[]) AS v(n, c) ORDER BY n "
            "ON CONFLICT (name) DO UPDATE SET seq = s.seq + EXCLUDED.seq "
            "RETURNING name, seq, head_hash",
            [GENESIS, names, counts],
        )
        return {str(name): (int(seq), str(head)) for name, seq, head in cursor.fetchall()}


def _set_heads(heads: Mapping[str, str]) -> None:
    """Record each stream's new head hash."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for name, head in heads.items():
                cursor.execute(
                    "UPDATE rights_auditstream SET head_hash = %s WHERE name = %s", [head, name]
                )
            return
        cursor.execute(
            "UPDATE rights_auditstream AS s SET head_hash = v.h "
            "FROM unnest(%s::text[], %s::text[]) AS v(n, h) WHERE s.name = v.n",
            [list(heads), list(heads.values())],
        )


def check_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The audit data as it will be stored, or ValueError saying what cannot be."""
    payload: dict[str, Any] = json.loads(_json(dict(data)))
    _check_json_safe(payload)
    return payload


def stream_head_seqs(streams: Iterable[str]) -> dict[str, int]:
    """The sequence number of the newest event in each of `streams` (absent: none yet); one
    query."""
    return dict(AuditStream.objects.filter(name__in=set(streams)).values_list("name", "seq"))


# --- The witness ---------------------------------------------------------------------------
#
# A database owner can delete rows whatever the triggers say (they own the tables). Chains and
# signed checkpoints then catch every edit except one: cutting the tail, with the newest
# checkpoints that vouch for it. So each checkpoint is also written outside the database, to a
# witness the database owner cannot rewrite, as certificate transparency publishes its signed
# tree heads. `verify` demands that the database still holds every checkpoint the witness
# records, unchanged, in the same order.
#
# Ordering: the checkpoint row is committed first, then written to the witness, under the same
# lock that serialises checkpoint writers. A witness line therefore always names a checkpoint
# that exists; a line written before a commit that then failed would be a false alarm for ever.
# When the witness cannot be written, the checkpoint stays in the database but counts for
# nothing (nothing it signs is "covered"), and the next `checkpoint_create` writes it late.


class WitnessError(Exception):
    """The witness cannot be read or written, or it disagrees with the database."""


HEX64 = re.compile(r"[0-9a-f]{64}")
WITNESS_FIELDS = frozenset({"v", "id", "created_at", "heads", "previous", "digest", "signature"})


@dataclass(frozen=True)
class WitnessRecord:
    """One checkpoint as the witness keeps it: enough to check it without the database."""

    id: int
    created_at: str
    heads: dict[str, list[Any]]
    previous: str
    digest: str
    signature: str

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint, previous: str) -> WitnessRecord:
        return cls(
            id=checkpoint.pk,
            created_at=format_time(checkpoint.created_at),
            heads=checkpoint.heads,
            previous=previous,
            digest=checkpoint.digest,
            signature=checkpoint.signature,
        )

    def line(self) -> bytes:
        body = {
            "v": WITNESS_VERSION,
            "id": self.id,
            "created_at": self.created_at,
            "heads": self.heads,
            "previous": self.previous,
            "digest": self.digest,
            "signature": self.signature,
        }
        return _json(body).encode("utf-8") + b"\n"

    @classmethod
    def parse(cls, raw: bytes) -> WitnessRecord:
        """The record on one line (with its newline), or ValueError saying what is wrong."""
        if not raw.endswith(b"\n"):
            raise ValueError("the line is incomplete (a write was torn, or the file was cut)")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ValueError("the line is not JSON") from exc
        if not isinstance(body, dict) or set(body) != WITNESS_FIELDS:
            raise ValueError(f"a record has exactly the fields {', '.join(sorted(WITNESS_FIELDS))}")
        if body["v"] != WITNESS_VERSION:
            raise ValueError(f"unknown record version {body['v']!r}")
        number = body["id"]
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError("the checkpoint id is not a positive whole number")
        for name in ("previous", "digest", "signature"):
            if not isinstance(body[name], str) or not HEX64.fullmatch(body[name]):
                raise ValueError(f"{name} is not 64 hex digits")
        if not isinstance(body["created_at"], str):
            raise ValueError("created_at is not a time")
        heads = body["heads"]
        if not isinstance(heads, dict) or not all(
            isinstance(head, list)
            and len(head) == 2
            and isinstance(head[0], int)
            and isinstance(head[1], str)
            for head in heads.values()
        ):
            raise ValueError("heads is not {stream: [seq, hash]}")
        return cls(
            id=number,
            created_at=body["created_at"],
            heads=heads,
            previous=body["previous"],
            digest=body["digest"],
            signature=body["signature"],
        )

    def differences(self, other: WitnessRecord) -> list[str]:
        return [
            name
            for name in ("created_at", "heads", "previous", "digest", "signature")
            if getattr(self, name) != getattr(other, name)
        ]


class Witness(Protocol):
    """Where checkpoints are also written. A file today; an object store or a transparency log
    would implement the same few operations."""

    location: str

    def exists(self) -> bool: ...

    def create(self) -> None:
        """Begin an empty witness; fail if one exists."""

    def newest(self) -> WitnessRecord | None:
        """The last record, None when there is none yet; WitnessError if it cannot be read."""

    def mark(self) -> int | None:
        """Where the witness ends now (None: it does not exist). `records(upto=mark)` later
        yields exactly the records written before this call."""

    def records(self, *, upto: int) -> Iterator[tuple[int, WitnessRecord]]:
        """(line number, record) in order; WitnessError naming the first bad line."""

    def append(self, records: Sequence[WitnessRecord]) -> None:
        """Write durably, after the end; never create the witness."""


class FileWitness:
    """JSON lines in an append-only file (see the README for keeping it out of reach)."""

    TAIL_CHUNK = 64 * 1024

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def _failed(self, doing: str, exc: OSError) -> WitnessError:
        return WitnessError(f"cannot {doing} the witness {self.location}: {exc.strerror or exc}")

    def exists(self) -> bool:
        return self.mark() is not None

    def create(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            # The new name itself must survive a crash, or the next run finds no witness.
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise self._failed("create", exc) from exc

    def mark(self) -> int | None:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed("read", exc) from exc

    def newest(self) -> WitnessRecord | None:
        try:
            with self.path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                if size == 0:
                    return None
                # Read backwards from the end until the line before the last one ends.
                tail = b""
                position = size
                while True:
                    start = max(0, position - self.TAIL_CHUNK)
                    file.seek(start)
                    tail = file.read(position - start) + tail
                    cut = tail.rfind(b"\n", 0, len(tail) - 1)
                    if cut >= 0 or start == 0:
                        break
                    position = start
        except OSError as exc:
            raise self._failed("read", exc) from exc
        try:
            return WitnessRecord.parse(tail[cut + 1 :])
        except ValueError as exc:
            raise WitnessError(f"the last line of the witness {self.location}: {exc}") from exc

    def records(self, *, upto: int) -> Iterator[tuple[int, WitnessRecord]]:
        try:
            with self.path.open("rb") as file:
                offset = 0
                for number, raw in enumerate(file, start=1):
                    # A line begun before the mark is read whole: a write in progress then has
                    # finished, and a line still incomplete now is torn.
                    if offset >= upto:
                        return
                    offset += len(raw)
                    try:
                        record = WitnessRecord.parse(raw)
                    except ValueError as exc:
                        raise WitnessError(f"line {number}: {exc}") from exc
                    yield number, record
        except OSError as exc:
            raise self._failed("read", exc) from exc

    def append(self, records: Sequence[WitnessRecord]) -> None:
        if not records:
            return
        data = memoryview(b"".join(record.line() for record in records))
        try:
            # No O_CREAT: a witness that vanished is never begun again behind anyone's back.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._failed("write", exc) from exc


class MemoryWitness:
    """A witness held in memory: what `witness_start` checks the database against."""

    def __init__(self, records: Sequence[WitnessRecord] = ()) -> None:
        self.location = "(in memory)"
        self.lines = list(records)

    def exists(self) -> bool:
        return True

    def create(self) -> None:
        raise WitnessError("an in-memory witness always exists")

    def newest(self) -> WitnessRecord | None:
        return self.lines[-1] if self.lines else None

    def mark(self) -> int | None:
        return len(self.lines)

    def records(self, *, upto: int) -> Iterator[tuple[int, WitnessRecord]]:
        yield from enumerate(self.lines[:upto], start=1)

    def append(self, records: Sequence[WitnessRecord]) -> None:
        self.lines.extend(records)


def witness_from_settings() -> Witness:
    return FileWitness(settings.AUDIT_WITNESS)


def _grace() -> timedelta:
    return timedelta(seconds=settings.AUDIT_CHECKPOINT_GRACE)


# --- Verification ------------------------------------------------------------------------


class AuditBroken(Exception):
    def __init__(
        self, reason: str, *, event: AuditEvent | None = None, stream: str = "", where: str = ""
    ) -> None:
        self.reason = reason
        self.event = event
        self.stream = event.stream if event is not None else stream
        if not where:
            where = (
                f"event id={event.pk} (stream {event.stream!r}, seq {event.seq})"
                if event is not None
                else f"stream {stream!r}"
            )
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class VerifyResult:
    events: int
    streams: int
    checkpoints: int
    witnessed: int = 0
    witness: str = ""


def _signature(digest: str) -> str:
    return hmac.new(
        settings.AUDIT_SIGNING_KEY.encode("utf-8"), digest.encode("ascii"), hashlib.sha256
    ).hexdigest()


def _checkpoint_digest(created_at: datetime, heads: Mapping[str, Any], previous: str) -> str:
    body = {"created_at": format_time(created_at), "heads": heads, "previous": previous}
    return hashlib.sha256(_json(body).encode("utf-8")).hexdigest()


@dataclass
class _Checkpoints:
    """What the signed checkpoints, and the witness, vouch for."""

    count: int = 0
    witnessed: int = 0
    # Every signed head: (stream, seq) -> hash. Each must still be in the chain.
    vouched: dict[tuple[str, int], str] = field(default_factory=dict)
    # Per stream, how far the witnessed checkpoints reach: events up to there are covered.
    covered: dict[str, int] = field(default_factory=dict)


def _witness_broken(witness: Witness, reason: str) -> AuditBroken:
    return AuditBroken(reason, stream="witness", where=f"the witness {witness.location}")


def _verified_checkpoints(
    witness: Witness, mark: int | None, cutoff: datetime | None
) -> _Checkpoints:
    """Check every checkpoint's signature and link, and the witness against them."""
    result = _Checkpoints()
    signed: dict[str, tuple[int, int]] = {}  # stream -> (seq, checkpoint) signed last
    previous = GENESIS
    records = witness.records(upto=mark) if mark is not None else iter(())
    newest_held: int | None = None
    try:
        for checkpoint in AuditCheckpoint.objects.order_by("pk").iterator():
            digest = _checkpoint_digest(checkpoint.created_at, checkpoint.heads, previous)
            if digest != checkpoint.digest or not hmac.compare_digest(
                _signature(digest), checkpoint.signature
            ):
                raise AuditBroken(
                    f"checkpoint {checkpoint.pk} is not authentic", stream="checkpoints"
                )
            for stream, (seq, head_hash) in checkpoint.heads.items():
                earlier = signed.get(stream)
                if earlier is not None and int(seq) < earlier[0]:
                    raise AuditBroken(
                        f"checkpoint {checkpoint.pk} signs stream {stream!r} up to #{seq}, behind "
                        f"#{earlier[0]} signed by checkpoint {earlier[1]} (the stream's head "
                        "was moved back)",
                        stream="checkpoints",
                    )
                signed[stream] = (int(seq), checkpoint.pk)
                result.vouched[(stream, int(seq))] = head_hash
            try:
                line = next(records, None)
            except WitnessError as exc:
                raise _witness_broken(witness, str(exc)) from exc
            if line is not None:
                number, record = line
                if record.id < checkpoint.pk:
                    raise _lost(witness, number, record, newest_held)
                if record.id > checkpoint.pk:
                    raise _witness_broken(
                        witness,
                        f"line {number} records checkpoint {record.id} where checkpoint "
                        f"{checkpoint.pk} was expected (a line was removed from the witness)",
                    )
                differ = record.differences(WitnessRecord.of(checkpoint, previous))
                if differ:
                    raise AuditBroken(
                        f"checkpoint {checkpoint.pk} differs from line {number} of the witness "
                        f"{witness.location} ({', '.join(differ)}): one of them was rewritten",
                        stream="checkpoints",
                    )
                result.witnessed += 1
                for stream, (seq, _head_hash) in checkpoint.heads.items():
                    result.covered[stream] = max(result.covered.get(stream, 0), int(seq))
            elif mark is None:
                raise _witness_broken(
                    witness,
                    "does not exist, but the database holds signed checkpoints (the first is "
                    f"checkpoint {checkpoint.pk}): the witness was deleted, or AUDIT_WITNESS "
                    "names another place than the one checkpoints were written to",
                )
            elif cutoff is not None and checkpoint.created_at < cutoff:
                raise _witness_broken(
                    witness,
                    f"lacks checkpoint {checkpoint.pk} of {format_time(checkpoint.created_at)}, "
                    f"older than the grace of {int(_grace().total_seconds())} s (the witness "
                    "could not be written, or lines were removed from its end)",
                )
            previous = checkpoint.signature
            newest_held = checkpoint.pk
            result.count += 1
        try:
            line = next(records, None)
        except WitnessError as exc:
            raise _witness_broken(witness, str(exc)) from exc
        if line is not None:
            raise _lost(witness, line[0], line[1], newest_held)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return result


def _lost(
    witness: Witness, number: int, record: WitnessRecord, newest_held: int | None
) -> AuditBroken:
    after = (
        f"events written after checkpoint {newest_held} may have been cut"
        if newest_held is not None
        else "any event may have been rewritten"
    )
    return _witness_broken(
        witness,
        f"line {number} records checkpoint {record.id} of {record.created_at}, which the "
        f"database does not hold: signed checkpoints were deleted, and {after}",
    )


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("stream", "seq").iterator(chunk_size=5000)


def verify(*, now: datetime | None = None, witness: Witness | None = None) -> VerifyResult:
    """Walk every chain and checkpoint, and the witness; raise `AuditBroken` naming the first
    thing wrong.

    `now` (what `audit_verify` passes) adds the checks that only a live trail can fail: every
    event and every checkpoint older than AUDIT_CHECKPOINT_GRACE must be covered by a
    checkpoint that is in the witness. Heads, events and checkpoints are read from one snapshot
    (REPEATABLE READ on PostgreSQL), so appends committed while it runs cannot look like
    tampering.
    """
    witness = witness if witness is not None else witness_from_settings()
    # The witness's extent is taken before the snapshot: a line is written after its checkpoint
    # commits, so every line up to here names a checkpoint the snapshot holds.
    try:
        mark = witness.mark()
    except WitnessError as exc:
        raise _witness_broken(witness, str(exc)) from exc
    if connection.in_atomic_block:
        return _verify(now=now, witness=witness, mark=mark)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify(now=now, witness=witness, mark=mark)


def _check_link(event: AuditEvent, expected_seq: int, previous: str) -> None:
    """One event in its chain: the next sequence number, linked to the event before it, and
    matching its own hash; `AuditBroken` naming it otherwise."""
    if event.seq != expected_seq:
        raise AuditBroken(
            f"sequence number {event.seq} where {expected_seq} was expected "
            "(an event was deleted or inserted)",
            event=event,
        )
    if event.prev_hash != previous:
        raise AuditBroken(
            "does not link to the event before it (events were reordered, inserted or deleted)",
            event=event,
        )
    if event_hash(event) != event.hash:
        raise AuditBroken(
            "its contents do not match its hash (the event was modified)", event=event
        )


def verify_stream(stream: str, events: Sequence[AuditEvent], head: tuple[int, str] | None) -> None:
    """Check one stream's chain, as `verify` checks each (sequence, links, hashes, and the
    recorded head), from its events in order and its head (seq, hash); raise `AuditBroken` at
    the first fault. For a page showing one case's trail; checkpoints, the witness and the
    rows' states are `verify`'s (`audit_verify`)."""
    expected_seq, previous = 1, GENESIS
    for event in events:
        if event.stream != stream:
            raise AuditBroken(f"belongs to stream {event.stream!r}", event=event)
        _check_link(event, expected_seq, previous)
        previous = event.hash
        expected_seq += 1
    last = (expected_seq - 1, previous)
    if (head or (0, GENESIS)) != last:
        raise AuditBroken(
            "the stream's recorded head does not match its last event "
            "(events were removed from, or added to, the end)",
            stream=stream,
        )


class _StateWitness:
    """What the trail says each case and target is now: its last transition's `to` (or the
    state it was received in). An intact chain whose newest events were cut before any
    checkpoint covered them still disagrees with the rows those events changed: a case left
    `rejected` with no `case.rejected` event is caught here."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[str, AuditEvent]] = {}
        self.targets: dict[int, tuple[str, AuditEvent]] = {}

    def see(self, event: AuditEvent) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if not event.stream.startswith("case:"):
            return
        reference = event.stream.removeprefix("case:")
        if event.action == "case.received":
            if isinstance(data.get("state"), str):
                self.cases[reference] = (data["state"], event)
            for row in data.get("targets") or []:
                if isinstance(row, list) and len(row) == 3 and isinstance(row[0], int):
                    self.targets[row[0]] = (str(row[2]), event)
        elif isinstance(data.get("to"), str) and isinstance(data.get("id"), int):
            if event.action.startswith("case."):
                self.cases[reference] = (data["to"], event)
            elif event.action.startswith("target."):
                self.targets[data["id"]] = (data["to"], event)

    def check(self) -> None:
        cases = TakedownRequest.objects.filter(reference__in=self.cases)
        _states_agree("case", self.cases, cases.values_list("reference", "state"))
        targets = Target.objects.filter(pk__in=self.targets)
        _states_agree("target", self.targets, targets.values_list("pk", "state"))


K = TypeVar("K", str, int)


def _states_agree(
    kind: str, trail: Mapping[K, tuple[str, AuditEvent]], rows: Iterable[tuple[K, str]]
) -> None:
    for key, state in rows:
        said, event = trail[key]
        if said != state:
            raise AuditBroken(
                f"{kind} {key} is {state!r} but its trail ends with it {said!r} (events after "
                f"this one were removed, or the {kind} changed outside the workflow)",
                event=event,
            )


def _verify(*, now: datetime | None, witness: Witness, mark: int | None) -> VerifyResult:
    cutoff = now - _grace() if now is not None else None
    checkpoints = _verified_checkpoints(witness, mark, cutoff)
    vouched = checkpoints.vouched
    heads = {
        name: (seq, head)
        for name, seq, head in AuditStream.objects.values_list("name", "seq", "head_hash")
    }
    states = _StateWitness()
    events = 0
    seen: set[str] = set()
    stream: str | None = None
    expected_seq = 1
    previous = GENESIS
    last: AuditEvent | None = None
    uncovered = 0
    oldest_uncovered: AuditEvent | None = None

    def close_stream(name: str, last_event: AuditEvent) -> None:
        head = heads.get(name)
        if head is None or head != (last_event.seq, last_event.hash):
            raise AuditBroken(
                "the stream's recorded head does not match its last event "
                "(events were removed from, or added to, the end)",
                event=last_event,
            )

    for event in _events():
        if event.stream != stream:
            if stream is not None and last is not None:
                close_stream(stream, last)
            stream = event.stream
            seen.add(stream)
            expected_seq, previous = 1, GENESIS
        _check_link(event, expected_seq, previous)
        vouched_hash = vouched.pop((event.stream, event.seq), None)
        if vouched_hash is not None and vouched_hash != event.hash:
            raise AuditBroken("differs from what a signed checkpoint recorded", event=event)
        if (
            cutoff is not None
            and event.created_at < cutoff
            and event.seq > checkpoints.covered.get(event.stream, 0)
        ):
            uncovered += 1
            if oldest_uncovered is None or event.created_at < oldest_uncovered.created_at:
                oldest_uncovered = event
        states.see(event)
        previous = event.hash
        expected_seq += 1
        events += 1
        last = event
    if stream is not None and last is not None:
        close_stream(stream, last)
    states.check()
    for name, (seq, _head) in heads.items():
        if name not in seen and seq > 0:
            raise AuditBroken(
                f"the stream's head records {seq} events but none remain", stream=name
            )
    if vouched:
        (name, seq), _ = next(iter(vouched.items()))
        raise AuditBroken(f"a signed checkpoint records event {seq}, which is missing", stream=name)
    if oldest_uncovered is not None:
        why = (
            "the database holds no signed checkpoint at all"
            if checkpoints.count == 0
            else "checkpoints are not being written, or the newest were deleted"
        )
        raise AuditBroken(
            f"written {format_time(oldest_uncovered.created_at)}, more than the grace of "
            f"{int(_grace().total_seconds())} s ago, and no checkpoint in the witness covers it "
            f"({uncovered} such event{'s' if uncovered != 1 else ''}): {why}",
            event=oldest_uncovered,
        )
    return VerifyResult(
        events=events,
        streams=len(seen),
        checkpoints=checkpoints.count,
        witnessed=checkpoints.witnessed,
        witness=witness.location,
    )


# --- Checkpoints -----------------------------------------------------------------------------


def _checkpoint_lock() -> None:
    """One checkpoint writer at a time, so the signature chain never forks and the witness gets
    its lines in order, whichever host writes."""
    AuditStream.objects.bulk_create(
        [AuditStream(name="checkpoints", seq=0, head_hash=GENESIS)], ignore_conflicts=True
    )
    AuditStream.objects.select_for_update().get(name="checkpoints")


def _witness_newest(witness: Witness) -> WitnessRecord | None:
    """The witness's newest record, checked against the database; WitnessError if they differ."""
    record = witness.newest()
    if record is None:
        return None
    held = AuditCheckpoint.objects.filter(pk=record.id).first()
    if held is None:
        raise WitnessError(
            f"the witness {witness.location} ends with checkpoint {record.id} of "
            f"{record.created_at}, which this database does not hold: the trail was cut, or "
            "this witness belongs to another database (a new database needs a new witness)"
        )
    differ = record.differences(WitnessRecord.of(held, record.previous))
    if differ:
        raise WitnessError(
            f"checkpoint {record.id} differs from the witness {witness.location} "
            f"({', '.join(differ)})"
        )
    return record


def witness_catch_up(*, witness: Witness | None = None) -> list[int]:
    """Write to the witness every checkpoint the database holds beyond its end; their ids.

    Call it outside any transaction: a line for a checkpoint that is then rolled back would
    accuse the database for ever.
    """
    witness = witness if witness is not None else witness_from_settings()
    with transaction.atomic():
        _checkpoint_lock()
        if not witness.exists():
            raise WitnessError(
                f"the witness {witness.location} does not exist: it was deleted, or AUDIT_WITNESS "
                "names another place than before (see `audit_checkpoint --start-witness`)"
            )
        newest = _witness_newest(witness)
        previous = newest.signature if newest is not None else GENESIS
        records = []
        for checkpoint in AuditCheckpoint.objects.filter(
            pk__gt=newest.id if newest is not None else 0
        ).order_by("pk"):
            records.append(WitnessRecord.of(checkpoint, previous))
            previous = checkpoint.signature
        witness.append(records)
    return [record.id for record in records]


def checkpoint_create(*, witness: Witness | None = None) -> AuditCheckpoint | None:
    """Sign the heads of every stream written since the previous checkpoint (with overlap), and
    write it, with any checkpoint not yet written there, to the witness.

    Raises WitnessError, before signing anything, when the witness is missing although the
    database holds checkpoints, or ends with a checkpoint the database does not hold; and after
    committing the checkpoint when it cannot be written (the next call writes it late).
    """
    witness = witness if witness is not None else witness_from_settings()
    with transaction.atomic():
        _checkpoint_lock()
        # Chained in the order written (pk), which no clock step between hosts can disturb.
        previous = AuditCheckpoint.objects.order_by("-pk").first()
        if not witness.exists():
            if previous is not None:
                raise WitnessError(
                    f"the witness {witness.location} does not exist, but the database holds "
                    "signed checkpoints: it was deleted, or AUDIT_WITNESS names another place "
                    "than before. Restore it, or begin a new one with "
                    "`audit_checkpoint --start-witness`"
                )
            # Begun before the first checkpoint, so that no checkpoint exists without one.
            witness.create()
        _witness_newest(witness)
        checkpoint = _checkpoint_insert(previous)
    late = [
        pk for pk in witness_catch_up(witness=witness) if checkpoint is None or pk != checkpoint.pk
    ]
    if late:
        logger.warning("audit checkpoints %s written to the witness late", late)
    return checkpoint


def _checkpoint_insert(previous: AuditCheckpoint | None) -> AuditCheckpoint | None:
    events = AuditEvent.objects.all()
    if previous is not None:
        events = events.filter(created_at__gte=previous.created_at - CHECKPOINT_OVERLAP)
    streams = set(events.values_list("stream", flat=True).distinct())
    if not streams:
        return None
    heads = {
        name: [seq, head]
        for name, seq, head in AuditStream.objects.filter(name__in=streams).values_list(
            "name", "seq", "head_hash"
        )
    }
    created_at = clock.now()
    digest = _checkpoint_digest(
        created_at, heads, previous.signature if previous is not None else GENESIS
    )
    return AuditCheckpoint.objects.create(
        created_at=created_at, heads=heads, digest=digest, signature=_signature(digest)
    )


def witness_start(*, witness: Witness | None = None) -> int:
    """Begin a witness for a database that already holds checkpoints (an upgrade, or a witness
    lost for good): check the trail's chains and signatures, then write every checkpoint.

    The new witness vouches for the trail only as the database holds it now. Refuses when the
    witness exists. Returns how many checkpoints were written.
    """
    witness = witness if witness is not None else witness_from_settings()
    if witness.exists():
        raise WitnessError(f"the witness {witness.location} exists already")
    records = []
    previous = GENESIS
    for checkpoint in AuditCheckpoint.objects.order_by("pk"):
        records.append(WitnessRecord.of(checkpoint, previous))
        previous = checkpoint.signature
    # Chains, heads and signatures, checked in a snapshot of their own against what is about
    # to be written (checkpoints signed meanwhile are written by the next checkpoint_create).
    verify(witness=MemoryWitness(records))
    with transaction.atomic():
        _checkpoint_lock()
        witness.create()  # refuses if another process began one meanwhile
        witness.append(records)
    return len(records)
