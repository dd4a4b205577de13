"""The audit trail: intact after a realistic run, append-only in the database, and every kind of
tampering caught by `verify()`, naming the event (rights/audit.py)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from rights import audit
from rights.audit import GENESIS, AuditBroken, event_hash
from rights.models import AuditCheckpoint, AuditEvent, AuditStream, ContentItem, Target
from rights.states import CaseState, ContentStatus, TargetState
from rights.workflow import transition
from tests.factories import ContentItemFactory

pytestmark = pytest.mark.django_db

on_postgres = pytest.mark.skipif(
    "postgresql" not in connection.settings_dict["ENGINE"],
    reason="raw-SQL tampering needs PostgreSQL (ALTER TABLE ... DISABLE TRIGGER)",
)
STREAM = "case:TD-TAMPER1"


# --- Helpers -----------------------------------------------------------------------------


def sql(statement: str, params: Any = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def tamper(statement: str, params: Any = None) -> None:
    """What someone with the table owner's rights could do: switch the guard off, edit, on."""
    sql("ALTER TABLE rights_auditevent DISABLE TRIGGER USER")
    sql(statement, params)
    sql("ALTER TABLE rights_auditevent ENABLE TRIGGER USER")


def event_at(seq: int, stream: str = STREAM) -> AuditEvent:
    return AuditEvent.objects.get(stream=stream, seq=seq)


def rewrite(event: AuditEvent) -> None:
    """Store `event` as it now is (hash included) over the row with its id."""
    tamper(
        "UPDATE rights_auditevent SET stream=%s, seq=%s, created_at=%s, actor=%s, action=%s, "
        "data=%s::jsonb, prev_hash=%s, hash=%s WHERE id=%s",
        [
            event.stream,
            event.seq,
            event.created_at,
            event.actor,
            event.action,
            json.dumps(event.data),
            event.prev_hash,
            event.hash,
            event.pk,
        ],
    )


def broken() -> AuditBroken:
    with pytest.raises(AuditBroken) as excinfo:
        audit.verify()
    return excinfo.value


@pytest.fixture
def chain(db: None) -> list[AuditEvent]:
    """Five events in one stream, plus a little traffic in two others."""
    events = []
    for n in range(1, 6):
        events.append(
            audit.append(stream=STREAM, actor="staff:1", action=f"case.step{n}", data={"n": n})
        )
        audit.append(stream="system", actor="system:sweeper", action="sweep", data={"n": n})
    audit.append(stream="outlet:telegraph", actor="partner:telegraph", action="key.used")
    audit.verify()
    return events


# --- A realistic run ---------------------------------------------------------------------


def test_chain_intact_after_a_realistic_run(submit: Any, item: ContentItem) -> None:
    outlet = item.outlet
    others = [ContentItemFactory.create(outlet=outlet) for _ in range(3)]
    trusted = submit(
        channel="api",
        outlet=outlet,
        email="legal@telegraph.co.uk",
        urls=[item.source_url, others[0].public_url],
    ).case
    reviewed = submit(urls=[others[1].source_url, "https://unknown.example/x"]).case
    web = submit(channel="web", email="web@example.org", urls=[others[2].source_url]).case
    assert trusted.state == CaseState.APPROVED
    assert reviewed.state == CaseState.IN_REVIEW
    assert web.state == CaseState.AWAITING_CONFIRMATION

    first = audit.checkpoint_create()
    assert first is not None

    # Enforcement of the trusted case: content and targets removed, case closed.
    trusted = transition(trusted, CaseState.REMOVING, actor="system:enforcement")
    for target in Target.objects.filter(case=trusted).select_related("content_item"):
        assert target.content_item is not None
        transition(target.content_item, ContentStatus.REMOVED, actor="system:enforcement")
        transition(target, TargetState.REMOVED, actor="system:enforcement")
    transition(trusted, CaseState.REMOVED, actor="system:enforcement")
    # The reviewed case is rejected with reasons (recorded as a digest).
    transition(
        reviewed,
        CaseState.REJECTED,
        actor="staff:7",
        update={"decision_reasons": "Not the owner."},
        data={"reasons_digest": audit.text_digest("Not the owner.")},
    )
    transition(web, CaseState.EXPIRED, actor="system:sweeper")

    second = audit.checkpoint_create()
    assert second is not None
    result = audit.verify()

    assert result.events == AuditEvent.objects.count()
    assert result.streams == AuditEvent.objects.values("stream").distinct().count()
    assert result.checkpoints == 2
    assert {"case:" + c.reference for c in (trusted, reviewed, web)} <= set(
        AuditEvent.objects.values_list("stream", flat=True)
    )
    assert "outlet:telegraph" in second.heads
    for name, (seq, head_hash) in second.heads.items():
        assert AuditEvent.objects.get(stream=name, seq=seq).hash == head_hash
    # Every stream's head row matches its last event.
    for head in AuditStream.objects.exclude(name="checkpoints"):
        last = AuditEvent.objects.filter(stream=head.name).order_by("-seq").first()
        assert last is not None
        assert (head.seq, head.head_hash) == (last.seq, last.hash)


