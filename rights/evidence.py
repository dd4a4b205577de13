"""Evidence bundles: one case's audit trail, with the signed checkpoints and witness lines that
vouch for it, as one JSON document that can be verified away from the service.

A bundle (format "rights-evidence-bundle", version 1) holds:

- `stream` and `head`: the case's audit stream and its head (last seq and hash) when built;
- `events`: every event of the stream from seq 1, with every field its hash covers (`stream`,
  `seq`, `created_at` in the canonical time form, `actor`, `action`, `data`, `prev_hash`), its
  `hash`, and its `id` (to name it);
- `checkpoints`: every signed checkpoint whose heads include the stream, oldest first, each with
  `created_at`, all its `heads` (the digest covers every stream it signs, so all are needed to
  recompute it), `previous` (the signature of the checkpoint before it), `digest`, `signature`,
  and `witness`: the checkpoint's line in the witness (AUDIT_WITNESS), verbatim, with its line
  number, or null when it is not in the witness yet;
- `case`: the case's reference, channel, state and clock as the database holds them, for the
  reader; nothing vouches for these fields.

`bundle_verify` checks a bundle with the service's own encoding (rights.audit);
rights/evidence_verify.py does the same with the standard library only, for a third party, and
the tests hold the two to the same verdicts and the same messages.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import OuterRef, Subquery

from rights import audit, clock
from rights.models import AuditCheckpoint, AuditEvent, AuditStream, TakedownRequest

BUNDLE_FORMAT = "rights-evidence-bundle"
BUNDLE_VERSION = 1
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
EVENT_FIELDS = ("id", "stream", "seq", "created_at", "actor", "action", "data", "prev_hash", "hash")


# --- Building -----------------------------------------------------------------------------------


def _witness_lines(wanted: set[int], witness: audit.Witness) -> dict[int, dict[str, Any]]:
    """The witness's lines for the checkpoints `wanted`, verbatim, by checkpoint id."""
    found: dict[int, dict[str, Any]] = {}
    mark = witness.mark()
    if mark is None or not wanted:
        return found
    for number, record in witness.records(upto=mark):
        if record.id in wanted:
            found[record.id] = {"line": number, "text": record.line().decode("utf-8").rstrip("\n")}
    return found


def evidence_bundle(
    *, case: TakedownRequest, witness: audit.Witness | None = None
) -> dict[str, Any]:
    """The evidence bundle of `case`, as a JSON-ready dict (three queries and one read of the
    witness, whatever the trail's length)."""
    witness = witness if witness is not None else audit.witness_from_settings()
    stream = case.audit_stream()
    head = AuditStream.objects.filter(name=stream).values_list("seq", "head_hash").first()
    events = [
        {
            "id": event.pk,
            "stream": event.stream,
            "seq": event.seq,
            "created_at": audit.format_time(event.created_at),
            "actor": event.actor,
            "action": event.action,
            "data": event.data,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
        for event in AuditEvent.objects.filter(stream=stream).order_by("seq")
    ]
    before = AuditCheckpoint.objects.filter(pk__lt=OuterRef("pk")).order_by("-pk")
    checkpoints = list(
        AuditCheckpoint.objects.filter(heads__has_key=stream)
        .annotate(previous=Subquery(before.values("signature")[:1]))
        .order_by("pk")
    )
    lines = _witness_lines({checkpoint.pk for checkpoint in checkpoints}, witness)
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "generated_at": audit.format_time(clock.now()),
        "case": {
            "reference": case.reference,
            "channel": case.channel,
            "state": case.state,
            "clock_started_at": _time_or_none(case.clock_started_at),
            "deadline_at": _time_or_none(case.deadline_at),
            "closed_at": _time_or_none(case.closed_at),
        },
        "stream": stream,
        "head": {"seq": head[0], "hash": head[1]} if head is not None else None,
        "events": events,
        "checkpoints": [
            {
                "id": checkpoint.pk,
                "created_at": audit.format_time(checkpoint.created_at),
                "heads": checkpoint.heads,
                "previous": getattr(checkpoint, "previous", None) or audit.GENESIS,
                "digest": checkpoint.digest,
                "signature": checkpoint.signature,
                "witness": lines.get(checkpoint.pk),
            }
            for checkpoint in checkpoints
        ],
    }


