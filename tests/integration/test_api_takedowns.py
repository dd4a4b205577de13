"""The partner API's takedowns: one, batch, list, read, withdraw; idempotency (also two
concurrent calls with one key); and another outlet's cases, which do not exist for a partner."""

from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from rights.models import AuditEvent, Channel, ContentItem, Requester, TakedownRequest, Target
from rights.services.partner_keys import partner_key_create
from rights.states import CaseState
from tests.api import PROBLEM, partner_client, takedown_body
from tests.factories import (
    ContentItemFactory,
    OutletDomainFactory,
    OutletFactory,
    telegraph,
)

TAKEDOWNS = "/api/v1/takedowns"


@pytest.fixture
def world(db: None) -> dict[str, Any]:
    """Two partners: the Telegraph (a) and the Guardian (b), each with an article."""
    a = telegraph()
    b = OutletFactory.create(name="The Guardian", slug="guardian", is_partner=True)
    OutletDomainFactory.create(outlet=b, domain="theguardian.com")
    return {
        "a": a,
        "b": b,
        "item_a": ContentItemFactory.create(outlet=a),
        "item_b": ContentItemFactory.create(
            outlet=b,
            source_domain="www.theguardian.com",
            source_url="https://www.theguardian.com/world/2026/nov/01/story",
        ),
        "client_a": partner_client(a),
        "client_b": partner_client(b),
    }