def test_empty_trail_verifies(db: None) -> None:
    assert audit.checkpoint_create() is None
    result = audit.verify()
    assert (result.events, result.streams, result.checkpoints) == (0, 0, 0)


def test_checkpoint_covers_only_recent_streams(chain: list[AuditEvent]) -> None:
    first = audit.checkpoint_create()
    assert first is not None
    assert set(first.heads) == {STREAM, "system", "outlet:telegraph"}
    assert first.heads[STREAM] == [5, chain[-1].hash]
    second = audit.checkpoint_create()
    assert second is not None  # the overlap window still holds every stream
    assert audit.verify().checkpoints == 2


def test_each_event_links_to_the_one_before(chain: list[AuditEvent]) -> None:
    assert chain[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
        assert after.seq == before.seq + 1
    for event in chain:
        assert event_hash(event_at(event.seq)) == event.hash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": 1.5}, "float"),
        ({"nested": [{"x": 0.1}]}, "float"),
        ({"text": "a\x00b"}, "NUL"),
        ({"a\x00b": "text"}, "NUL"),
        ({"text": "\ud800"}, "Unicode"),
    ],
)
def test_append_refuses_data_that_cannot_be_hashed_stably(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit.append(stream=STREAM, actor="staff:1", action="x", data=data)
    assert not AuditEvent.objects.exists()


def test_append_stores_exactly_what_was_hashed(db: None) -> None:
    data = {"b": [1, True, None, "ü"], "a": {"z": "中文", "y": 2**62}, "t": ("x", "y")}
    event = audit.append(stream=STREAM, actor="staff:1", action="x", data=data)
    stored = event_at(1)
    assert stored.data == {
        "b": [1, True, None, "ü"],
        "a": {"z": "中文", "y": 2**62},
        "t": ["x", "y"],
    }
    assert event_hash(stored) == stored.hash == event.hash
    assert stored.created_at == event.created_at
    audit.verify()


# --- The database refuses UPDATE and DELETE ----------------------------------------------


def test_orm_update_and_delete_refused(chain: list[AuditEvent]) -> None:
    event = event_at(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="case.nothing")
    event.data = {"n": 99}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event_at(5).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(stream=STREAM).delete()
    assert AuditEvent.objects.filter(stream=STREAM).count() == 5
    assert event_at(3).data == {"n": 3}
    audit.verify()


def test_orm_update_and_delete_of_checkpoints_refused(chain: list[AuditEvent]) -> None:
    checkpoint = audit.checkpoint_create()
    assert checkpoint is not None
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(heads={})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        checkpoint.delete()
    assert audit.verify().checkpoints == 1


@on_postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rights_auditevent SET data = '{\"n\": 99}'::jsonb WHERE seq = 3",
        "UPDATE rights_auditevent SET hash = repeat('0', 64) WHERE seq = 5",
        "DELETE FROM rights_auditevent WHERE seq = 5",
        "DELETE FROM rights_auditevent",
        "UPDATE rights_auditcheckpoint SET signature = repeat('0', 64)",
        "DELETE FROM rights_auditcheckpoint",
    ],
)
def test_raw_sql_update_and_delete_refused(chain: list[AuditEvent], statement: str) -> None:
    audit.checkpoint_create()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        sql(statement)
    result = audit.verify()
    assert result.checkpoints == 1
    assert AuditEvent.objects.filter(stream=STREAM).count() == 5


