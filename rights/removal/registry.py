"""The removal backends REMOVAL_BACKENDS names, in its order."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from rights.removal import RemovalBackend, backends_problem
from rights.removal.catalogue import CatalogueBackend
from rights.removal.webhook import WebhookBackend

BACKENDS: dict[str, type[RemovalBackend]] = {
    CatalogueBackend.name: CatalogueBackend,
    WebhookBackend.name: WebhookBackend,
}


def configured_backends() -> list[RemovalBackend]:
    problem = backends_problem(settings.REMOVAL_BACKENDS)
    if problem is not None:
        raise ImproperlyConfigured(problem)
    return [BACKENDS[name]() for name in settings.REMOVAL_BACKENDS]
