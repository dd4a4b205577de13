"""The partner API under /api/: v1 endpoints, the schema and its docs.

Paths are written without a trailing slash, as DESIGN.md names them; the same path with one
reaches the same view (`/?$`), because a redirect would lose a POST's body. Any other path under
/api/ is a 404 problem (rights.api.errors.ProblemMiddleware).
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path

from rights.api import views
from rights.api.docs import docs_view, schema_view

REF = r"(?P<reference>[^/]{1,40})"

v1: list[URLPattern | URLResolver] = [
    re_path(r"^takedowns/?$", views.TakedownsView.as_view(), name="takedowns"),
    re_path(r"^takedowns/batch/?$", views.TakedownBatchView.as_view(), name="takedowns-batch"),
    re_path(
        rf"^takedowns/{REF}/withdraw/?$",
        views.TakedownWithdrawView.as_view(),
        name="takedowns-withdraw",
    ),
    re_path(rf"^takedowns/{REF}/?$", views.TakedownDetailView.as_view(), name="takedowns-detail"),
    re_path(r"^clearance/?$", views.ClearanceView.as_view(), name="clearance"),
    # Webhook endpoints and deliveries (rights.api.webhooks).
    path("webhook/", include("rights.api.webhook_urls")),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    re_path(r"^schema/?$", schema_view, name="schema"),
    re_path(r"^docs/?$", docs_view, name="docs"),
]