# --- Tampering ---------------------------------------------------------------------------


@on_postgres
def test_modified_payload(chain: list[AuditEvent]) -> None:
    tamper(
        "UPDATE rights_auditevent SET data = jsonb_set(data, '{n}', '33') "
        "WHERE stream = %s AND seq = 3",
        [STREAM],
    )
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 3)
    assert "modified" in str(error)
    assert f"id={chain[2].pk}" in str(error)


@on_postgres
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "staff:2"),
        ("action", "case.other"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_modified_metadata(chain: list[AuditEvent], column: str, value: str) -> None:
    tamper(
        f"UPDATE rights_auditevent SET {column} = %s WHERE stream = %s AND seq = 2",
        [value, STREAM],
    )
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 2)


@on_postgres
def test_deleted_middle_event(chain: list[AuditEvent]) -> None:
    tamper("DELETE FROM rights_auditevent WHERE stream = %s AND seq = 3", [STREAM])
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 4)
    assert "deleted" in str(error)


@on_postgres
def test_deleted_first_event(chain: list[AuditEvent]) -> None:
    tamper("DELETE FROM rights_auditevent WHERE stream = %s AND seq = 1", [STREAM])
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 2)


@on_postgres
def test_deleted_middle_event_renumbered(chain: list[AuditEvent]) -> None:
    """Closing the gap in the numbering still leaves a broken link."""
    tamper("DELETE FROM rights_auditevent WHERE stream = %s AND seq = 3", [STREAM])
    tamper("UPDATE rights_auditevent SET seq = seq - 1 WHERE stream = %s AND seq > 3", [STREAM])
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 3)
    assert error.event.pk == chain[3].pk
    assert "link" in str(error)


@on_postgres
def test_deleted_last_event(chain: list[AuditEvent]) -> None:
    tamper("DELETE FROM rights_auditevent WHERE stream = %s AND seq = 5", [STREAM])
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 4)
    assert "head" in str(error)


@on_postgres
def test_deleted_whole_stream(chain: list[AuditEvent]) -> None:
    tamper("DELETE FROM rights_auditevent WHERE stream = %s", [STREAM])
    error = broken()
    assert error.stream == STREAM
    assert "none remain" in str(error)


@on_postgres
def test_deleted_whole_stream_and_its_head_caught_by_checkpoint(
    chain: list[AuditEvent],
) -> None:
    audit.checkpoint_create()
    tamper("DELETE FROM rights_auditevent WHERE stream = %s", [STREAM])
    AuditStream.objects.filter(name=STREAM).delete()
    error = broken()
    assert error.stream == STREAM
    assert "checkpoint" in str(error)


