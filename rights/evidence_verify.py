#!/usr/bin/env python3
"""Verify a takedown case's evidence bundle, offline, with Python and the `cryptography` package.

    python3 evidence_verify.py bundle.json --public-key HEX        # what a third party runs
    AUDIT_SIGNING_KEY=... python3 evidence_verify.py bundle.json   # and the checkpoints' HMACs

HEX is the service's evidence key, which it publishes at /.well-known/rights-evidence-key (and
`python manage.py evidence_key` prints). Exit status 0 when the bundle is intact and, given a
key, signed with it; 1 naming the first event, checkpoint or signature at fault; 2 when the
file cannot be read or the signature cannot be checked (`pip install cryptography`).

What it proves. Every event's SHA-256 hash is recomputed from its fields in the canonical
encoding below, and each event must link to the one before it (its `prev_hash`), from the
stream's first event (64 zeros) to the head the bundle records: any change to an event, or an
event removed, inserted or moved, fails, naming the event. Each signed checkpoint's digest is
recomputed from its heads, and the case's head it signs must be an event of the bundle with
that hash, so cutting events that a checkpoint covers fails too. Each checkpoint must agree
field for field with its line from the witness, the copy of every checkpoint the service
writes outside its database. Hashes alone prove nothing about who made them: the service signs
the whole bundle with its Ed25519 evidence key (`signed`), so anyone holding the published
public key can check that the service issued this bundle, unaltered. With the audit signing key
(AUDIT_SIGNING_KEY, held by the service's operator) the checkpoints' HMAC-SHA256 signatures are
checked as well.

Canonical encoding of an event (version 1): the UTF-8 bytes of JSON with keys sorted,
separators "," and ":", and no ASCII escaping, of
    {"v": 1, "stream", "seq", "created_at" ("YYYY-MM-DDTHH:MM:SS.ffffffZ", UTC), "actor",
     "action", "data", "prev_hash"}
A checkpoint's digest is SHA-256 of the same encoding of {"created_at", "heads", "previous"};
its signature is HMAC-SHA256 of the digest's hex text under the signing key. The bundle's
signature is Ed25519 over the same encoding of the whole bundle without its `signed` member;
`signed` is {"alg": "ed25519", "public_key": hex, "signature": hex}.

This file is a copy of the service's rules (rights/audit.py, rights/evidence.py) that needs
nothing of the service: its tests run it on real bundles so that the two cannot drift.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # the chain can be checked without it; the bundle's signature cannot
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True

BUNDLE_FORMAT = "rights-evidence-bundle"
# Version 2: the bundle is signed with the service's Ed25519 evidence key (`signed`).
BUNDLE_VERSION = 2
SIGNATURE_ALG = "ed25519"
ENCODING_VERSION = 1
WITNESS_VERSION = 1
GENESIS = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
EVENT_FIELDS = ("id", "stream", "seq", "created_at", "actor", "action", "data", "prev_hash", "hash")
WITNESS_FIELDS = {"v", "id", "created_at", "heads", "previous", "digest", "signature"}
HEX64 = re.compile(r"[0-9a-f]{64}")


class Broken(Exception):
    pass


class Unverifiable(Exception):
    """The signature cannot be checked here (no `cryptography`): not a verdict on the bundle."""


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment if moment.strftime(TIME_FORMAT) == text else None


def event_name(event: dict[str, Any], position: int) -> str:
    seq = event.get("seq")
    shown = seq if isinstance(seq, int) and not isinstance(seq, bool) else "?"
    return f"event #{shown} (position {position}, id {event.get('id')})"


def event_hash(event: dict[str, Any]) -> str:
    body = {
        "v": ENCODING_VERSION,
        "stream": event["stream"],
        "seq": event["seq"],
        "created_at": event["created_at"],
        "actor": event["actor"],
        "action": event["action"],
        "data": event["data"],
        "prev_hash": event["prev_hash"],
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def signed_part(bundle: dict[str, Any]) -> bytes:
    """What the bundle's signature covers: the whole bundle but its `signed` member."""
    return canonical({name: value for name, value in bundle.items() if name != "signed"})


