"""Rate limits at the public doors: django-ratelimit's counters, kept in Redis through Django's
cache, so every web server counts together.

The views call `limit_hit` for each limit instead of the library's decorator: it gives the time
left in the window (for the 429 page and its Retry-After header), and a Redis that is down or
slow counts as no limit at all (Django's Redis cache raises where the library expects a quiet
miss), so an outage of the counters never takes a door down.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]
from redis.exceptions import RedisError

from rights.services.intake_checks import canonical_email

logger = logging.getLogger(__name__)

Key = str | Callable[[str, HttpRequest], str]


@dataclass(frozen=True)
class Limited:
    """A request over a limit: how long until the window it counted in is over."""

    retry_after: int

    @property
    def retry_at(self) -> datetime:
        return timezone.now() + timedelta(seconds=self.retry_after)

    @property
    def wait_words(self) -> str:
        """ "about 35 minutes", in words a person reads at a glance."""
        if self.retry_after < 60:
            return _("a minute")
        minutes = (self.retry_after + 59) // 60
        if minutes < 120:
            return ngettext("about %(n)d minute", "about %(n)d minutes", minutes) % {"n": minutes}
        hours = (minutes + 59) // 60
        return ngettext("about %(n)d hour", "about %(n)d hours", hours) % {"n": hours}


def limit_hit(request: HttpRequest, *, group: str, rate: str, key: Key) -> Limited | None:
    """Count this request against one limit; `Limited` when it is over it, else None."""
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    except (RedisError, OSError):
        # Fail open (RATELIMIT_FAIL_OPEN): the door stays up while Redis is away.
        logger.warning("rate limit %s not counted: the cache is unavailable", group)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return Limited(retry_after=max(1, int(usage["time_left"])))


def address_key(email: str) -> Callable[[str, HttpRequest], str]:
    """A limit per email address that keeps no address in Redis: a keyed digest of it, in the
    spelling intake stores (so ü and its xn-- form, or a change of case, count as one)."""
    spelling = canonical_email(email) or email.strip().lower()
    digest = salted_hmac("rights.web.limits.address", spelling).hexdigest()
    return lambda _group, _request: digest


def forwarded_client_ip(request: HttpRequest) -> str:
    """The client's address behind our own reverse proxy (TRUST_X_FORWARDED_FOR): the last
    address in X-Forwarded-For, the one the proxy added; what comes before it is the client's
    own claim. Falls back to the connection's address when the header is absent or mangled."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    candidate = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return str(request.META.get("REMOTE_ADDR", ""))


def too_many(
    request: HttpRequest,
    limited: Limited,
    *,
    template: str = "rights/too_many.html",
    context: dict[str, object] | None = None,
) -> HttpResponse:
    """HTTP 429 with a page saying, in plain words, when to try again, and Retry-After."""
    response = render(
        request,
        template,
        {**(context or {}), "limited": limited},
        status=429,
    )
    response["Retry-After"] = str(limited.retry_after)
    return response