def forged_event(stream: str, seq: int, prev_hash: str, **fields: Any) -> AuditEvent:
    base = event_at(seq - 1, stream) if seq > 1 else event_at(1, stream)
    event = AuditEvent(
        stream=stream,
        seq=seq,
        created_at=fields.get("created_at", base.created_at),
        actor=fields.get("actor", "staff:1"),
        action=fields.get("action", "case.forged"),
        data=fields.get("data", {"forged": True}),
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    return event


@on_postgres
def test_inserted_event_at_the_end(chain: list[AuditEvent]) -> None:
    """A well-formed event appended behind the writer's back: the head row gives it away."""
    forged = forged_event(STREAM, 6, chain[-1].hash)
    forged.save(force_insert=True)  # inserts are allowed; the chain itself must tell
    error = broken()
    assert error.event is not None
    assert error.event.pk == forged.pk
    assert (error.event.stream, error.event.seq) == (STREAM, 6)


@on_postgres
def test_inserted_event_in_the_middle(chain: list[AuditEvent]) -> None:
    tamper("UPDATE rights_auditevent SET seq = seq + 1000 WHERE stream = %s AND seq >= 3", [STREAM])
    tamper(
        "UPDATE rights_auditevent SET seq = seq - 999 WHERE stream = %s AND seq > 1000", [STREAM]
    )
    forged = forged_event(STREAM, 3, chain[1].hash)
    forged.save(force_insert=True)
    AuditStream.objects.filter(name=STREAM).update(seq=6)
    error = broken()
    assert error.event is not None
    # The forgery links to the event before it; the event after it no longer links.
    assert (error.event.stream, error.event.seq) == (STREAM, 4)
    assert error.event.pk == chain[2].pk
    assert "link" in str(error)


@on_postgres
def test_inserted_event_with_a_duplicate_number_refused(chain: list[AuditEvent]) -> None:
    forged = forged_event(STREAM, 3, chain[1].hash)
    with pytest.raises(DatabaseError), transaction.atomic():
        forged.save(force_insert=True)


@on_postgres
def test_two_events_swapped(chain: list[AuditEvent]) -> None:
    tamper("UPDATE rights_auditevent SET seq = 1000 WHERE stream = %s AND seq = 2", [STREAM])
    tamper("UPDATE rights_auditevent SET seq = 2 WHERE stream = %s AND seq = 3", [STREAM])
    tamper("UPDATE rights_auditevent SET seq = 3 WHERE stream = %s AND seq = 1000", [STREAM])
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 2)
    assert error.event.pk == chain[2].pk
    assert "reordered" in str(error)


def rechain(stream: str, start: int, change: dict[str, Any]) -> None:
    """The forger's best: edit event `start`, recompute every later hash, fix the head row."""
    previous = event_at(start - 1, stream).hash if start > 1 else GENESIS
    for event in AuditEvent.objects.filter(stream=stream, seq__gte=start).order_by("seq"):
        if event.seq == start:
            for name, value in change.items():
                setattr(event, name, value)
        event.prev_hash = previous
        event.hash = event_hash(event)
        rewrite(event)
        previous = event.hash
    last = AuditEvent.objects.filter(stream=stream).order_by("-seq").first()
    assert last is not None
    AuditStream.objects.filter(name=stream).update(seq=last.seq, head_hash=last.hash)


@on_postgres
def test_rechained_forgery_passes_the_hash_chain_alone(chain: list[AuditEvent]) -> None:
    """Without a checkpoint a consistent rewrite cannot be told from the real thing: this is
    why checkpoints exist (and why the next test matters)."""
    rechain(STREAM, 3, {"data": {"n": 33}})
    assert event_at(3).data == {"n": 33}
    audit.verify()


@on_postgres
@pytest.mark.parametrize("start", [1, 3, 5])
def test_rechained_forgery_caught_by_the_signed_checkpoint(
    chain: list[AuditEvent], start: int
) -> None:
    checkpoint = audit.checkpoint_create()
    assert checkpoint is not None
    rechain(STREAM, start, {"data": {"n": 33}})
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 5)
    assert "signed checkpoint" in str(error)


@on_postgres
def test_rechained_forgery_before_a_later_checkpoint_still_caught(
    chain: list[AuditEvent],
) -> None:
    audit.checkpoint_create()
    audit.append(stream=STREAM, actor="staff:1", action="case.step6")
    audit.checkpoint_create()
    rechain(STREAM, 2, {"actor": "staff:99"})
    error = broken()
    assert error.event is not None
    assert (error.event.stream, error.event.seq) == (STREAM, 5)


@on_postgres
def test_forged_checkpoint_without_the_key(chain: list[AuditEvent], tmp_path: Path) -> None:
    audit.checkpoint_create()
    rechain(STREAM, 3, {"data": {"n": 33}})
    # The forger re-signs the heads with a key of their own, and keeps a witness of their own.
    with override_settings(
        AUDIT_SIGNING_KEY="not-the-real-key", AUDIT_WITNESS=str(tmp_path / "forger.jsonl")
    ):
        sql("ALTER TABLE rights_auditcheckpoint DISABLE TRIGGER USER")
        sql("DELETE FROM rights_auditcheckpoint")
        sql("ALTER TABLE rights_auditcheckpoint ENABLE TRIGGER USER")
        audit.checkpoint_create()
        audit.verify()  # consistent under the forger's key ...
    error = broken()  # ... but not under ours
    assert error.stream == "checkpoints"
    assert "not authentic" in str(error)


