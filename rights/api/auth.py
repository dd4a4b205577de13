"""Who is calling: partner keys as `Authorization: Bearer <key>`, and what each key may do.

`PartnerKeyAuthentication` sets `request.user` to an anonymous user and `request.auth` to the
`PartnerKey` (with `.outlet` and `.scope`); the scope permissions below refuse anything else.
Every partner view reads `request.auth.outlet` and scopes its queries by it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from rights.models import KeyScope, PartnerKey
from rights.services.partner_keys import partner_key_find

KEYWORD = "Bearer"


class PartnerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AnonymousUser, PartnerKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != KEYWORD.lower().encode():
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer <key>'.", code="bad_authorization"
            )
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer' and the key, with one space.",
                code="bad_authorization",
            )
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(
                "The key is not one this service issued.", code="bad_key"
            ) from exc
        key = partner_key_find(plaintext)
        if key is None:
            # One answer for unknown, wrong, revoked and expired keys: the caller learns
            # nothing about which prefixes exist.
            raise exceptions.AuthenticationFailed(
                "The key is unknown, revoked or expired.", code="bad_key"
            )
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'


class _Scope(BasePermission):
    scope: str = ""
    message = "This key may not be used here."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, PartnerKey):
            return False
        if key.scope != self.scope:
            self.message = f"This key's scope is '{key.scope}'; this endpoint needs '{self.scope}'."
            return False
        return True


class TakedownsScope(_Scope):
    scope = KeyScope.TAKEDOWNS.value


class ClearanceScope(_Scope):
    scope = KeyScope.CLEARANCE.value


class PartnerKeyThrottle(SimpleRateThrottle):
    """Per key, counted in the Redis cache (PARTNER_API_RATE). With Redis away, requests pass:
    PostgreSQL still records everything, as at the public doors (RATELIMIT_FAIL_OPEN)."""

    scope = "partner"

    def get_rate(self) -> str:
        return str(settings.PARTNER_API_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        key = request.auth
        return f"throttle:partner:{key.prefix}" if isinstance(key, PartnerKey) else None

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # a cache outage must never refuse or fail a partner's request
            return True
