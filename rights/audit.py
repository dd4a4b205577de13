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
consistently from some point on still fails verification.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rights.db import joined_atomic
from rights.models import AuditCheckpoint, AuditEvent, AuditStream

GENESIS = "0" * 64
ENCODING_VERSION = 1
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
    payload = check_data(data or {})
    with joined_atomic():
        # Taking the next number locks the head row until commit: the stream's writers queue
        # here, one at a time, and the chain cannot fork.
        head = _take_next(stream)
        if head is None:
            AuditStream.objects.bulk_create(
                [AuditStream(name=stream, seq=0, head_hash=GENESIS)], ignore_conflicts=True
            )
            head = _take_next(stream)
        assert head is not None
        seq, prev_hash = head
        event = AuditEvent(
            stream=stream,
            seq=seq,
            created_at=timezone.now(),
            actor=actor,
            action=action,
            data=payload,
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event)
        event.save(force_insert=True)
        AuditStream.objects.filter(name=stream).update(head_hash=event.hash)
    return event


def check_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """The audit data as it will be stored, or ValueError saying what cannot be."""
    payload: dict[str, Any] = json.loads(_json(dict(data)))
    _check_json_safe(payload)
    return payload


def _take_next(stream: str) -> tuple[int, str] | None:
    """Advance the stream's sequence; the new number and the current head's hash."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rights_auditstream SET seq = seq + 1 WHERE name = %s RETURNING seq, head_hash",
            [stream],
        )
        row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row is not None else None


# --- Verification ------------------------------------------------------------------------


class AuditBroken(Exception):
    def __init__(self, reason: str, *, event: AuditEvent | None = None, stream: str = "") -> None:
        self.reason = reason
        self.event = event
        self.stream = event.stream if event is not None else stream
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


def _signature(digest: str) -> str:
    return hmac.new(
        settings.AUDIT_SIGNING_KEY.encode("utf-8"), digest.encode("ascii"), hashlib.sha256
    ).hexdigest()


def _checkpoint_digest(created_at: datetime, heads: Mapping[str, Any], previous: str) -> str:
    body = {"created_at": format_time(created_at), "heads": heads, "previous": previous}
    return hashlib.sha256(_json(body).encode("utf-8")).hexdigest()


def _verified_checkpoints() -> tuple[int, dict[tuple[str, int], str]]:
    """Check every checkpoint's signature and link; return the positions they vouch for."""
    vouched: dict[tuple[str, int], str] = {}
    previous = GENESIS
    count = 0
    for checkpoint in AuditCheckpoint.objects.order_by("pk").iterator():
        digest = _checkpoint_digest(checkpoint.created_at, checkpoint.heads, previous)
        if digest != checkpoint.digest or not hmac.compare_digest(
            _signature(digest), checkpoint.signature
        ):
            raise AuditBroken(f"checkpoint {checkpoint.pk} is not authentic", stream="checkpoints")
        for stream, (seq, head_hash) in checkpoint.heads.items():
            vouched[(stream, int(seq))] = head_hash
        previous = checkpoint.signature
        count += 1
    return count, vouched


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("stream", "seq").iterator(chunk_size=5000)


def verify() -> VerifyResult:
    """Walk every chain; raise `AuditBroken` naming the first bad event.

    Heads, events and checkpoints are read from one snapshot (REPEATABLE READ on PostgreSQL),
    so appends committed while it runs cannot look like tampering.
    """
    if connection.in_atomic_block:
        return _verify()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _verify()


def _verify() -> VerifyResult:
    checkpoints, vouched = _verified_checkpoints()
    heads = {
        name: (seq, head)
        for name, seq, head in AuditStream.objects.values_list("name", "seq", "head_hash")
    }
    events = 0
    seen: set[str] = set()
    stream: str | None = None
    expected_seq = 1
    previous = GENESIS
    last: AuditEvent | None = None

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
        vouched_hash = vouched.pop((event.stream, event.seq), None)
        if vouched_hash is not None and vouched_hash != event.hash:
            raise AuditBroken("differs from what a signed checkpoint recorded", event=event)
        previous = event.hash
        expected_seq += 1
        events += 1
        last = event
    if stream is not None and last is not None:
        close_stream(stream, last)
    for name, (seq, _head) in heads.items():
        if name not in seen and seq > 0:
            raise AuditBroken(
                f"the stream's head records {seq} events but none remain", stream=name
            )
    if vouched:
        (name, seq), _ = next(iter(vouched.items()))
        raise AuditBroken(f"a signed checkpoint records event {seq}, which is missing", stream=name)
    return VerifyResult(events=events, streams=len(seen), checkpoints=checkpoints)


def checkpoint_create() -> AuditCheckpoint | None:
    """Sign the heads of every stream written since the previous checkpoint (with overlap)."""
    with transaction.atomic():
        # One checkpoint writer at a time, so the signature chain never forks.
        AuditStream.objects.bulk_create(
            [AuditStream(name="checkpoints", seq=0, head_hash=GENESIS)], ignore_conflicts=True
        )
        AuditStream.objects.select_for_update().get(name="checkpoints")
        # Chained in the order written (pk), which no clock step between hosts can disturb.
        previous = AuditCheckpoint.objects.order_by("-pk").first()
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
        created_at = timezone.now()
        digest = _checkpoint_digest(
            created_at, heads, previous.signature if previous is not None else GENESIS
        )
        return AuditCheckpoint.objects.create(
            created_at=created_at, heads=heads, digest=digest, signature=_signature(digest)
        )
