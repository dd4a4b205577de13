"""Links that go out in messages: the requester's status page, and staff's view of a case.

The status page's address is a secret: a signed token of the case reference (HMAC under
SECRET_KEY, with its own salt), unguessable without the key, and the same in every message, so
any email the requester kept leads back. Rotating SECRET_KEY with SECRET_KEY_FALLBACKS keeps old
links working until the fallback is dropped.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from rights.models import TakedownRequest

STATUS_SALT = "rights.status-page"


def status_token(case: TakedownRequest) -> str:
    return signing.Signer(salt=STATUS_SALT).sign(case.reference)


def reference_from_status_token(token: str) -> str | None:
    """The case reference a token was made for, or None for anything forged or mangled."""
    try:
        return signing.Signer(salt=STATUS_SALT).unsign(token)
    except signing.BadSignature:
        return None


def status_url(case: TakedownRequest) -> str:
    return settings.PUBLIC_BASE_URL + reverse("rights:status", args=[status_token(case)])


def staff_case_url(case: TakedownRequest) -> str:
    return settings.PUBLIC_BASE_URL + reverse("admin:rights_takedownrequest_change", args=[case.pk])
