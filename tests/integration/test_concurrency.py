"""Two real database connections racing for the same row or the same audit stream.

Django gives each thread its own connection, so each thread below is a separate PostgreSQL
session; the overlap is forced with events and a sleep inside an open transaction.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction

from rights import audit
from rights.errors import TransitionNotAllowed
from rights.models import AuditEvent, Requester, TakedownRequest
from rights.services.intake import IdempotencyConflict, Submission, takedown_submit
from rights.states import CaseState, TargetState
from rights.workflow import transition
from tests.factories import (
    ContentItemFactory,
    RequesterFactory,
    TakedownRequestFactory,
    TargetFactory,
    statements_for,
    telegraph,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "postgresql" not in connection.settings_dict["ENGINE"],
        reason="row locks need PostgreSQL (SQLite serialises whole-database writes)",
    ),
]

HOLD = 0.5  # seconds the first writer keeps its transaction open
TIMEOUT = 10


class Racer(threading.Thread):
    """Runs `work` on its own connection; keeps its result or exception and how long it took."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.went_at = 0.0  # when it began its database work
        self.finished_at = 0.0

    def run(self) -> None:
        self.went_at = time.monotonic()
        try:
            self.result = self.work()
        except BaseException as exc:
            self.error = exc
        finally:
            self.finished_at = time.monotonic()
            connections.close_all()

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.went_at

    def finish(self) -> None:
        self.join(TIMEOUT)
        assert not self.is_alive(), "a racer is stuck"


def hold_open(action: Callable[[], Any], ready: threading.Event) -> Callable[[], Any]:
    """Do `action` in a transaction, signal, and keep the transaction (and its locks) open."""

    def work() -> Any:
        with transaction.atomic():
            result = action()
            ready.set()
            time.sleep(HOLD)
        return result

    return work


class after:  # reads as a phrase: Racer(after(ready, action))
    """Wait for `ready`, then do `action`; `went_at` is when the wait ended."""

    def __init__(self, ready: threading.Event, action: Callable[[], Any]) -> None:
        self.ready = ready
        self.action = action
        self.went_at = 0.0

    def __call__(self) -> Any:
        assert self.ready.wait(TIMEOUT), "the first racer never got going"
        self.went_at = time.monotonic()
        return self.action()


def blocked_for(racer: Racer) -> float:
    assert isinstance(racer.work, after)
    return racer.finished_at - racer.work.went_at


def test_two_transitions_of_one_case_one_wins() -> None:
    case = TakedownRequestFactory.create(state=CaseState.IN_REVIEW)
    ready = threading.Event()
    a = Racer(hold_open(lambda: transition(case, CaseState.APPROVED, actor="staff:a"), ready))
    b = Racer(after(ready, lambda: transition(case, CaseState.REJECTED, actor="staff:b")))
    a.start()
    b.start()
    a.finish()
    b.finish()

    assert a.error is None
    assert isinstance(b.error, TransitionNotAllowed)
    assert "'approved'" in str(b.error)  # B saw A's committed state, not the one it started from
    # B waited for A's row lock rather than reading past it.
    assert blocked_for(b) >= HOLD * 0.8
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.APPROVED
    events = list(AuditEvent.objects.filter(stream=f"case:{case.reference}"))
    assert [(e.seq, e.action, e.actor) for e in events] == [(1, "case.approved", "staff:a")]
    audit.verify()


def test_two_identical_transitions_one_wins() -> None:
    target = TargetFactory.create(state=TargetState.PENDING)
    ready = threading.Event()
    a = Racer(hold_open(lambda: transition(target, TargetState.REMOVED, actor="a"), ready))
    b = Racer(after(ready, lambda: transition(target, TargetState.REMOVED, actor="b")))
    a.start()
    b.start()
    a.finish()
    b.finish()

    assert a.error is None
    assert isinstance(b.error, TransitionNotAllowed)
    assert AuditEvent.objects.filter(action="target.removed").count() == 1
    audit.verify()


def test_many_racers_exactly_one_wins() -> None:
    case = TakedownRequestFactory.create(state=CaseState.IN_REVIEW)
    barrier = threading.Barrier(6)
    choices = [CaseState.APPROVED, CaseState.REJECTED, CaseState.WITHDRAWN] * 2

    def racer(to_state: str, n: int) -> Callable[[], Any]:
        def work() -> Any:
            barrier.wait(TIMEOUT)
            return transition(case, to_state, actor=f"staff:{n}")

        return work

    racers = [Racer(racer(to_state, n)) for n, to_state in enumerate(choices)]
    for r in racers:
        r.start()
    for r in racers:
        r.finish()

    winners = [r for r in racers if r.error is None]
    assert len(winners) == 1
    assert all(isinstance(r.error, TransitionNotAllowed) for r in racers if r is not winners[0])
    final = TakedownRequest.objects.get(pk=case.pk)
    assert final.state == winners[0].result.state
    assert AuditEvent.objects.filter(stream=f"case:{case.reference}").count() == 1
    audit.verify()


