"""Removal backends behind one small interface.

A backend acts on one target's content: `disable` (fail-safe, restorable), `remove` (final) or
`restore`. Every call carries an idempotency key and must be safe to repeat: "already removed"
is success. A backend raises `RemovalFailed` when the action did not happen (the engine retries
with backoff), or `RemovalRefused` when the other side refused for good (the effect becomes a
dead letter that staff retry by hand). Which backends run, and in which order, is the
REMOVAL_BACKENDS setting; `rights.removal.registry.configured_backends` builds them.

This module imports nothing from the models at import time: config/settings.py uses the
validation helpers below, before any app is loaded.
"""

from __future__ import annotations

import ipaddress
import math
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from rights.models import Target

# Every backend there is, by the name REMOVAL_BACKENDS uses.
KNOWN_BACKENDS = ("catalogue", "webhook")
# The webhook's whole call (connect, send, answer) ends within REMOVAL_WEBHOOK_TIMEOUT seconds.
# The upper bound keeps a case's work budget plus one call inside a task's soft time limit.
WEBHOOK_TIMEOUT_MIN = 0.1
WEBHOOK_TIMEOUT_MAX = 20.0


class RemovalFailed(Exception):
    """The action did not happen; the message is safe to store (no personal data)."""


class RemovalRefused(RemovalFailed):
    """The other side refused the action for good: repeating it will not help."""


class RemovalBackend(Protocol):
    name: str
    # A local backend writes only to our database: its change commits with its record.
    local: bool

    def apply(self, *, target: Target, action: str, key: str) -> None: ...


# --- Validation, shared by the settings module and the system checks ---------------------


def backends_problem(names: list[str] | tuple[str, ...]) -> str | None:
    """What is wrong with a REMOVAL_BACKENDS list, in words; None when nothing is."""
    if not names:
        return (
            "REMOVAL_BACKENDS is empty: with no backend a case would close as removed with "
            "nothing removed. Name at least `catalogue`."
        )
    unknown = [name for name in names if name not in KNOWN_BACKENDS]
    if unknown:
        return (
            f"REMOVAL_BACKENDS names unknown backend(s) {', '.join(map(repr, unknown))}; "
            f"the backends are {', '.join(KNOWN_BACKENDS)}"
        )
    if len(set(names)) != len(names):
        return "REMOVAL_BACKENDS names a backend twice"
    if "catalogue" not in names:
        return (
            "REMOVAL_BACKENDS must include `catalogue`: it takes our own copy down, which no "
            "other backend does"
        )
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True  # names under .localhost are not resolved to loopback everywhere
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_url_problem(url: str, *, debug: bool) -> str | None:
    """What is wrong with a REMOVAL_WEBHOOK_URL, in words; None when nothing is.

    Only http and https, with a host. The call carries our signature and the article's
    addresses, so it goes over https unless DEBUG is on or the CMS is on this machine.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return f"REMOVAL_WEBHOOK_URL is not a valid URL: {url!r}"
    if parts.scheme not in {"http", "https"}:
        return f"REMOVAL_WEBHOOK_URL must be an http or https URL, not {parts.scheme or 'none'!r}"
    if not host:
        return "REMOVAL_WEBHOOK_URL has no host"
    if parts.scheme == "http" and not debug and not _loopback(host):
        return (
            "REMOVAL_WEBHOOK_URL must use https when DEBUG is off (plain http only to a CMS on "
            "this machine: localhost, 127.0.0.1 or ::1)"
        )
    return None


def parse_webhook_timeout(raw: str | None, *, name: str = "REMOVAL_WEBHOOK_TIMEOUT") -> float:
    """A webhook's whole-call timeout (REMOVAL_WEBHOOK_TIMEOUT, PARTNER_WEBHOOK_TIMEOUT): a
    finite number of seconds within the allowed range."""
    if raw is None or raw.strip() == "":
        return 5.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not WEBHOOK_TIMEOUT_MIN <= value <= WEBHOOK_TIMEOUT_MAX:
        raise ImproperlyConfigured(
            f"{name} must be a number of seconds from {WEBHOOK_TIMEOUT_MIN} to "
            f"{WEBHOOK_TIMEOUT_MAX:g}, not {raw!r}"
        )
    return value
