"""The transition tables and the one function that changes state.

Every (from, to) pair of every machine is generated from the tables in rights/workflow.py, so
the tests follow the tables: an allowed move saves and appends exactly one audit event, a
forbidden one raises and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from django.db import models, transaction

from rights import audit
from rights.errors import TransitionNotAllowed
from rights.models import AuditEvent, ContentItem, TakedownRequest, Target
from rights.states import (
    CASE_TRANSITIONS,
    CLOCK_RUNNING_STATES,
    CLOSED_CASE_STATES,
    CONTENT_TRANSITIONS,
    MACHINES,
    TARGET_OUTCOMES,
    TARGET_TRANSITIONS,
    VISIBLE_CONTENT,
    CaseState,
    ContentStatus,
    TargetState,
    is_allowed,
)
from rights.workflow import transition
from tests.factories import ContentItemFactory, OutletFactory, TakedownRequestFactory, TargetFactory

C, T, S = CaseState, TargetState, ContentStatus
ACTOR = "staff:1"


# --- Building a row in a given state -----------------------------------------------------


def make_case(state: str) -> TakedownRequest:
    return TakedownRequestFactory.create(state=state)


def make_target(state: str) -> Target:
    return TargetFactory.create(state=state)


def make_content(state: str) -> ContentItem:
    return ContentItemFactory.create(status=state, outlet=OutletFactory.create(slug="the-outlet"))


def case_stream(case: TakedownRequest) -> str:
    return f"case:{case.reference}"


def target_stream(target: Target) -> str:
    return f"case:{target.case.reference}"


def content_stream(item: ContentItem) -> str:
    return "outlet:the-outlet"


# name: (model label, table, states)
MACHINE_CASES: dict[str, tuple[str, Mapping[str, frozenset[str]], type[models.TextChoices]]] = {
    "case": ("rights.TakedownRequest", CASE_TRANSITIONS, CaseState),
    "target": ("rights.Target", TARGET_TRANSITIONS, TargetState),
    "content": ("rights.ContentItem", CONTENT_TRANSITIONS, ContentStatus),
}
MAKE: dict[str, Callable[[str], Any]] = {
    "case": make_case,
    "target": make_target,
    "content": make_content,
}
STREAM: dict[str, Callable[[Any], str]] = {
    "case": case_stream,
    "target": target_stream,
    "content": content_stream,
}

# A representative subset that also runs on SQLite.
SMOKE = {
    ("case", C.AWAITING_CONFIRMATION, C.OPEN),
    ("case", C.OPEN, C.IN_REVIEW),
    ("case", C.IN_REVIEW, C.APPROVED),
    ("case", C.REMOVING, C.REMOVED),
    ("case", C.REMOVED, C.APPEALED),
    ("case", C.WITHDRAWN, C.OPEN),
    ("case", C.REMOVED, C.OPEN),
    ("case", C.OPEN, C.OPEN),
    ("target", T.PENDING, T.REMOVED),
    ("target", T.NOT_FOUND, T.REMOVED),
    ("content", S.LIVE, S.DISABLED),
    ("content", S.REMOVED, S.LIVE),
}


def pairs(*, allowed: bool) -> Iterator[Any]:
    for name, (_label, table, states) in MACHINE_CASES.items():
        for current in states.values:
            for to_state in states.values:
                if (to_state in table[current]) is not allowed:
                    continue
                marks = [pytest.mark.smoke] if (name, current, to_state) in SMOKE else []
                yield pytest.param(
                    name, current, to_state, marks=marks, id=f"{name}:{current}->{to_state}"
                )


ALLOWED = list(pairs(allowed=True))
FORBIDDEN = list(pairs(allowed=False))


# --- The tables themselves ---------------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.parametrize("name", sorted(MACHINE_CASES))
def test_table_covers_every_state_and_names_only_real_states(name: str) -> None:
    label, table, states = MACHINE_CASES[name]
    assert MACHINES[label].table is table
    assert set(table) == set(states.values)
    for targets in table.values():
        assert targets <= set(states.values)


@pytest.mark.smoke
def test_every_state_is_reachable_from_the_start() -> None:
    starts: dict[str, list[str]] = {
        "case": [C.AWAITING_CONFIRMATION, C.OPEN],
        "target": [T.PENDING],
        "content": [S.LIVE],
    }
    for name, (_label, table, states) in MACHINE_CASES.items():
        seen = set(starts[name])
        frontier = list(seen)
        while frontier:
            for nxt in table[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen == set(states.values), name


@pytest.mark.smoke
def test_state_groups_are_consistent() -> None:
    # A closed case leaves only by appeal.
    for state in CLOSED_CASE_STATES:
        assert CASE_TRANSITIONS[state] <= {C.APPEALED}
    assert not CLOSED_CASE_STATES & CLOCK_RUNNING_STATES
    assert T.PENDING not in TARGET_OUTCOMES
    assert {S.LIVE, S.RESTORED} == VISIBLE_CONTENT


@pytest.mark.smoke
def test_is_allowed_matches_the_tables() -> None:
    assert is_allowed("rights.TakedownRequest", "in_review", "approved")
    assert not is_allowed("rights.TakedownRequest", "approved", "in_review")
    assert not is_allowed("rights.TakedownRequest", "no-such-state", "open")
    assert not is_allowed("rights.Target", "pending", "no-such-state")


# --- Every allowed move ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "current", "to_state"), ALLOWED)
def test_allowed_transition_saves_and_appends_one_event(
    name: str, current: str, to_state: str
) -> None:
    label, _table, _states = MACHINE_CASES[name]
    field = MACHINES[label].field
    instance = MAKE[name](current)
    stream = STREAM[name](instance)
    before = AuditEvent.objects.count()

    result = transition(instance, to_state, actor=ACTOR)

    assert getattr(result, field) == to_state
    assert getattr(type(instance).objects.get(pk=instance.pk), field) == to_state
    # The caller's instance is left as it was.
    assert getattr(instance, field) == current
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(stream=stream)
    assert event.action == f"{name}.{to_state}"
    assert event.actor == ACTOR
    assert event.seq == 1
    assert event.data == {"id": instance.pk, "from": current, "to": to_state}
    audit.verify()


# --- Every forbidden move ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "current", "to_state"), FORBIDDEN)
def test_forbidden_transition_raises_and_writes_nothing(
    name: str, current: str, to_state: str
) -> None:
    label, _table, _states = MACHINE_CASES[name]
    field = MACHINES[label].field
    instance = MAKE[name](current)
    model = type(instance)
    row_before = model.objects.values().get(pk=instance.pk)

    with pytest.raises(TransitionNotAllowed) as excinfo:
        transition(instance, to_state, actor=ACTOR)

    assert excinfo.value.field == field
    assert repr(current) in str(excinfo.value)
    assert repr(to_state) in str(excinfo.value)
    assert model.objects.values().get(pk=instance.pk) == row_before
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("to_state", ["", "deleted", "OPEN", "Approved"])
def test_unknown_states_are_forbidden(to_state: str) -> None:
    case = make_case(C.OPEN)
    with pytest.raises(TransitionNotAllowed):
        transition(case, to_state, actor=ACTOR)
    case.refresh_from_db()
    assert case.state == C.OPEN
    assert not AuditEvent.objects.exists()


# --- closed_at ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "to_state",
    sorted({to for targets in CASE_TRANSITIONS.values() for to in targets}),
)
def test_closed_at_set_exactly_on_entering_a_closed_state(to_state: str) -> None:
    current = next(s for s, targets in CASE_TRANSITIONS.items() if to_state in targets)
    case = make_case(current)
    case = transition(case, to_state, actor=ACTOR)
    case.refresh_from_db()
    if to_state in CLOSED_CASE_STATES:
        assert case.closed_at is not None
    else:
        assert case.closed_at is None


@pytest.mark.smoke
@pytest.mark.django_db
def test_appeal_reopens_and_closes_again() -> None:
    case = make_case(C.REMOVING)
    case = transition(case, C.REMOVED, actor=ACTOR)
    first_closed = case.closed_at
    assert first_closed is not None

    case = transition(case, C.APPEALED, actor=ACTOR)
    case.refresh_from_db()
    assert case.closed_at is None

    case = transition(case, C.RESTORED, actor=ACTOR)
    case.refresh_from_db()
    assert case.closed_at is not None
    assert case.closed_at >= first_closed
    assert list(
        AuditEvent.objects.filter(stream=case_stream(case)).values_list("action", flat=True)
    ) == ["case.removed", "case.appealed", "case.restored"]
    audit.verify()


# --- The rest of the contract -----------------------------------------------------------


@pytest.mark.smoke
@pytest.mark.django_db
def test_update_and_data_go_with_the_move() -> None:
    case = make_case(C.IN_REVIEW)
    result = transition(
        case,
        C.REJECTED,
        actor=ACTOR,
        update={"decision_reasons": "Not the owner.", "trusted": False},
        data={"reasons_digest": audit.text_digest("Not the owner.")},
    )
    case.refresh_from_db()
    assert case.state == C.REJECTED
    assert case.decision_reasons == "Not the owner."
    assert case.updated_at > case.created_at
    assert result.pk == case.pk
    event = AuditEvent.objects.get()
    assert event.data == {
        "id": case.pk,
        "from": "in_review",
        "to": "rejected",
        "reasons_digest": audit.text_digest("Not the owner."),
    }


@pytest.mark.django_db
def test_explicit_stream_is_used() -> None:
    item = make_content(S.LIVE)
    transition(item, S.DISABLED, actor="system:failsafe", stream="case:TD-ABCDEFG")
    assert AuditEvent.objects.get().stream == "case:TD-ABCDEFG"


@pytest.mark.django_db
def test_content_without_outlet_goes_to_the_system_stream() -> None:
    item = ContentItemFactory.create(outlet=None)
    transition(item, S.REMOVED, actor=ACTOR)
    event = AuditEvent.objects.get()
    assert (event.stream, event.action) == ("system", "content.removed")


@pytest.mark.django_db
def test_successive_moves_chain_in_one_stream() -> None:
    target = make_target(T.PENDING)
    case = target.case
    transition(case, C.APPROVED, actor=ACTOR)
    transition(target, T.DISABLED, actor=ACTOR)
    transition(target, T.REMOVED, actor=ACTOR)
    events = list(AuditEvent.objects.filter(stream=case_stream(case)))
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.action for e in events] == ["case.approved", "target.disabled", "target.removed"]
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    audit.verify()


@pytest.mark.django_db
def test_stale_instance_is_checked_against_the_database() -> None:
    """The table is checked against the locked row, never against the caller's copy."""
    case = make_case(C.IN_REVIEW)
    stale = TakedownRequest.objects.get(pk=case.pk)
    transition(case, C.APPROVED, actor=ACTOR)
    assert stale.state == C.IN_REVIEW
    with pytest.raises(TransitionNotAllowed):
        transition(stale, C.REJECTED, actor=ACTOR)
    assert TakedownRequest.objects.get(pk=case.pk).state == C.APPROVED
    assert AuditEvent.objects.count() == 1


def move_then_fail(case: TakedownRequest) -> None:
    with transaction.atomic():
        transition(case, C.IN_REVIEW, actor=ACTOR)
        raise RuntimeError("the caller failed after the move")


@pytest.mark.django_db
def test_move_rolls_back_with_the_callers_transaction() -> None:
    case = make_case(C.OPEN)
    with pytest.raises(RuntimeError, match="caller failed"):
        move_then_fail(case)
    case.refresh_from_db()
    assert case.state == C.OPEN
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_forbidden_move_inside_a_transaction_leaves_earlier_work() -> None:
    case = make_case(C.OPEN)
    target = TargetFactory.create(case=case)
    with transaction.atomic():
        transition(target, T.REMOVED, actor=ACTOR)
        with pytest.raises(TransitionNotAllowed):
            transition(case, C.REMOVED, actor=ACTOR)
    target.refresh_from_db()
    case.refresh_from_db()
    assert (target.state, case.state) == (T.REMOVED, C.OPEN)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["target.removed"]
