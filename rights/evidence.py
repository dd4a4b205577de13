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
  reader; only the bundle's signature vouches for these fields;
- `signed`: the service's Ed25519 signature over all of the above (`alg`, `public_key`,
  `signature`). The evidence key is derived from AUDIT_SIGNING_KEY, so there is no second
  secret to keep; its public half is published at /.well-known/rights-evidence-key and printed
  by `manage.py evidence_key`, so a third party can check who issued a bundle. Rotating
  AUDIT_SIGNING_KEY rotates it: bundles issued before verify with the key published then.

`bundle_verify` checks a bundle with rights/evidence_verify.py, the standard-library verifier a
third party runs too: one verifier, whose encoding must agree with the service's (rights.audit)
for any real bundle to verify.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db.models import OuterRef, Subquery

from rights import audit, clock
from rights import evidence_verify as standalone
from rights.models import AuditCheckpoint, AuditEvent, AuditStream, TakedownRequest

BUNDLE_FORMAT = standalone.BUNDLE_FORMAT
BUNDLE_VERSION = standalone.BUNDLE_VERSION
EVENT_FIELDS = standalone.EVENT_FIELDS
# What the evidence key's seed is derived for: a key for this one use, from the audit key.
KEY_PURPOSE = b"rights evidence bundle ed25519 key v1"


# --- The evidence key ---------------------------------------------------------------------------


def _private_key() -> Ed25519PrivateKey:
    seed = hmac.new(settings.AUDIT_SIGNING_KEY.encode("utf-8"), KEY_PURPOSE, hashlib.sha256)
    return Ed25519PrivateKey.from_private_bytes(seed.digest())


def evidence_public_key() -> str:
    """The public half of the service's evidence key, as hex: what verifiers are given."""
    raw = _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw.hex()


def bundle_sign(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with its `signed` member: Ed25519 over the canonical encoding of the rest."""
    key = _private_key()
    signature = key.sign(standalone.signed_part(bundle))
    return {
        **bundle,
        "signed": {
            "alg": standalone.SIGNATURE_ALG,
            "public_key": evidence_public_key(),
            "signature": signature.hex(),
        },
    }


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
    signed = (
        AuditCheckpoint.objects.filter(heads__has_key=stream)
        .order_by("-pk")
        .values_list("heads", flat=True)
        .first()
    )
    if head is not None and (signed is None or signed[stream][0] < head[0]):
        # Every event in a bundle is under a signed, witnessed checkpoint, which the verifier
        # insists on: sign one now rather than wait for the next.
        audit.checkpoint_create(witness=witness)
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
    bundle = {
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
    return bundle_sign(bundle)


def _time_or_none(moment: datetime | None) -> str | None:
    return audit.format_time(moment) if moment is not None else None


# --- Verifying ----------------------------------------------------------------------------------
# One verifier: the standard-library script a third party runs (rights/evidence_verify.py). It
# re-implements the trail's canonical encoding; a real bundle verifies only if its hashes agree
# with the ones the service wrote (rights/audit.py), and the tests verify real bundles.

BundleBroken = standalone.Broken


def bundle_verify(bundle: Any, *, key: str | None, public_key: str | None) -> list[str]:
    """The verdict's lines for an intact bundle; BundleBroken naming the first fault."""
    return standalone.verify(bundle, key, public_key)
