"""Removal backends behind one small interface.

A backend acts on one target's content: `disable` (fail-safe, restorable), `remove` (final) or
`restore`. Every call carries an idempotency key and must be safe to repeat: "already removed"
is success. A backend raises `RemovalFailed` when the action did not happen; the engine retries
with backoff. Which backends run, and in which order, is the REMOVAL_BACKENDS setting.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rights.models import Target


class RemovalFailed(Exception):
    """The action did not happen; the message is safe to store (no personal data)."""


class RemovalBackend(Protocol):
    name: str
    # A local backend writes only to our database: its change commits with its record.
    local: bool

    def apply(self, *, target: Target, action: str, key: str) -> None: ...


def configured_backends() -> list[RemovalBackend]:
    from rights.removal.catalogue import CatalogueBackend
    from rights.removal.webhook import WebhookBackend

    known: dict[str, type[RemovalBackend]] = {
        CatalogueBackend.name: CatalogueBackend,
        WebhookBackend.name: WebhookBackend,
    }
    backends = []
    for name in settings.REMOVAL_BACKENDS:
        if name not in known:
            raise ImproperlyConfigured(f"unknown removal backend {name!r} in REMOVAL_BACKENDS")
        backends.append(known[name]())
    return backends
