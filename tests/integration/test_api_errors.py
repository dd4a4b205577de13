"""Every error under /api/ is RFC 9457 problem JSON naming what is wrong: authentication, scope,
unknown paths, methods, media types, unreadable JSON, bad fields, throttles (429, Retry-After)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.test import override_settings
from rest_framework.test import APIClient

from rights.api.errors import exception_handler
from rights.models import KeyScope, TakedownRequest
from tests.api import PROBLEM, partner_client, takedown_body
from tests.factories import telegraph

TAKEDOWNS = "/api/v1/takedowns"


@pytest.fixture
def client(db: None) -> APIClient:
    return partner_client(telegraph())


def problem_of(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"/api/problems/{code}"
    assert body["title"]
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer rk_00000000.wrong",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Bearer " + "x" * 5000,
    ],
)
def test_no_key_or_a_bad_key_is_a_401_with_the_scheme(db: None, header: str | None) -> None:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    answer = client.get(TAKEDOWNS)
    code = "not_authenticated" if header is None else answer.json()["code"]
    problem_of(answer, 401, code)
    assert answer["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_wrong_scope_is_a_403(db: None) -> None:
    outlet = telegraph()
    crawler = partner_client(outlet, KeyScope.CLEARANCE)
    body = problem_of(crawler.get(TAKEDOWNS), 403, "permission_denied")
    assert "takedowns" in body["detail"]
    filer = partner_client(outlet, KeyScope.TAKEDOWNS)
    problem_of(
        filer.post("/api/v1/clearance", {"urls": ["https://a.example/"]}, format="json"),
        403,
        "permission_denied",
    )


@pytest.mark.parametrize(
    "path", ["/api/", "/api/v1/", "/api/v1/nothing", "/api/v2/takedowns", "/api/v1/takedowns/a/b/c"]
)
def test_an_unknown_path_under_api_is_a_404_problem(client: APIClient, path: str) -> None:
    problem_of(client.get(path), 404, "not_found")


def test_a_method_the_endpoint_does_not_take_is_a_405(client: APIClient) -> None:
    answer = client.delete(TAKEDOWNS)
    problem_of(answer, 405, "method_not_allowed")
    assert "POST" in answer["Allow"]
    problem_of(client.get("/api/v1/clearance"), 403, "permission_denied")  # scope comes first


def test_a_body_that_is_not_json_is_a_415_or_a_parse_error(client: APIClient) -> None:
    problem_of(
        client.post(TAKEDOWNS, "urls=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )
    problem_of(
        client.post(TAKEDOWNS, b"--x\r\n", content_type="multipart/form-data; boundary=x"),
        415,
        "unsupported_media_type",
    )
    problem_of(
        client.post(TAKEDOWNS, "{not json", content_type="application/json"), 400, "parse_error"
    )
    problem_of(
        client.post(TAKEDOWNS, b"\xff\xfe{}", content_type="application/json"), 400, "parse_error"
    )
    for body in ("[]", "null", "42", '"text"'):
        answer = client.post(TAKEDOWNS, body, content_type="application/json")
        problem_of(answer, 422, "invalid_request")
    assert not TakedownRequest.objects.exists()


def test_bad_fields_are_named_each_one(client: APIClient) -> None:
    answer = client.post(
        TAKEDOWNS,
        {
            "urls": "https://one.example/",
            "basis": "whim",
            "statements": ["sworn?"],
            "contact": {"email": 7},
            "url": ["typo"],
        },
        format="json",
    )
    body = problem_of(answer, 422, "invalid_request")
    fields = {e["field"] for e in body["errors"]}
    assert {"urls", "basis", "statements[0]", "contact.name", "url"} <= fields
    # Shape passed, meaning did not: intake's own checks, in the API's field names.
    answer = client.post(
        TAKEDOWNS,
        takedown_body(
            "ftp://x.example/",
            "https://ok.example/a",
            contact={"email": "not-an-address", "name": "N"},
        ),
        format="json",
        HTTP_IDEMPOTENCY_KEY="x" * 300,
    )
    body = problem_of(answer, 422, "invalid_request")
    fields = {e["field"] for e in body["errors"]}
    assert {"urls[0]", "contact.email", "Idempotency-Key"} <= fields
    assert not TakedownRequest.objects.exists()


def test_a_throttled_key_gets_429_with_retry_after(db: None, settings: Any) -> None:
    settings.PARTNER_API_RATE = "3/m"
    outlet = telegraph()
    client, other = partner_client(outlet), partner_client(outlet)
    for _ in range(3):
        assert client.get(TAKEDOWNS).status_code == 200
    answer = client.get(TAKEDOWNS)
    body = problem_of(answer, 429, "throttled")
    assert 1 <= int(answer["Retry-After"]) <= 60
    assert f"try again in {answer['Retry-After']} seconds" in body["detail"]
    # Per key: the outlet's other key is not held back.
    assert other.get(TAKEDOWNS).status_code == 200


def test_docs_and_schema_need_no_key_even_with_a_bad_header(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("reference", ["%00", "TD-%00X", "%E2%80%AE", "x" * 40, "%F0%9F%98%80"])
def test_a_reference_no_case_can_have_is_a_404(client: APIClient, reference: str) -> None:
    problem_of(client.get(f"{TAKEDOWNS}/{reference}"), 404, "not_found")
    problem_of(client.post(f"{TAKEDOWNS}/{reference}/withdraw"), 404, "not_found")


def test_json_nested_too_deep_is_a_parse_error(client: APIClient) -> None:
    for path, body in (
        (TAKEDOWNS, "[" * 100_000 + "]" * 100_000),
        (f"{TAKEDOWNS}/batch", '{"requests": ' + "[" * 5_000 + "]" * 5_000 + "}"),
    ):
        problem_of(client.post(path, body, content_type="application/json"), 400, "parse_error")


@pytest.mark.parametrize(
    "query",
    ["page_size=%C2%B2", "page_size=%D9%A1", "updated_since=9999-12-31T23:59:59-23:59"],
)
def test_odd_list_parameters_are_a_422(client: APIClient, query: str) -> None:
    problem_of(client.get(f"{TAKEDOWNS}?{query}"), 422, "invalid_request")


def test_a_batch_refuses_one_idempotency_key_for_all_and_takes_null_items_one_by_one(
    client: APIClient,
) -> None:
    refused = client.post(
        f"{TAKEDOWNS}/batch",
        {"requests": [takedown_body()]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="whole-batch-1",
    )
    body = problem_of(refused, 422, "invalid_request")
    assert "idempotency_key" in body["detail"]
    assert not TakedownRequest.objects.exists()
    answer = client.post(f"{TAKEDOWNS}/batch", {"requests": [None]}, format="json")
    assert answer.status_code == 200, answer.content
    (item,) = answer.json()["results"]
    assert item["status"] == 422


def test_a_deadlock_is_a_503_to_try_again(rf: Any) -> None:
    """The database stopped this transaction to break a deadlock: nothing was written, and the
    same call succeeds again; a 503 with Retry-After says so, never a 500."""

    class Deadlock(Exception):
        sqlstate = "40P01"

    error = OperationalError("deadlock detected")
    error.__cause__ = Deadlock()
    answer = exception_handler(error, {})
    assert answer is not None
    assert answer.status_code == 503
    assert answer["Retry-After"] == "1"
    assert answer.data["code"] == "try_again"


def test_a_body_over_the_limit_is_a_413_naming_the_limit(client: APIClient) -> None:
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000):
        answer = client.post(
            "/api/v1/takedowns/batch",
            {
                "requests": [
                    takedown_body(f"https://www.telegraph.co.uk/{'a' * 200}/{n}") for n in range(60)
                ]
            },
            format="json",
        )
    body = problem_of(answer, 413, "body_too_large")
    assert "10,000 bytes" in body["detail"]
    assert not TakedownRequest.objects.exists()


def test_the_largest_lawful_clearance_call_is_read(db: None) -> None:
    """1,000 URLs of the longest length the API takes fit under the default body limit."""
    client = partner_client(telegraph(), scope=KeyScope.CLEARANCE)
    urls = [f"https://www.telegraph.co.uk/{n:04d}/{'a' * 4060}" for n in range(1000)]
    answer = client.post("/api/v1/clearance", {"urls": urls}, format="json")
    assert answer.status_code == 200, answer.content[:300]
    assert len(answer.json()["results"]) == 1000
