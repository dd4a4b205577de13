"""Links that go out in messages: the requester's status page, the web requester's
confirmation link, and staff's view of a case.

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
CONFIRM_SALT = "rights.confirm-address"


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


def confirmation_token(case: TakedownRequest) -> str:
    """The web requester's confirmation link: signed and dated, so that it is unguessable and
    expires after CONFIRMATION_WINDOW; it is single-use because confirming moves the case on."""
    return signing.TimestampSigner(salt=CONFIRM_SALT).sign(case.reference)


def confirmation_url(case: TakedownRequest) -> str:
    return settings.PUBLIC_BASE_URL + reverse("rights:confirm", args=[confirmation_token(case)])


def reference_from_confirmation_token(token: str) -> tuple[str | None, bool]:
    """(reference, expired): the case a confirmation link was made for and whether its time has
    passed; (None, False) for anything forged or mangled."""
    signer = signing.TimestampSigner(salt=CONFIRM_SALT)
    try:
        return signer.unsign(token, max_age=settings.CONFIRMATION_WINDOW), False
    except signing.SignatureExpired:
        return signer.unsign(token), True
    except signing.BadSignature:
        return None, False


def staff_case_url(case: TakedownRequest) -> str:
    return settings.PUBLIC_BASE_URL + reverse("admin:rights_takedownrequest_change", args=[case.pk])