def verify_signature(bundle: dict[str, Any], public_key: str | None) -> str:
    """Check the bundle's Ed25519 signature against `public_key` (hex), obtained from the
    service, not from the bundle; a line for the verdict. Without a key, says it is unchecked."""
    signed = bundle.get("signed")
    if not isinstance(signed, dict) or signed.get("alg") != SIGNATURE_ALG:
        raise Broken("the bundle is not signed (no `signed` member with alg ed25519)")
    claimed = str(signed.get("public_key", "")).lower()
    if public_key is None:
        return (
            f"bundle signature NOT checked: no --public-key given (the bundle names key "
            f"{claimed[:16]}…; compare the service's published key, then pass it)"
        )
    if claimed != public_key.strip().lower():
        raise Broken("the bundle is signed with another key than the one given")
    if not HAVE_CRYPTOGRAPHY:
        raise Unverifiable("checking the signature needs the `cryptography` package")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(claimed))
        key.verify(bytes.fromhex(str(signed.get("signature", ""))), signed_part(bundle))
    except (ValueError, InvalidSignature) as exc:
        raise Broken("the bundle's signature does not match its contents (it was altered)") from exc
    return f"bundle signed by the service's evidence key {claimed[:16]}…"


def verify(bundle: Any, key: str | None, public_key: str | None = None) -> list[str]:
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise Broken(f"not an evidence bundle (format is not {BUNDLE_FORMAT!r})")
    if bundle.get("version") != BUNDLE_VERSION:
        raise Broken(f"unknown bundle version {bundle.get('version')!r}")
    stream = bundle.get("stream")
    events = bundle.get("events")
    checkpoints = bundle.get("checkpoints")
    if not isinstance(stream, str) or not isinstance(events, list):
        raise Broken("the bundle has no stream or no list of events")
    if not isinstance(checkpoints, list):
        raise Broken("the bundle has no list of checkpoints")
    case = bundle.get("case")
    if not isinstance(case, dict) or f"case:{case.get('reference')}" != stream:
        raise Broken(f"the bundle's case is not the one whose stream it holds ({stream})")

    previous = GENESIS
    by_seq: dict[int, str] = {}
    for position, event in enumerate(events, start=1):
        if not isinstance(event, dict) or set(event) != set(EVENT_FIELDS):
            raise Broken(
                f"event at position {position}: an event has exactly the fields "
                f"{', '.join(EVENT_FIELDS)}"
            )
        name = event_name(event, position)
        if event["stream"] != stream:
            raise Broken(f"{name}: belongs to stream {event['stream']!r}, not {stream!r}")
        if event["seq"] != position:
            raise Broken(
                f"{name}: sequence number {event['seq']} where {position} was expected "
                "(an event was removed, inserted or reordered)"
            )
        if event["prev_hash"] != previous:
            raise Broken(
                f"{name}: does not link to the event before it (events were reordered, "
                "inserted or removed)"
            )
        if parse_time(event["created_at"]) is None:
            raise Broken(f"{name}: created_at is not a time in the canonical form")
        try:
            computed = event_hash(event)
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise Broken(f"{name}: cannot be encoded ({exc})") from exc
        if computed != event["hash"]:
            raise Broken(f"{name}: its contents do not match its hash (the event was modified)")
        by_seq[position] = event["hash"]
        previous = event["hash"]

    head = bundle.get("head")
    last = len(events)
    said = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else (0, GENESIS)
    if said != (last, previous):
        where = event_name(events[-1], last) if events else "the stream"
        raise Broken(
            f"{where}: the stream's head records event #{said[0]} but the bundle ends here "
            "(events were cut from the end, or added)"
        )

    covered = witnessed = last_line = 0
    for checkpoint in checkpoints:
        covered_here, line = verify_checkpoint(checkpoint, stream, by_seq, key, last_line)
        covered = max(covered, covered_here)
        if line:
            witnessed += 1
            last_line = line
    signatures = (
        "signatures checked with the signing key"
        if key is not None
        else "signatures NOT checked (no signing key given)"
    )
    lines = [
        f"evidence bundle intact: {last} events of stream {stream}, "
        f"{len(checkpoints)} checkpoints ({witnessed} in the witness), {signatures}"
    ]
    # The chain alone proves nothing against whoever can recompute it: every event must be
    # under a signed, witnessed checkpoint (the service signs one as it builds a bundle), or
    # removing the checkpoints would pass off a rewritten trail as an intact one.
    if covered < last:
        raise Broken(
            f"event #{covered + 1}: not covered by a signed checkpoint (events #{covered + 1} "
            f"to #{last}; checkpoints were removed from the bundle, or cut from its end)"
        )
    if witnessed < len(checkpoints):
        raise Broken(
            f"{len(checkpoints) - witnessed} checkpoints have no witness line (the bundle was "
            "altered, or built while the witness could not be written: build it again)"
        )
    # Last, so that a fault above is named where it is; then who issued the bundle.
    return [*lines, verify_signature(bundle, public_key)]


