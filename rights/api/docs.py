"""The API's schema (OpenAPI 3, generated from the code by drf-spectacular) and its interactive
docs (Swagger UI from drf-spectacular-sidecar, served from our own static files, no CDN).

The docs page runs under the site's Content Security Policy: its init script is a separate
file (drf-spectacular's split view) and its one inline style block is a static stylesheet here.
Swagger UI's stylesheet draws its icons as `data:` SVG images, so this page alone also allows
`img-src data:`; scripts stay our own files only.
"""

from __future__ import annotations

from typing import Any

from csp.decorators import csp_update
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

# No key is needed to read the docs, and a bad Authorization header must not hide them.
schema_view = SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny])
docs_view = csp_update({"img-src": ["'self'", "data:"]})(
    SpectacularSwaggerSplitView.as_view(
        url_name="api:schema",
        template_name="rights/api/swagger_ui.html",
        authentication_classes=[],
        permission_classes=[AllowAny],
    )
)


class PartnerKeyScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for `PartnerKeyAuthentication`: an HTTP bearer key."""

    target_class = "rights.api.auth.PartnerKeyAuthentication"
    name = "partnerKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner key, `rk_xxxxxxxx.<secret>`, from the staff console or "
            "`manage.py partner_key create`. Keys have one scope: takedowns or clearance.",
        }


def paths_as_named(endpoints: list[tuple[str, str, str, Any]]) -> list[tuple[str, str, str, Any]]:
    """SPECTACULAR_SETTINGS["PREPROCESSING_HOOKS"]: the routes accept a path with or without its
    trailing slash (`/?$`), which drf-spectacular writes with one; the schema names each path as
    DESIGN.md does, without."""
    return [
        (path.rstrip("/") or "/", regex, method, view) for path, regex, method, view in endpoints
    ]