@on_postgres
def test_modified_checkpoint(chain: list[AuditEvent]) -> None:
    checkpoint = audit.checkpoint_create()
    assert checkpoint is not None
    sql("ALTER TABLE rights_auditcheckpoint DISABLE TRIGGER USER")
    sql(
        "UPDATE rights_auditcheckpoint SET heads = jsonb_set(heads, %s, '4') WHERE id = %s",
        [f"{{{STREAM},0}}", checkpoint.pk],
    )
    sql("ALTER TABLE rights_auditcheckpoint ENABLE TRIGGER USER")
    error = broken()
    assert error.stream == "checkpoints"


@on_postgres
def test_deleted_checkpoint_in_the_middle(chain: list[AuditEvent]) -> None:
    first = audit.checkpoint_create()
    audit.checkpoint_create()
    assert first is not None
    sql("ALTER TABLE rights_auditcheckpoint DISABLE TRIGGER USER")
    sql("DELETE FROM rights_auditcheckpoint WHERE id = %s", [first.pk])
    sql("ALTER TABLE rights_auditcheckpoint ENABLE TRIGGER USER")
    error = broken()
    assert error.stream == "checkpoints"


# --- No personal data in the trail --------------------------------------------------------


@pytest.fixture
def distinctive() -> dict[str, str]:
    return {
        "name": "Xanthippe Quellwasser-Draxl",
        "email": "xanthippe.quellwasser@draxl-mail.example",
        "organisation": "Quellwasser Holdings Zzyzx",
        "explanation": "My cat Bartholomew-Zzyzx appears in this photograph without consent.",
        "url_slug": "xanthippe-quellwasser-at-home",
    }


def test_no_personal_data_in_events(
    submit: Any, item: ContentItem, distinctive: dict[str, str]
) -> None:
    result = submit(
        channel="web",
        name=distinctive["name"],
        email=distinctive["email"],
        organisation=distinctive["organisation"],
        explanation=distinctive["explanation"],
        basis="privacy",
        statements=["subject_or_agent", "good_faith", "accurate"],
        urls=[item.source_url, f"https://unknown.example/{distinctive['url_slug']}/"],
    )
    from rights.services.intake import takedown_confirm

    case = takedown_confirm(case=result.case)
    transition(
        case,
        CaseState.REJECTED,
        actor="staff:1",
        update={"decision_reasons": f"{distinctive['name']} is not in the photograph."},
        data={"reasons_digest": audit.text_digest("x")},
    )
    # A repeat, merged into nothing (the case is closed), then one that merges.
    again = submit(
        name=distinctive["name"], email=distinctive["email"], urls=[item.source_url]
    ).case
    submit(
        channel="staff",
        email_verified=True,
        actor="staff:1",
        name=distinctive["name"],
        email=distinctive["email"],
        urls=[item.public_url],
    )

    events = list(AuditEvent.objects.all())
    assert len(events) >= 6
    assert {e.stream for e in events} == {
        f"case:{result.case.reference}",
        f"case:{again.reference}",
    }
    text = json.dumps([[e.actor, e.action, e.data] for e in events], ensure_ascii=False)
    needles = [
        distinctive["name"],
        distinctive["email"],
        "quellwasser",
        "Quellwasser",
        "Xanthippe",
        "xanthippe",
        "draxl-mail",
        distinctive["organisation"],
        "Bartholomew",
        distinctive["url_slug"],
    ]
    for needle in needles:
        assert needle not in text, needle
    received = AuditEvent.objects.get(
        stream=f"case:{result.case.reference}", action="case.received"
    )
    assert received.data["explanation_digest"] == audit.text_digest(distinctive["explanation"])
    assert received.data["requester"] == f"requester:{result.case.requester_id}"
    audit.verify()
