"""Batched intake under races and at the API's edge: concurrent first copies of one
submission, batches sharing ids, bodies over the limit, webhooks of a batch's cases, and the
audit trail's chains when many streams are appended to at once."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from rights import audit
from rights.models import (
    AuditEvent,
    Channel,
    KeyScope,
    Notification,
    Requester,
    TakedownRequest,
    Target,
    WebhookDelivery,
)
from rights.services import webhooks
from rights.services.intake import Submission, takedown_submit, takedowns_submit
from rights.services.partner_keys import partner_key_create
from tests.api import partner_client, takedown_body
from tests.factories import ContentItemFactory, telegraph

TAKEDOWNS = "/api/v1/takedowns"
POSTGRES = pytest.mark.skipif(
    "postgresql" not in connection.settings_dict["ENGINE"], reason="row locks need PostgreSQL"
)


def _in_thread(work: Callable[[], Any], out: list[Any]) -> threading.Thread:
    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:
            out.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _hold_open(action: Callable[[], Any], ready: threading.Event, hold: float = 0.7) -> Any:
    with transaction.atomic():
        result = action()
        ready.set()
        time.sleep(hold)
    return result


def _api_submission(outlet: Any, url: str, key: str, email: str, **extra: Any) -> Submission:
    return Submission(
        channel=Channel.API,
        outlet=outlet,
        external_id=key,
        email=email,
        name="Legal desk",
        basis="copyright",
        urls=[url],
        statements=takedown_body()["statements"],
        explanation=extra.get("explanation", "Republished without a licence."),
    )


# --- a refused (409) item of a race still writes its Requester -------------------------


@POSTGRES
@pytest.mark.django_db(transaction=True)
def test_a_409_lost_in_a_race_writes_no_requester() -> None:
    """The id is taken by a concurrent first submission only seen when the case is inserted:
    the refused item (another request under that id) writes nothing, not even its requester."""
    outlet = telegraph()
    item = ContentItemFactory.create(outlet=outlet)
    ready = threading.Event()
    first: list[Any] = []
    second: list[Any] = []
    a = _in_thread(
        lambda: _hold_open(
            lambda: takedown_submit(
                submission=_api_submission(outlet, item.source_url, "k-1", "a@example.org")
            ),
            ready,
        ),
        first,
    )
    assert ready.wait(10)
    b = _in_thread(
        lambda: takedowns_submit(
            [_api_submission(outlet, item.source_url, "k-1", "stranger@example.org")]
        ),
        second,
    )
    a.join(15)
    b.join(15)
    assert not isinstance(first[0], BaseException), first
    outcome = second[0][0]
    assert getattr(outcome, "code", None) == "idempotency_conflict", outcome
    assert TakedownRequest.objects.count() == 1
    assert not Requester.objects.filter(email="stranger@example.org").exists()


# --- a verified retry racing its first copy is answered as a merge --------------------


@POSTGRES
@pytest.mark.django_db(transaction=True)
def test_a_verified_retry_racing_its_first_copy_is_a_retry_not_a_repeat() -> None:
    """The second copy of a verified submission, waiting on its first copy's requester, is that
    copy's retry: the same case, nothing merged, no `case.repeat_received` event."""
    outlet = telegraph()
    item = ContentItemFactory.create(outlet=outlet)

    def submission() -> Submission:
        return Submission(
            channel=Channel.EMAIL,
            external_id="<m-1@example.org>",
            email="owner@example.org",
            name="Owner",
            basis="copyright",
            urls=[item.source_url],
            statements=takedown_body()["statements"],
            explanation="Mine.",
            email_verified=True,
        )

    ready = threading.Event()
    first: list[Any] = []
    second: list[Any] = []
    a = _in_thread(
        lambda: _hold_open(lambda: takedown_submit(submission=submission()), ready), first
    )
    assert ready.wait(10)
    b = _in_thread(lambda: takedown_submit(submission=submission()), second)
    a.join(15)
    b.join(15)
    assert not isinstance(first[0], BaseException), first
    assert not isinstance(second[0], BaseException), second
    assert second[0].case.pk == first[0].case.pk
    assert not AuditEvent.objects.filter(action="case.repeat_received").exists()
    assert second[0].merged == []


# --- two batches with the same ids in opposite orders deadlock ------------------------


