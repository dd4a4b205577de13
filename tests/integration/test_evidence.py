"""Evidence bundles: the download from the console (permission-checked), `evidence_verify`,
and the standalone rights/evidence_verify.py, which must agree with it on real bundles, intact
or tampered with (so that the third party's copy of the encoding cannot drift)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

import rights
from rights import audit, evidence_verify
from rights.evidence import evidence_bundle, evidence_public_key
from rights.models import AuditCheckpoint, TakedownRequest
from tests.integration.conftest import CommandRun
from tests.integration.test_review_queue import staff_in

STANDALONE = Path(rights.__file__).parent / "evidence_verify.py"


@pytest.fixture
def case(submit: Any, item: Any) -> TakedownRequest:
    """A real case from the intake, a few more events on its stream, and a signed checkpoint
    (in the witness) over all of them."""
    case: TakedownRequest = submit(urls=[item.source_url]).case
    for n in range(3):
        audit.append(
            stream=case.audit_stream(),
            actor="staff:1",
            action="note.added",
            data={"n": n, "text": "Ünïcode ✓ stays as it is"},
        )
    assert audit.checkpoint_create() is not None
    return case


@pytest.fixture
def bundle(case: TakedownRequest) -> dict[str, Any]:
    return evidence_bundle(case=case)


@pytest.fixture
def standalone(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The script alone in an empty directory, run in isolated mode: nothing of the service can
    help it. Given a public key it checks the bundle's signature, which needs `cryptography`
    (the virtualenv's site-packages); without one, it runs with no site-packages at all."""
    script = tmp_path / "alone" / "evidence_verify.py"
    script.parent.mkdir()
    shutil.copy(STANDALONE, script)

    def _run(
        path: Path, *, key: str | None = None, public_key: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin"}
        if key is not None:
            env["AUDIT_SIGNING_KEY"] = key
        isolation = ["-I"] if public_key else ["-I", "-S"]
        arguments = ["--public-key", public_key] if public_key else []
        return subprocess.run(
            [sys.executable, *isolation, str(script), str(path), *arguments],
            capture_output=True,
            text=True,
            env=env,
            cwd=script.parent,
            timeout=60,
            check=False,
        )

    return _run


def write(tmp_path: Path, bundle: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    return path


# --- The bundle -------------------------------------------------------------------------------


def test_the_bundle_holds_the_cases_events_checkpoints_and_witness_lines(
    case: TakedownRequest, bundle: dict[str, Any]
) -> None:
    events = bundle["events"]
    assert bundle["stream"] == f"case:{case.reference}"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert len(events) >= 4
    assert events[0]["action"] == "case.received"
    assert bundle["head"] == {"seq": len(events), "hash": events[-1]["hash"]}
    (checkpoint,) = bundle["checkpoints"]
    assert checkpoint["heads"][bundle["stream"]] == [len(events), events[-1]["hash"]]
    assert checkpoint["previous"] == audit.GENESIS
    witness = Path(settings.AUDIT_WITNESS).read_text(encoding="utf-8").splitlines()
    assert checkpoint["witness"] == {"line": 1, "text": witness[0]}
    # Nothing personal: the requester is named by number only.
    assert "owner@example.org" not in json.dumps(bundle)


def test_a_second_checkpoint_links_to_the_first_and_the_bundle_signs_what_is_uncovered(
    case: TakedownRequest, tmp_path: Path, run_command: Callable[..., CommandRun]
) -> None:
    audit.append(stream=case.audit_stream(), actor="staff:1", action="note.added", data={})
    assert audit.checkpoint_create() is not None
    audit.append(stream=case.audit_stream(), actor="staff:1", action="note.added", data={})
    bundle = evidence_bundle(case=case)
    # The event written after the last checkpoint is signed as the bundle is built.
    first, second, third = bundle["checkpoints"]
    assert second["previous"] == first["signature"]
    assert third["previous"] == second["signature"]
    assert [c["witness"]["line"] for c in (first, second, third)] == [1, 2, 3]
    last = len(bundle["events"])
    assert third["heads"][bundle["stream"]][0] == last
    assert run_command("evidence_verify", str(write(tmp_path, bundle))).code == 0
    # Built again with nothing new, it signs nothing more.
    assert len(evidence_bundle(case=case)["checkpoints"]) == 3


def test_a_rewritten_trail_without_its_checkpoints_is_refused(
    bundle: dict[str, Any],
    tmp_path: Path,
    run_command: Callable[..., CommandRun],
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """Whoever can recompute the chain can rewrite it; only the checkpoints stop them, so a
    bundle whose events are not all under one is refused, not merely noted."""
    forged = copy.deepcopy(bundle)
    forged["events"][-1]["actor"] = "staff:999"
    previous = forged["events"][-2]["hash"]
    forged["events"][-1]["prev_hash"] = previous
    forged["events"][-1]["hash"] = evidence_verify.event_hash(forged["events"][-1])
    forged["head"]["hash"] = forged["events"][-1]["hash"]
    forged["checkpoints"] = []
    path = write(tmp_path, forged)
    ours = run_command("evidence_verify", str(path))
    assert ours.code == 1
    assert "not covered by a signed checkpoint" in ours.stderr
    theirs = standalone(path)
    assert theirs.returncode == 1
    assert "not covered by a signed checkpoint" in theirs.stderr


# --- Verifying: the command and the standalone script agree ----------------------------------


def test_an_intact_bundle_verifies_with_the_command_and_the_standalone_script(
    bundle: dict[str, Any],
    tmp_path: Path,
    run_command: Callable[..., CommandRun],
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    path = write(tmp_path, bundle)
    public_key = evidence_public_key()
    ours = run_command("evidence_verify", str(path))
    assert ours.code == 0, ours.stderr
    assert "evidence bundle intact" in ours.stdout
    assert "signatures checked with the signing key" in ours.stdout
    assert f"bundle signed by the service's evidence key {public_key[:16]}" in ours.stdout
    theirs = standalone(path, key=settings.AUDIT_SIGNING_KEY, public_key=public_key)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == ours.stdout
    # A third party without the audit key, with the published public key: everything but the
    # checkpoints' HMACs, and who issued the bundle.
    without = run_command("evidence_verify", str(path), "--without-key")
    keyless = standalone(path, public_key=public_key)
    assert keyless.returncode == without.code == 0
    assert "signatures NOT checked" in keyless.stdout
    assert keyless.stdout == without.stdout
    # With the standard library alone: the chain, and a plain word that the origin is not.
    bare = standalone(path)
    assert bare.returncode == 0
    assert "bundle signature NOT checked: no --public-key given" in bare.stdout


def test_the_bundle_is_signed_with_the_published_evidence_key(
    bundle: dict[str, Any],
    tmp_path: Path,
    run_command: Callable[..., CommandRun],
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    public_key = evidence_public_key()
    published = Client().get("/.well-known/rights-evidence-key")
    assert published.status_code == 200
    assert published.content.decode() == public_key + "\n"
    assert run_command("evidence_key").stdout.strip() == public_key
    assert bundle["signed"]["public_key"] == public_key
    assert bundle["signed"]["alg"] == "ed25519"
    # Fields nothing else vouches for (the case's state) are covered by the signature.
    altered = copy.deepcopy(bundle)
    altered["case"]["state"] = "rejected"
    result = standalone(write(tmp_path, altered), public_key=public_key)
    assert result.returncode == 1
    assert "the bundle's signature does not match its contents" in result.stderr
    # A bundle re-signed with some other key names that key: refused against ours.
    other = copy.deepcopy(bundle)
    other["signed"]["public_key"] = "ab" * 32
    result = standalone(write(tmp_path, other, "other.json"), public_key=public_key)
    assert result.returncode == 1
    assert "signed with another key" in result.stderr
    # Unsigned: refused even without a key to check against.
    unsigned = copy.deepcopy(bundle)
    del unsigned["signed"]
    assert "the bundle is not signed" in standalone(write(tmp_path, unsigned, "u.json")).stderr
    # Without `cryptography`, a signature that cannot be checked is not a verdict: exit 2.
    script = tmp_path / "alone" / "evidence_verify.py"
    bare = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(script),
            str(write(tmp_path, bundle, "b.json")),
            "--public-key",
            public_key,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert bare.returncode == 2
    assert "needs the `cryptography` package" in bare.stderr


def _modify(bundle: dict[str, Any]) -> None:
    bundle["events"][1]["data"]["tampered"] = True


def _modify_actor(bundle: dict[str, Any]) -> None:
    bundle["events"][2]["actor"] = "staff:999"


def _modify_time(bundle: dict[str, Any]) -> None:
    bundle["events"][2]["created_at"] = bundle["events"][2]["created_at"].replace(".", ",")


def _remove(bundle: dict[str, Any]) -> None:
    del bundle["events"][1]


def _reorder(bundle: dict[str, Any]) -> None:
    events = bundle["events"]
    events[1], events[2] = events[2], events[1]


def _renumber_after_removal(bundle: dict[str, Any]) -> None:
    del bundle["events"][1]
    for position, event in enumerate(bundle["events"], start=1):
        event["seq"] = position


def _cut_tail(bundle: dict[str, Any]) -> None:
    bundle["events"].pop()


def _cut_tail_and_head(bundle: dict[str, Any]) -> None:
    bundle["events"].pop()
    last = bundle["events"][-1]
    bundle["head"] = {"seq": last["seq"], "hash": last["hash"]}


def _rewrite_checkpoint(bundle: dict[str, Any]) -> None:
    stream = bundle["stream"]
    bundle["checkpoints"][0]["heads"][stream][0] -= 1


def _forge_signature(bundle: dict[str, Any]) -> None:
    """Cut the tail and re-sign a consistent checkpoint without the key: digest and witness
    line agree, the signature cannot."""
    import hashlib

    _cut_tail_and_head(bundle)
    checkpoint = bundle["checkpoints"][0]
    last = bundle["events"][-1]
    checkpoint["heads"][bundle["stream"]] = [last["seq"], last["hash"]]
    body = {k: checkpoint[k] for k in ("created_at", "heads", "previous")}
    checkpoint["digest"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    checkpoint["signature"] = "0" * 64
    record = json.loads(checkpoint["witness"]["text"])
    record.update(heads=checkpoint["heads"], digest=checkpoint["digest"], signature="0" * 64)
    checkpoint["witness"]["text"] = json.dumps(record)


def _modify_case(bundle: dict[str, Any]) -> None:
    bundle["case"]["channel"] = "staff" if bundle["case"]["channel"] != "staff" else "web"


def _rename_case(bundle: dict[str, Any]) -> None:
    bundle["case"]["reference"] = "TD-OTHER0"


def _witness_disagrees(bundle: dict[str, Any]) -> None:
    checkpoint = bundle["checkpoints"][0]
    record = json.loads(checkpoint["witness"]["text"])
    record["created_at"] = "2020-01-01T00:00:00.000000Z"
    checkpoint["witness"]["text"] = json.dumps(record)


TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "modified data": (_modify, "event #2 (position 2, id {id2}): its contents do not match"),
    "modified actor": (_modify_actor, "event #3 (position 3, id {id3}): its contents do not"),
    "modified time": (_modify_time, "event #3 (position 3, id {id3}): created_at is not"),
    "removed": (_remove, "event #3 (position 2, id {id3}): sequence number 3 where 2"),
    "reordered": (_reorder, "event #3 (position 2, id {id3}): sequence number 3 where 2"),
    "removed and renumbered": (
        _renumber_after_removal,
        "event #2 (position 2, id {id3}): does not link to the event before it",
    ),
    "tail cut": (_cut_tail, "event #{penultimate} (position {penultimate}, id {idp}): the "),
    "tail and head cut": (
        _cut_tail_and_head,
        "event #{last}: signed by checkpoint {cp} but missing from the bundle",
    ),
    "checkpoint rewritten": (_rewrite_checkpoint, "checkpoint {cp}: its digest does not match"),
    "signature forged": (_forge_signature, "checkpoint {cp}: its signature is not authentic"),
    "witness disagrees": (_witness_disagrees, "checkpoint {cp}: differs from its witness line 1"),
    "case fields altered": (_modify_case, "the bundle's signature does not match its contents"),
    "another case named": (_rename_case, "the bundle's case is not the one whose stream it holds"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampering_fails_naming_the_event_in_both_verifiers(
    how: str,
    bundle: dict[str, Any],
    tmp_path: Path,
    run_command: Callable[..., CommandRun],
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    tamper, expected = TAMPERING[how]
    events = bundle["events"]
    names = {
        "id2": events[1]["id"],
        "id3": events[2]["id"],
        "idp": events[-2]["id"],
        "penultimate": len(events) - 1,
        "last": len(events),
        "cp": bundle["checkpoints"][0]["id"],
    }
    tampered = copy.deepcopy(bundle)
    tamper(tampered)
    path = write(tmp_path, tampered)
    ours = run_command("evidence_verify", str(path))
    assert ours.code == 1
    assert ours.stderr.startswith("evidence bundle BROKEN: ")
    assert expected.format(**names) in ours.stderr
    theirs = standalone(path, key=settings.AUDIT_SIGNING_KEY, public_key=evidence_public_key())
    assert theirs.returncode == 1
    assert theirs.stderr == ours.stderr


def test_without_the_key_a_forged_signature_is_not_detected_but_said_unchecked(
    bundle: dict[str, Any],
    tmp_path: Path,
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """What the documentation promises: without the key, the chain and the witness's heads
    are checked, not the signature."""
    tampered = copy.deepcopy(bundle)
    _forge_signature(tampered)
    keyless = standalone(write(tmp_path, tampered))
    assert keyless.returncode == 0
    assert "signatures NOT checked" in keyless.stdout


def test_an_unreadable_file_exits_2(
    tmp_path: Path,
    run_command: Callable[..., CommandRun],
    standalone: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    path = tmp_path / "not.json"
    path.write_text("{", encoding="utf-8")
    assert run_command("evidence_verify", str(path)).code == 2
    assert standalone(path).returncode == 2
    wrong = write(tmp_path, {"format": "something else"}, "other.json")
    assert run_command("evidence_verify", str(wrong)).code == 1
    assert "not an evidence bundle" in standalone(wrong).stderr


# --- The download -------------------------------------------------------------------------


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_who_may_see_cases_download_the_bundle(
    case: TakedownRequest, tmp_path: Path, run_command: Callable[..., CommandRun]
) -> None:
    url = reverse("admin:rights_takedownrequest_evidence", args=[case.pk])
    assert url == f"/admin/rights/takedownrequest/{case.pk}/evidence/"
    response = login(staff_in("reviewer", "rita")).get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == (
        f'attachment; filename="evidence-{case.reference}.json"'
    )
    path = tmp_path / "downloaded.json"
    path.write_bytes(response.content)
    assert run_command("evidence_verify", str(path)).code == 0
    assert json.loads(response.content)["checkpoints"][0]["id"] == AuditCheckpoint.objects.get().pk


def test_the_download_is_permission_checked(case: TakedownRequest) -> None:
    url = reverse("admin:rights_takedownrequest_evidence", args=[case.pk])
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    plain = User.objects.create_user("plain", is_staff=True)
    assert login(plain).get(url).status_code == 403
    lead = login(staff_in("lead", "leah"))
    assert lead.get(url).status_code == 200
    missing = reverse("admin:rights_takedownrequest_evidence", args=[case.pk + 1000])
    assert lead.get(missing).status_code == 404
    assert lead.get("/admin/rights/takedownrequest/x/evidence/").status_code == 404
