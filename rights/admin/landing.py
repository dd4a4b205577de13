"""Where staff land after logging in: a reviewer's is the review queue, soonest deadline first.

A reviewer's work is the queue, so the console's front page sends them there; leads and admins,
whose work spans the console, get its front page, which leads with the queue's links. The page
is put in front of the admin's own index (same URL, same name), so every "Home" link and the
login's redirect arrive here.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from rights.admin.dashboard import URLs, site_urls_add
from rights.permissions import VIEW_SLA_DASHBOARD, may_decide


def lands_on_queue(user: object) -> bool:
    """Reviewers: they may decide, and the console's wider pages (the lead's dashboard) are not
    theirs."""
    return may_decide(user) and not user.has_perm(VIEW_SLA_DASHBOARD)  # type: ignore[attr-defined]


def console_index(request: HttpRequest) -> HttpResponse:
    if lands_on_queue(request.user):
        return HttpResponseRedirect(reverse("admin:rights_takedownrequest_changelist"))
    return admin.site.index(request)


def _urls() -> URLs:
    return [path("", admin.site.admin_view(console_index), name="index")]


site_urls_add(_urls)
