"""Helpers for the partner API's tests: a key for an outlet, and a client that sends it."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from rights.models import KeyScope, Outlet
from rights.services.partner_keys import partner_key_create
from tests.factories import statements_for


def partner_client(outlet: Outlet, scope: str = KeyScope.TAKEDOWNS) -> APIClient:
    """A client sending a fresh key of `outlet` with `scope` as `Authorization: Bearer`."""
    new = partner_key_create(outlet=outlet, scope=scope, actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.plaintext}")
    return client


def takedown_body(*urls: str, **overrides: Any) -> dict[str, Any]:
    """A complete takedown request, as a partner sends it."""
    body: dict[str, Any] = {
        "urls": list(urls),
        "basis": "copyright",
        "statements": statements_for("copyright"),
        "explanation": "Republished without a licence.",
        "contact": {"email": "legal@telegraph.co.uk", "name": "Legal desk"},
    }
    body.update(overrides)
    return body


PROBLEM = "application/problem+json"