@POSTGRES
@pytest.mark.django_db(transaction=True)
def test_batches_with_shared_ids_in_opposite_orders_never_deadlock() -> None:
    """Two clients of one outlet send the same ids in opposite orders, with other contacts (so
    the requester locks do not serialise them): the cases are inserted in id order, so one batch
    waits for the other; each id is one case and every stream chains."""
    outlet = telegraph()
    items = [ContentItemFactory.create(outlet=outlet) for _ in range(40)]
    key = partner_key_create(outlet=outlet, actor="test").plaintext

    def batch(prefix: str, order: list[int]) -> dict[str, Any]:
        return {
            "requests": [
                {
                    **takedown_body(
                        items[n].source_url, contact={"email": f"{prefix}{n}@x.org", "name": "N"}
                    ),
                    "idempotency_key": f"k-{n}",
                }
                for n in order
            ]
        }

    forward = batch("a", list(range(40)))
    backward = batch("b", list(reversed(range(40))))
    statuses: list[int] = []
    retry_after: list[str | None] = []
    for attempt in range(3):
        barrier = threading.Barrier(2)
        answers: list[Any] = []

        def call(body: dict[str, Any], answers: list[Any] = answers, b: Any = barrier) -> Any:
            own = APIClient()
            own.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            b.wait()
            return own.post(f"{TAKEDOWNS}/batch", body, format="json")

        threads = [
            _in_thread(lambda: call(forward), answers),
            _in_thread(lambda: call(backward), answers),
        ]
        for thread in threads:
            thread.join(60)
        for answer in answers:
            assert not isinstance(answer, BaseException), answer
            statuses.append(answer.status_code)
            retry_after.append(answer.get("Retry-After"))
        if 503 in statuses:
            break
        # fresh ids for the next attempt
        for body in (forward, backward):
            for request in body["requests"]:
                request["idempotency_key"] += "x"
    for status, after in zip(statuses, retry_after, strict=True):
        assert status == 200 or (status == 503 and after == "1")
    # The trail after the races: every case's stream starts with its received event, and chains.
    for case in TakedownRequest.objects.all():
        first = AuditEvent.objects.get(stream=case.audit_stream(), seq=1)
        assert first.action == "case.received"
        assert case.targets.exists()
    audit.verify()
    assert 503 not in statuses, "deadlock between two batches sharing ids"


# --- Bodies --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/takedowns", "/takedowns/batch", "/clearance"])
def test_an_authenticated_json_body_over_the_limit_is_a_413(path: str) -> None:
    """Every POST under /api/ with a JSON body over the limit is a 413."""
    outlet = telegraph()
    scope = KeyScope.CLEARANCE if path == "/clearance" else KeyScope.TAKEDOWNS
    client = partner_client(outlet, scope=scope)
    big = "x" * 20_000
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000):
        answer = client.post(
            f"/api/v1{path}", {"urls": ["https://www.telegraph.co.uk/a"], "pad": big}, format="json"
        )
    assert answer.status_code == 413, (answer.status_code, answer.content[:300])


@pytest.mark.django_db
def test_a_form_body_over_the_limit_under_api_is_a_413() -> None:
    """A form-encoded body over the limit, read by UnreadableBodyMiddleware before any view,
    is a 413 problem too."""
    outlet = telegraph()
    client = partner_client(outlet)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000):
        answer = client.post(
            "/api/v1/takedowns/batch",
            "a=" + "x" * 20_000,
            content_type="application/x-www-form-urlencoded",
        )
    assert answer.status_code == 413, (answer.status_code, answer.content[:300])
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == "body_too_large"
    assert "10,000 bytes" in answer.json()["detail"]


def test_a_chunked_body_without_a_length_is_a_411_not_an_empty_request(live_server: Any) -> None:
    """Django reads no body without a Content-Length: a chunked call would be answered as if
    it were empty ("requests: this field is required"). It is refused as such instead."""
    key = partner_key_create(outlet=telegraph(), actor="test").plaintext
    host, port = live_server.url.removeprefix("http://").split(":")
    request = (
        b"POST /api/v1/takedowns/batch HTTP/1.1\r\n"
        + f"Host: {host}\r\nAuthorization: Bearer {key}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        + b"Connection: close\r\n\r\n"
    )
    # The headers alone, then the answer: it is given before any chunk is read (sending chunks
    # the server never reads would make its close a reset, which can lose the answer).
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        problem = json.loads(answer.read())
    assert answer.status == 411, problem
    assert answer.getheader("Content-Type") == "application/problem+json"
    assert problem["code"] == "length_required"
    assert not TakedownRequest.objects.exists()


# --- The audit trail: append_many with a new and an existing stream ----------------------------