def parse_witness_line(text: str) -> dict[str, Any]:
    """A witness line, checked as the service checks it (rights.audit.WitnessRecord.parse)."""
    try:
        body = json.loads(text)
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
    return body


def verify_checkpoint(
    checkpoint: Any, stream: str, by_seq: dict[int, str], key: str | None, last_line: int
) -> tuple[int, int]:
    if not isinstance(checkpoint, dict):
        raise Broken("a checkpoint is not an object")
    name = f"checkpoint {checkpoint.get('id')}"
    heads = checkpoint.get("heads")
    if parse_time(checkpoint.get("created_at")) is None or not isinstance(heads, dict):
        raise Broken(f"{name}: created_at or heads is malformed")
    body = {
        "created_at": checkpoint["created_at"],
        "heads": heads,
        "previous": checkpoint.get("previous"),
    }
    digest = hashlib.sha256(canonical(body)).hexdigest()
    if digest != checkpoint.get("digest"):
        raise Broken(f"{name}: its digest does not match its contents (it was modified)")
    if key is not None:
        expected = hmac.new(key.encode("utf-8"), digest.encode("ascii"), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), str(checkpoint.get("signature"))):
            raise Broken(f"{name}: its signature is not authentic under the signing key")
    head = heads.get(stream)
    if not isinstance(head, list) or len(head) != 2:
        raise Broken(f"{name}: does not sign stream {stream!r}")
    seq, head_hash = head
    if seq not in by_seq:
        raise Broken(
            f"event #{seq}: signed by {name} but missing from the bundle (events were cut "
            "from the end, or removed)"
        )
    if by_seq[seq] != head_hash:
        raise Broken(f"event #{seq}: differs from what {name} signed")
    witness = checkpoint.get("witness")
    if witness is None:
        return seq, 0
    try:
        number = witness["line"]
        record = parse_witness_line(witness["text"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Broken(f"{name}: its witness line cannot be read ({exc})") from exc
    if not isinstance(number, int) or number <= last_line:
        raise Broken(f"{name}: its witness line number is out of order")
    ours = {
        "id": checkpoint.get("id"),
        "created_at": checkpoint["created_at"],
        "heads": heads,
        "previous": checkpoint.get("previous"),
        "digest": digest,
        "signature": checkpoint.get("signature"),
    }
    differ = [
        field
        for field in ("id", "created_at", "heads", "previous", "digest", "signature")
        if record[field] != ours[field]
    ]
    if differ:
        raise Broken(f"{name}: differs from its witness line {number} ({', '.join(differ)})")
    return seq, number


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evidence_verify.py",
        description=__doc__.strip().splitlines()[0] if __doc__ else None,
        epilog="See the top of this file for what is checked.",
    )
    parser.add_argument("bundle", help="the bundle (JSON), as downloaded")
    parser.add_argument(
        "--public-key",
        help="the service's evidence key (hex), from /.well-known/rights-evidence-key",
    )
    options = parser.parse_args(argv[1:])
    try:
        with open(options.bundle, encoding="utf-8") as file:
            bundle = json.load(file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {options.bundle}: {exc}", file=sys.stderr)
        return 2
    key = os.environ.get("AUDIT_SIGNING_KEY") or None
    try:
        lines = verify(bundle, key, options.public_key)
    except Broken as exc:
        print(f"evidence bundle BROKEN: {exc}", file=sys.stderr)
        return 1
    except Unverifiable as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