@pytest.mark.parametrize("stream_exists", [False, True], ids=["new-stream", "existing-stream"])
def test_concurrent_appends_to_one_stream(stream_exists: bool) -> None:
    stream = "case:TD-RACE001"
    if stream_exists:
        audit.append(stream=stream, actor="system", action="case.received")
    first = 2 if stream_exists else 1
    ready = threading.Event()
    a = Racer(hold_open(lambda: audit.append(stream=stream, actor="a", action="x.a"), ready))
    b = Racer(after(ready, lambda: audit.append(stream=stream, actor="b", action="x.b")))
    a.start()
    b.start()
    a.finish()
    b.finish()

    assert a.error is None
    assert b.error is None
    assert (a.result.seq, b.result.seq) == (first, first + 1)
    assert b.result.prev_hash == a.result.hash
    assert blocked_for(b) >= HOLD * 0.8  # serialised on the stream's head
    events = list(AuditEvent.objects.filter(stream=stream).order_by("seq"))
    assert [e.actor for e in events][-2:] == ["a", "b"]
    assert [e.seq for e in events] == list(range(1, first + 2))
    result = audit.verify()
    assert result.events == first + 1


def test_appends_to_different_streams_do_not_wait() -> None:
    ready = threading.Event()
    a = Racer(hold_open(lambda: audit.append(stream="case:TD-A", actor="a", action="x"), ready))
    b = Racer(after(ready, lambda: audit.append(stream="case:TD-B", actor="b", action="x")))
    a.start()
    b.start()
    a.finish()
    b.finish()
    assert a.error is None
    assert b.error is None
    assert blocked_for(b) < HOLD * 0.8
    assert b.finished_at < a.finished_at, "B finished while A still held its transaction open"
    assert (a.result.seq, b.result.seq) == (1, 1)
    audit.verify()


def test_many_concurrent_appends_keep_one_chain() -> None:
    stream = "case:TD-MANY"
    barrier = threading.Barrier(8)

    def work(n: int) -> Callable[[], Any]:
        def append_some() -> list[int]:
            barrier.wait(TIMEOUT)
            return [
                audit.append(stream=stream, actor=f"w{n}", action="x", data={"i": i}).seq
                for i in range(5)
            ]

        return append_some

    racers = [Racer(work(n)) for n in range(8)]
    for r in racers:
        r.start()
    for r in racers:
        r.finish()
    assert all(r.error is None for r in racers)
    seqs = sorted(seq for r in racers for seq in r.result)
    assert seqs == list(range(1, 41))
    assert audit.verify().events == 40


@pytest.mark.parametrize("known_requester", [False, True], ids=["new-requester", "known"])
@pytest.mark.parametrize("channel", ["email", "web", "api"])
def test_the_same_submission_id_twice_at_once_makes_one_case(
    known_requester: bool, channel: str
) -> None:
    """A redelivered email, a double-clicked form, a retried API call, on two connections at
    once: the second waits for the first and returns its case."""
    outlet = telegraph()
    item = ContentItemFactory.create(outlet=outlet)
    if known_requester:
        RequesterFactory.create(email="owner@example.org")
    submission = Submission(
        channel=channel,
        email="owner@example.org",
        name="Owner",
        basis="copyright",
        statements=statements_for("copyright"),
        urls=[item.source_url],
        external_id="<retry-1@mail.example>",
        outlet=outlet if channel == "api" else None,
    )
    ready = threading.Event()
    a = Racer(hold_open(lambda: takedown_submit(submission=submission), ready))
    b = Racer(after(ready, lambda: takedown_submit(submission=submission)))
    a.start()
    b.start()
    a.finish()
    b.finish()

    assert a.error is None
    assert b.error is None
    assert a.result.created
    assert not b.result.created
    assert b.result.case.pk == a.result.case.pk
    assert TakedownRequest.objects.count() == 1
    assert Requester.objects.count() == 1
    assert blocked_for(b) >= HOLD * 0.8
    audit.verify()


def test_the_same_id_from_two_senders_at_once_makes_one_case_and_refuses_the_other() -> None:
    """Different requesters do not serialise on one requester row: the database's unique key
    on the submission's source decides, and the loser is refused without a trace."""
    item = ContentItemFactory.create(outlet=telegraph())

    def send(email: str) -> Any:
        return takedown_submit(
            submission=Submission(
                channel="email",
                email=email,
                name="Someone",
                urls=[item.source_url],
                external_id="<shared@mail.example>",
            )
        )

    ready = threading.Event()
    a = Racer(hold_open(lambda: send("first@example.org"), ready))
    b = Racer(after(ready, lambda: send("second@example.org")))
    a.start()
    b.start()
    a.finish()
    b.finish()

    assert a.error is None
    assert isinstance(b.error, IdempotencyConflict)
    assert TakedownRequest.objects.count() == 1
    audit.verify()
