"""The API's published schema (/api/schema/) is valid OpenAPI 3, and every endpoint it names,
fuzzed from that schema with well-formed and malformed requests (schemathesis, on hypothesis)
over a real loopback server, answers without a 5xx, every error as problem JSON."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from rights.models import KeyScope
from rights.services.partner_keys import partner_key_create
from tests.api import PROBLEM, takedown_body
from tests.factories import ContentItemFactory, telegraph

EXAMPLES = 5


@pytest.fixture
def api(live_server: Any) -> dict[str, Any]:
    outlet = telegraph()
    item = ContentItemFactory.create(outlet=outlet)
    keys = {
        scope: partner_key_create(outlet=outlet, scope=scope, actor="test").plaintext
        for scope in KeyScope.values
    }
    made = requests.post(
        f"{live_server.url}/api/v1/takedowns",
        json=takedown_body(item.source_url),
        headers={"Authorization": f"Bearer {keys['takedowns']}"},
        timeout=10,
    )
    assert made.status_code == 201
    answer = requests.get(
        f"{live_server.url}/api/schema/", headers={"Accept": "application/json"}, timeout=10
    )
    assert answer.status_code == 200
    return {"url": live_server.url, "keys": keys, "schema": answer.json()}


@pytest.mark.django_db(transaction=True)
def test_the_schema_is_valid_openapi_3_and_names_every_endpoint(api: dict[str, Any]) -> None:
    schema = api["schema"]
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/takedowns",
        "/api/v1/takedowns/batch",
        "/api/v1/takedowns/{reference}",
        "/api/v1/takedowns/{reference}/withdraw",
        "/api/v1/clearance",
        "/api/v1/webhook/deliveries",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["partnerKey"]["scheme"] == "bearer"
    # Examples for a developer to start from.
    post = schema["paths"]["/api/v1/takedowns"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.django_db(transaction=True)
def test_every_endpoint_fuzzed_from_its_schema_answers_without_a_5xx(api: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(api["schema"])
    # Every operation loads (an invalid one would raise here).
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 7
    seen: list[str] = []
    for operation in operations:
        scope = "clearance" if operation.path.endswith("/clearance") else "takedowns"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(
                operation, mode, api["url"], {"Authorization": f"Bearer {api['keys'][scope]}"}, seen
            )
    assert len(seen) >= len(operations) * 2


def fuzz(operation: Any, mode: Any, base_url: str, auth: dict[str, str], seen: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        response = case.call(base_url=base_url, headers=auth, timeout=10)
        label = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, (label, response.text[:500])
        if response.status_code >= 400:
            headers = {name.lower(): value for name, value in response.headers.items()}
            kind = str(headers.get("content-type", ""))
            assert PROBLEM in kind, (label, kind, response.text[:300])
        seen.append(label)

    call()