@pytest.mark.smoke
def test_one_request_is_a_case_of_the_outlet_approved_at_once_for_its_own_content(
    world: dict[str, Any],
) -> None:
    item = world["item_a"]
    answer = world["client_a"].post(TAKEDOWNS, takedown_body(item.source_url), format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert answer["Location"] == f"{TAKEDOWNS}/{body['reference']}"
    case = TakedownRequest.objects.get(reference=body["reference"])
    assert (case.channel, case.outlet, case.trusted) == (Channel.API, world["a"], True)
    assert body["state"] in {CaseState.APPROVED, CaseState.REMOVING, CaseState.REMOVED}
    assert body["deadline_at"] is not None
    assert [t["url"] for t in body["targets"]] == [item.source_url]
    assert "trusted" not in body
    assert "requester" not in body
    received = AuditEvent.objects.get(stream=case.audit_stream(), action="case.received")
    assert received.actor == "partner:telegraph"


def test_idempotency_key_retry_returns_the_same_case_and_another_body_is_refused(
    world: dict[str, Any],
) -> None:
    client, item = world["client_a"], world["item_a"]
    first = client.post(
        TAKEDOWNS, takedown_body(item.source_url), format="json", HTTP_IDEMPOTENCY_KEY="cms-1"
    )
    again = client.post(
        TAKEDOWNS, takedown_body(item.source_url), format="json", HTTP_IDEMPOTENCY_KEY="cms-1"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reference"] == first.json()["reference"]
    other = client.post(
        TAKEDOWNS,
        takedown_body(item.source_url, explanation="Something else."),
        format="json",
        HTTP_IDEMPOTENCY_KEY="cms-1",
    )
    assert other.status_code == 409
    assert other["Content-Type"] == PROBLEM
    assert other.json()["code"] == "idempotency_conflict"
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert TakedownRequest.objects.count() == 1
    # Keys are the outlet's own: the Guardian's "cms-1" is another request altogether.
    guardian = world["client_b"].post(
        TAKEDOWNS,
        takedown_body(world["item_b"].source_url),
        format="json",
        HTTP_IDEMPOTENCY_KEY="cms-1",
    )
    assert guardian.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_calls_with_one_idempotency_key_make_one_case() -> None:
    outlet = telegraph()
    item = ContentItemFactory.create(outlet=outlet)
    key = partner_key_create(outlet=outlet, actor="test").plaintext
    body = takedown_body(item.source_url)
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def call() -> None:
        try:
            own = APIClient()
            own.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            barrier.wait()
            answers.append(own.post(TAKEDOWNS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-77"))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert len({a.json()["reference"] for a in answers}) == 1
    assert TakedownRequest.objects.count() == 1
    assert Target.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batches_with_the_same_ids_make_each_case_once() -> None:
    outlet = telegraph()
    items = [ContentItemFactory.create(outlet=outlet) for _ in range(8)]
    key = partner_key_create(outlet=outlet, actor="test").plaintext
    body = {
        "requests": [
            {**takedown_body(item.source_url), "idempotency_key": f"c-{n}"}
            for n, item in enumerate(items)
        ]
    }
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def call() -> None:
        try:
            own = APIClient()
            own.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
            barrier.wait()
            answers.append(own.post(f"{TAKEDOWNS}/batch", body, format="json"))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    first, second = ([r for r in a.json()["results"]] for a in answers)
    for one, other in zip(first, second, strict=True):
        assert sorted([one["status"], other["status"]]) == [200, 201]
        assert one["case"]["reference"] == other["case"]["reference"]
    assert TakedownRequest.objects.count() == 8
    assert Target.objects.count() == 8


def test_batch_answers_each_item_in_order_and_a_bad_item_sinks_nothing(
    world: dict[str, Any],
) -> None:
    item = world["item_a"]
    other = ContentItemFactory.create(outlet=world["a"])
    answer = world["client_a"].post(
        f"{TAKEDOWNS}/batch",
        {
            "requests": [
                {**takedown_body(item.source_url), "idempotency_key": "b-1"},
                takedown_body("not a url at all"),
                "not even an object",
                {**takedown_body(other.source_url), "basis": "whim"},
                takedown_body(other.source_url, contact={"email": "nobody", "name": "X"}),
                {**takedown_body(other.source_url), "idempotency_key": "b-2", "extra": 1},
                {**takedown_body(other.source_url), "idempotency_key": "b-3"},
            ]
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [201, 422, 422, 422, 422, 422, 201]
    assert results[1]["problem"]["errors"][0]["field"] == "requests[1].urls[0]"
    assert results[2]["problem"]["errors"][0]["field"] == "requests[2]"
    assert results[3]["problem"]["errors"][0]["field"] == "requests[3].basis"
    assert results[4]["problem"]["errors"][0]["field"] == "requests[4].contact.email"
    assert results[5]["problem"]["errors"][0]["field"] == "requests[5].extra"
    assert {r["case"]["reference"] for r in (results[0], results[6])} == set(
        TakedownRequest.objects.values_list("reference", flat=True)
    )
    # A retry of the batch: the items with keys return their cases, nothing new is made.
    retry = world["client_a"].post(
        f"{TAKEDOWNS}/batch",
        {"requests": [{**takedown_body(item.source_url), "idempotency_key": "b-1"}]},
        format="json",
    )
    assert retry.json()["results"][0]["status"] == 200
    assert retry.json()["results"][0]["case"]["reference"] == results[0]["case"]["reference"]
    assert TakedownRequest.objects.count() == 2


def test_one_id_twice_in_a_batch_is_one_case_and_another_body_under_it_is_refused(
    world: dict[str, Any],
) -> None:
    item = world["item_a"]
    other = ContentItemFactory.create(outlet=world["a"])
    first = {**takedown_body(item.source_url), "idempotency_key": "twice"}
    answer = world["client_a"].post(
        f"{TAKEDOWNS}/batch",
        {
            "requests": [
                first,
                first,
                {**takedown_body(other.source_url), "idempotency_key": "twice"},
            ]
        },
        format="json",
    )
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 409], results
    assert results[0]["case"]["reference"] == results[1]["case"]["reference"]
    assert results[2]["problem"]["code"] == "idempotency_conflict"
    # The item's own field, not the single request's header.
    assert results[2]["problem"]["errors"][0]["field"] == "requests[2].idempotency_key"
    assert TakedownRequest.objects.count() == 1


def test_a_refused_item_of_a_batch_writes_nothing_not_even_its_requester(
    world: dict[str, Any],
) -> None:
    item = world["item_a"]
    answer = world["client_a"].post(
        f"{TAKEDOWNS}/batch",
        {
            "requests": [
                # Names a domain with nothing of ours: refused by intake, after the checks the
                # serializer makes.
                takedown_body(
                    whole_domain="nothing-here.example",
                    urls=[],
                    contact={"email": "new-person@telegraph.co.uk", "name": "New"},
                ),
                takedown_body(item.source_url),
            ]
        },
        format="json",
    )
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [422, 201], results
    assert not Requester.objects.filter(email="new-person@telegraph.co.uk").exists()


def test_a_batch_costs_queries_for_its_cases_together_not_each(world: dict[str, Any]) -> None:
    """Intake writes a batch's cases, targets, events, statements and outbox rows together: a
    batch of 50 costs no more queries than one of 10 (the requester is the same)."""
    items = [ContentItemFactory.create(outlet=world["a"]) for _ in range(60)]
    client = world["client_a"]

    def batch(chunk: list[ContentItem]) -> int:
        body = {"requests": [takedown_body(i.source_url) for i in chunk]}
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(f"{TAKEDOWNS}/batch", body, format="json")
        assert [r["status"] for r in answer.json()["results"]] == [201] * len(chunk)
        return len(queries)

    small, large = batch(items[:10]), batch(items[10:60])
    assert large <= small <= 40, (small, large)


def test_batch_limits_are_problems(world: dict[str, Any]) -> None:
    client = world["client_a"]
    too_many = client.post(
        f"{TAKEDOWNS}/batch",
        {"requests": [takedown_body("https://x.example/")] * 101},
        format="json",
    )
    empty = client.post(f"{TAKEDOWNS}/batch", {"requests": []}, format="json")
    many_urls = [f"https://x.example/{n}" for n in range(100)]
    too_many_urls = client.post(
        f"{TAKEDOWNS}/batch", {"requests": [takedown_body(*many_urls)] * 11}, format="json"
    )
    for answer in (too_many, empty, too_many_urls):
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "requests"
    assert not TakedownRequest.objects.exists()


def test_list_filters_and_pages_with_a_cursor(world: dict[str, Any]) -> None:
    client = world["client_a"]
    items = [ContentItemFactory.create(outlet=world["a"]) for _ in range(5)]
    for item in items:
        assert (
            client.post(TAKEDOWNS, takedown_body(item.source_url), format="json").status_code == 201
        )
    world["client_b"].post(TAKEDOWNS, takedown_body(world["item_b"].source_url), format="json")
    seen: list[str] = []
    url: str | None = f"{TAKEDOWNS}?page_size=2"
    pages = 0
    while url:
        page = client.get(url).json()
        seen += [case["reference"] for case in page["results"]]
        url = page["next"]
        pages += 1
    ours = TakedownRequest.objects.filter(outlet=world["a"]).order_by("-received_at", "-pk")
    assert seen == [case.reference for case in ours]
    assert pages == 3
    states = set(ours.values_list("state", flat=True))
    state = next(iter(states))
    filtered = client.get(f"{TAKEDOWNS}?state={state}").json()["results"]
    assert {c["state"] for c in filtered} == {state}
    assert client.get(f"{TAKEDOWNS}?updated_since=2999-01-01T00:00:00Z").json()["results"] == []
    assert len(client.get(f"{TAKEDOWNS}?updated_since=2000-01-01T00:00:00Z").json()["results"]) == 5
    forged = [
        "cursor=" + quote(base64.b64encode(raw.encode()).decode())
        for raw in ("p=garbage", "p=%00", "p=2026-13-45", "r=1&p=x")
    ]
    for bad in [
        *forged,
        "state=nope",
        "updated_since=yesterday",
        "updated_since=2026-01-01T00:00:00",
        "cursor=garbage",
        "page_size=0",
        "page_size=1000",
    ]:
        answer = client.get(f"{TAKEDOWNS}?{bad}")
        assert answer.status_code == 422, bad
        assert answer["Content-Type"] == PROBLEM
        assert answer.json()["errors"][0]["field"] == bad.split("=")[0]


def test_list_costs_the_same_queries_for_any_page(
    world: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    client = world["client_a"]
    for _ in range(12):
        item = ContentItemFactory.create(outlet=world["a"])
        client.post(TAKEDOWNS, takedown_body(item.source_url), format="json")
    with django_assert_max_num_queries(6):
        small = client.get(f"{TAKEDOWNS}?page_size=2")
    with django_assert_max_num_queries(6):
        large = client.get(f"{TAKEDOWNS}?page_size=12")
    assert (len(small.json()["results"]), len(large.json()["results"])) == (2, 12)


@pytest.mark.parametrize("slash", ["", "/"])
def test_both_spellings_of_every_path_reach_the_same_endpoint(
    world: dict[str, Any], slash: str
) -> None:
    client, item = world["client_a"], world["item_b"]
    # Content of the Guardian's, asked for by the Telegraph: not trusted, it goes to review.
    made = client.post(f"{TAKEDOWNS}{slash}", takedown_body(item.source_url), format="json")
    assert made.status_code == 201
    reference = made.json()["reference"]
    assert made.json()["state"] == CaseState.IN_REVIEW
    assert client.get(f"{TAKEDOWNS}{slash}").status_code == 200
    assert client.get(f"{TAKEDOWNS}/{reference}{slash}").json()["reference"] == reference
    batch = client.post(f"{TAKEDOWNS}/batch{slash}", {"requests": [takedown_body()]}, format="json")
    assert batch.status_code == 200
    withdrawn = client.post(f"{TAKEDOWNS}/{reference}/withdraw{slash}")
    assert withdrawn.status_code == 200
    assert withdrawn.json()["state"] == CaseState.WITHDRAWN


def test_withdraw_is_audited_and_a_decided_case_cannot_be_withdrawn(
    world: dict[str, Any],
) -> None:
    client = world["client_a"]
    review = client.post(TAKEDOWNS, takedown_body(world["item_b"].source_url), format="json")
    reference = review.json()["reference"]
    assert client.post(f"{TAKEDOWNS}/{reference.lower()}/withdraw").status_code == 200
    event = AuditEvent.objects.get(stream=f"case:{reference}", action="case.withdrawn")
    assert event.actor == "partner:telegraph"
    again = client.post(f"{TAKEDOWNS}/{reference}/withdraw")
    assert again.status_code == 409
    assert again.json()["code"] == "not_withdrawable"
    approved = client.post(TAKEDOWNS, takedown_body(world["item_a"].source_url), format="json")
    refused = client.post(f"{TAKEDOWNS}/{approved.json()['reference']}/withdraw")
    assert refused.status_code == 409
    assert refused["Content-Type"] == PROBLEM


def _snapshot() -> tuple[Any, ...]:
    return (
        list(TakedownRequest.objects.order_by("pk").values_list("pk", "state", "updated_at")),
        list(Target.objects.order_by("pk").values_list("pk", "state")),
        list(ContentItem.objects.order_by("pk").values_list("pk", "status")),
        AuditEvent.objects.count(),
    )


def test_another_outlets_case_is_a_404_on_every_endpoint_and_nothing_changes(
    world: dict[str, Any],
) -> None:
    made = world["client_b"].post(
        TAKEDOWNS, takedown_body(world["item_a"].source_url), format="json"
    )
    reference = made.json()["reference"]
    assert made.json()["state"] == CaseState.IN_REVIEW  # withdrawable by its own outlet
    attacker = world["client_a"]
    before = _snapshot()
    for spelling in (reference, reference.lower(), f" {reference}"):
        for method, path in (
            ("get", f"{TAKEDOWNS}/{spelling}"),
            ("post", f"{TAKEDOWNS}/{spelling}/withdraw"),
        ):
            answer = getattr(attacker, method)(path)
            assert answer.status_code == 404, (method, path)
            assert answer["Content-Type"] == PROBLEM
            assert reference not in answer.content.decode().replace(spelling, "")
    assert reference not in attacker.get(TAKEDOWNS).content.decode()
    assert reference not in attacker.get(f"{TAKEDOWNS}?state=in_review").content.decode()
    # Guessing B's idempotency key reveals nothing either: A's keys are A's own.
    world["client_b"].post(
        TAKEDOWNS,
        takedown_body(world["item_b"].source_url),
        format="json",
        HTTP_IDEMPOTENCY_KEY="guessable",
    )
    before = _snapshot()
    guess = attacker.post(
        TAKEDOWNS,
        takedown_body(world["item_b"].source_url),
        format="json",
        HTTP_IDEMPOTENCY_KEY="guessable",
    )
    assert guess.status_code == 201
    assert guess.json()["reference"] not in {reference}
    assert TakedownRequest.objects.filter(outlet=world["b"]).count() == 2
    assert _snapshot()[0][: len(before[0])] == before[0]
    # And the owner still can.
    assert world["client_b"].post(f"{TAKEDOWNS}/{reference}/withdraw").status_code == 200


def test_a_whole_domain_request_of_the_outlets_own_domain(world: dict[str, Any]) -> None:
    answer = world["client_a"].post(
        TAKEDOWNS, takedown_body(whole_domain="telegraph.co.uk"), format="json"
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["whole_domain"] == "telegraph.co.uk"
    nothing = world["client_a"].post(
        TAKEDOWNS, takedown_body(whole_domain="nothing-here.example"), format="json"
    )
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "whole_domain"
