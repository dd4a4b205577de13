"""Staff logins: whose address a failed login counts against (django-axes)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from rights.web.limits import forwarded_client_ip


def client_ip(request: HttpRequest) -> str:
    """The connection's address, or, behind our own proxy (TRUST_X_FORWARDED_FOR), the one the
    proxy saw: the same address the public doors' rate limits count. Never the client's own
    claim in a header, which would let a guesser pick a fresh address for every try."""
    if settings.TRUST_X_FORWARDED_FOR:
        return forwarded_client_ip(request)
    return str(request.META.get("REMOTE_ADDR", ""))
