"""A case's evidence bundle as a download from the console:
/admin/rights/takedownrequest/<id>/evidence/ (rights.evidence builds it).

Staff who may see cases and the audit trail may download it. The URL is put on the admin site
(rights.admin.dashboard.site_urls_add) rather than on the case's ModelAdmin, so that the case
pages keep one owner.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from rights.admin.base import as_id
from rights.admin.dashboard import URLs, site_urls_add
from rights.evidence import evidence_bundle
from rights.models import TakedownRequest

VIEW_PERMISSIONS = ("rights.view_takedownrequest", "rights.view_auditevent")


def evidence_download(request: HttpRequest, object_id: str) -> HttpResponse:
    if not request.user.has_perms(VIEW_PERMISSIONS):
        raise PermissionDenied
    case_id = as_id(object_id)
    case = TakedownRequest.objects.filter(pk=case_id).first() if case_id is not None else None
    if case is None:
        raise Http404("No such case.")
    body = json.dumps(evidence_bundle(case=case), indent=1, ensure_ascii=False, sort_keys=True)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evidence-{case.reference}.json"'
    response["Cache-Control"] = "no-store"
    return response


def _urls() -> URLs:
    return [
        path(
            "rights/takedownrequest/<str:object_id>/evidence/",
            admin.site.admin_view(evidence_download),
            name="rights_takedownrequest_evidence",
        )
    ]


site_urls_add(_urls)