def _time_or_none(moment: datetime | None) -> str | None:
    return audit.format_time(moment) if moment is not None else None


# --- Verifying ----------------------------------------------------------------------------------


class BundleBroken(Exception):
    """The bundle fails verification; the message names the first event or checkpoint at fault."""


@dataclass
class BundleReport:
    stream: str
    events: int
    checkpoints: int
    witnessed: int
    covered: int  # events up to this seq are vouched for by a signed checkpoint
    signatures_checked: bool
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The verdict, as both verifiers print it."""
        signatures = (
            "signatures checked with the signing key"
            if self.signatures_checked
            else "signatures NOT checked (no signing key given)"
        )
        return [
            f"evidence bundle intact: {self.events} events of stream {self.stream}, "
            f"{self.checkpoints} checkpoints ({self.witnessed} in the witness), {signatures}",
            *self.notes,
        ]


def _event_name(event: Mapping[str, Any], position: int) -> str:
    seq = event.get("seq")
    shown = seq if isinstance(seq, int) and not isinstance(seq, bool) else "?"
    return f"event #{shown} (position {position}, id {event.get('id')})"


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment if audit.format_time(moment) == text else None


def _event_hash(event: Mapping[str, Any], created_at: datetime) -> str:
    return hashlib.sha256(
        audit.canonical_bytes(
            stream=event["stream"],
            seq=event["seq"],
            created_at=created_at,
            actor=event["actor"],
            action=event["action"],
            data=event["data"],
            prev_hash=event["prev_hash"],
        )
    ).hexdigest()


def bundle_verify(bundle: Any, *, key: str | None) -> BundleReport:
    """Check every event's hash and link, the head, and every checkpoint's digest (and its
    signature, given the signing key) and witness line; BundleBroken naming the first fault."""
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleBroken(f"not an evidence bundle (format is not {BUNDLE_FORMAT!r})")
    if bundle.get("version") != BUNDLE_VERSION:
        raise BundleBroken(f"unknown bundle version {bundle.get('version')!r}")
    stream = bundle.get("stream")
    events = bundle.get("events")
    checkpoints = bundle.get("checkpoints")
    if not isinstance(stream, str) or not isinstance(events, list):
        raise BundleBroken("the bundle has no stream or no list of events")
    if not isinstance(checkpoints, list):
        raise BundleBroken("the bundle has no list of checkpoints")

    previous = audit.GENESIS
    by_seq: dict[int, str] = {}
    for position, event in enumerate(events, start=1):
        if not isinstance(event, dict) or set(event) != set(EVENT_FIELDS):
            raise BundleBroken(
                f"event at position {position}: an event has exactly the fields "
                f"{', '.join(EVENT_FIELDS)}"
            )
        name = _event_name(event, position)
        if event["stream"] != stream:
            raise BundleBroken(f"{name}: belongs to stream {event['stream']!r}, not {stream!r}")
        if event["seq"] != position:
            raise BundleBroken(
                f"{name}: sequence number {event['seq']} where {position} was expected "
                "(an event was removed, inserted or reordered)"
            )
        if event["prev_hash"] != previous:
            raise BundleBroken(
                f"{name}: does not link to the event before it (events were reordered, "
                "inserted or removed)"
            )
        created_at = _parse_time(event["created_at"])
        if created_at is None:
            raise BundleBroken(f"{name}: created_at is not a time in the canonical form")
        try:
            computed = _event_hash(event, created_at)
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise BundleBroken(f"{name}: cannot be encoded ({exc})") from exc
        if computed != event["hash"]:
            raise BundleBroken(
                f"{name}: its contents do not match its hash (the event was modified)"
            )
        by_seq[position] = event["hash"]
        previous = event["hash"]

    head = bundle.get("head")
    last = len(events)
    said = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else (0, audit.GENESIS)
    if said != (last, previous):
        where = _event_name(events[-1], last) if events else "the stream"
        raise BundleBroken(
            f"{where}: the stream's head records event #{said[0]} but the bundle ends here "
            "(events were cut from the end, or added)"
        )

    covered = 0
    witnessed = 0
    last_line = 0
    for checkpoint in checkpoints:
        covered_here, line = _checkpoint_verify(checkpoint, stream, by_seq, key, last_line)
        covered = max(covered, covered_here)
        if line:
            witnessed += 1
            last_line = line
    report = BundleReport(
        stream=stream,
        events=last,
        checkpoints=len(checkpoints),
        witnessed=witnessed,
        covered=covered,
        signatures_checked=key is not None,
    )
    if covered < last:
        report.notes.append(
            f"note: events #{covered + 1} to #{last} are not yet covered by a signed checkpoint; "
            "the chain alone vouches for them"
        )
    if witnessed < len(checkpoints):
        report.notes.append(
            f"note: {len(checkpoints) - witnessed} checkpoints are not in the witness yet"
        )
    return report


def _checkpoint_verify(
    checkpoint: Any, stream: str, by_seq: Mapping[int, str], key: str | None, last_line: int
) -> tuple[int, int]:
    """(the seq of `stream` it vouches for, its witness line number or 0)."""
    if not isinstance(checkpoint, dict):
        raise BundleBroken("a checkpoint is not an object")
    name = f"checkpoint {checkpoint.get('id')}"
    created_at = _parse_time(checkpoint.get("created_at"))
    heads = checkpoint.get("heads")
    if created_at is None or not isinstance(heads, dict):
        raise BundleBroken(f"{name}: created_at or heads is malformed")
    digest = audit._checkpoint_digest(created_at, heads, checkpoint.get("previous"))  # type: ignore[arg-type]
    if digest != checkpoint.get("digest"):
        raise BundleBroken(f"{name}: its digest does not match its contents (it was modified)")
    if key is not None:
        expected = hmac.new(key.encode("utf-8"), digest.encode("ascii"), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), str(checkpoint.get("signature"))):
            raise BundleBroken(f"{name}: its signature is not authentic under the signing key")
    head = heads.get(stream)
    if not isinstance(head, list) or len(head) != 2:
        raise BundleBroken(f"{name}: does not sign stream {stream!r}")
    seq, head_hash = head
    if seq not in by_seq:
        raise BundleBroken(
            f"event #{seq}: signed by {name} but missing from the bundle (events were cut "
            "from the end, or removed)"
        )
    if by_seq[seq] != head_hash:
        raise BundleBroken(f"event #{seq}: differs from what {name} signed")
    witness = checkpoint.get("witness")
    if witness is None:
        return seq, 0
    try:
        number = witness["line"]
        record = audit.WitnessRecord.parse(witness["text"].encode("utf-8") + b"\n")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BundleBroken(f"{name}: its witness line cannot be read ({exc})") from exc
    if not isinstance(number, int) or number <= last_line:
        raise BundleBroken(f"{name}: its witness line number is out of order")
    ours = audit.WitnessRecord(
        id=checkpoint.get("id"),  # type: ignore[arg-type]
        created_at=checkpoint["created_at"],
        heads=heads,
        previous=checkpoint.get("previous"),  # type: ignore[arg-type]
        digest=digest,
        signature=checkpoint.get("signature"),  # type: ignore[arg-type]
    )
    differ = ["id"] if record.id != ours.id else []
    differ += record.differences(ours)
    if differ:
        raise BundleBroken(f"{name}: differs from its witness line {number} ({', '.join(differ)})")
    return seq, number
