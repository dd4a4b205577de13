"""Public pages: our copy of each article, with the owner notice."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rights import selectors
from rights.workflow import ContentStatus


def content_page(request: HttpRequest, slug: str) -> HttpResponse:
    item = selectors.content_item_by_slug(slug)
    if item.status == ContentStatus.REMOVED:
        return render(request, "rights/content_removed.html", {"item": item}, status=410)
    if item.status == ContentStatus.DISABLED:
        return render(request, "rights/content_disabled.html", {"item": item}, status=451)
    query = urlencode(
        {
            "subject": f"Removal request: {item.public_url}",
            "body": f"Please remove: {item.public_url}\n",
        }
    )
    return render(
        request,
        "rights/content.html",
        {
            "item": item,
            "removal_link": f"mailto:{settings.TAKEDOWN_MAILBOX}?{query}",
            "deadline_hours": settings.TAKEDOWN_DEADLINE // 3600,
        },
    )