@pytest.mark.django_db
def test_append_many_new_and_existing_streams_chain_and_verify() -> None:
    audit.append(stream="test:old", actor="t", action="x.one")
    audit.append(stream="test:old", actor="t", action="x.two")
    events = audit.append_many(
        [
            audit.Entry(stream="test:new", actor="t", action="x.a"),
            audit.Entry(stream="test:old", actor="t", action="x.three"),
            audit.Entry(stream="test:new", actor="t", action="x.b"),
            audit.Entry(stream="test:old", actor="t", action="x.four"),
            audit.Entry(stream="test:zzz", actor="t", action="x.c"),
        ]
    )
    assert [(e.stream, e.seq) for e in events] == [
        ("test:new", 1),
        ("test:old", 3),
        ("test:new", 2),
        ("test:old", 4),
        ("test:zzz", 1),
    ]
    old = list(AuditEvent.objects.filter(stream="test:old").order_by("seq"))
    assert [e.seq for e in old] == [1, 2, 3, 4]
    for before, after in itertools.pairwise(old):
        assert after.prev_hash == before.hash
    result = audit.verify()
    assert result is not None


# --- Webhooks: a batch's deliveries, none lost, none doubled on a retry ------------------------


@pytest.mark.django_db
@override_settings(PARTNER_WEBHOOK_ALLOW_LOOPBACK=True)
def test_batch_webhooks_received_and_approved_once_each() -> None:
    outlet = telegraph()
    webhooks.endpoint_register(outlet=outlet, url="http://127.0.0.1:9/hook", actor="test")
    items = [ContentItemFactory.create(outlet=outlet) for _ in range(6)]
    client = partner_client(outlet)
    body = {
        "requests": [
            {**takedown_body(item.source_url), "idempotency_key": f"w-{n}"}
            for n, item in enumerate(items)
        ]
    }
    first = client.post(f"{TAKEDOWNS}/batch", body, format="json")
    assert first.status_code == 200
    again = client.post(f"{TAKEDOWNS}/batch", body, format="json")
    assert [r["status"] for r in again.json()["results"]] == [200] * 6
    for case in TakedownRequest.objects.all():
        kinds = sorted(
            WebhookDelivery.objects.filter(notification__case=case).values_list(
                "event_type", flat=True
            )
        )
        assert kinds == ["case.approved", "case.received"], (case.reference, kinds)
    ids = list(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert len(ids) == len(set(ids)) == 12
    assert Notification.objects.filter(audience="partner").count() == 12
    assert Target.objects.count() == 6


# --- A mixed batch: answers in order, nothing written for the refused ones --------------------


@pytest.mark.django_db
def test_a_mixed_batch_answers_each_in_order() -> None:
    from django.utils import timezone

    from tests.factories import OutletFactory, RequesterFactory

    outlet = telegraph()
    other = OutletFactory.create(name="Other", slug="other", is_partner=True)
    mine = ContentItemFactory.create(outlet=outlet)
    theirs = ContentItemFactory.create(
        outlet=other, source_domain="www.other.example", source_url="https://www.other.example/a/1"
    )
    RequesterFactory.create(email="banned@example.org", suspended_at=timezone.now())
    client = partner_client(outlet)
    requests = [
        {**takedown_body(mine.source_url), "idempotency_key": "m-0"},
        {**takedown_body(theirs.source_url), "idempotency_key": "m-1"},
        {**takedown_body("https://nowhere.example/x"), "idempotency_key": "m-2"},
        {
            **takedown_body(contact={"email": "banned@example.org", "name": "B"}),
            "urls": [mine.source_url],
            "idempotency_key": "m-3",
        },
        {
            **takedown_body(contact={"email": "new1@example.org", "name": "N"}),
            "urls": [],
            "whole_domain": "nothing-here.example",
            "idempotency_key": "m-4",
        },
        {**takedown_body(mine.source_url, explanation="other"), "idempotency_key": "m-0"},
        {**takedown_body(mine.source_url), "idempotency_key": "m-0"},
        {"urls": "not a list"},
    ]
    answer = client.post(f"{TAKEDOWNS}/batch", {"requests": requests}, format="json")
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(8))
    got = [
        (r["status"], r.get("case", {}).get("state"), r.get("problem", {}).get("code"))
        for r in results
    ]
    print(got)
    assert got[0][0] == 201
    assert got[0][1] in {"approved", "removing", "removed"}
    assert got[1][:2] == (201, "in_review")
    assert got[2][:2] == (201, "not_found")
    assert got[3][0] in {403, 409, 422}
    assert got[3][2] == "requester_suspended"
    assert got[4][0] == 422
    assert got[5][0] == 409
    assert got[5][2] == "idempotency_conflict"
    assert got[6][0] == 200
    assert results[6]["case"]["reference"] == results[0]["case"]["reference"]
    assert got[7][0] == 422
    assert not Requester.objects.filter(email="new1@example.org").exists()
    assert TakedownRequest.objects.count() == 3
