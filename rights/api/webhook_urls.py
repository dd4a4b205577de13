"""The webhooks part of the partner API, included under /api/v1/webhook/ by rights.api.urls.

Paths without a trailing slash, as the rest of the API (the same path with one reaches the same
view: a redirect would lose a PUT's body)."""

from __future__ import annotations

from django.urls import re_path

from rights.api import webhooks

urlpatterns = [
    re_path(r"^endpoint/?$", webhooks.EndpointView.as_view(), name="webhook-endpoint"),
    re_path(
        r"^endpoint/secret/?$",
        webhooks.EndpointSecretView.as_view(),
        name="webhook-endpoint-secret",
    ),
    re_path(r"^deliveries/?$", webhooks.DeliveriesView.as_view(), name="webhook-deliveries"),
]
