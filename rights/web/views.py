"""Public pages: our copy of each article with the owner notice, and the requester's status
page."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache

from rights import clock, links, selectors
from rights.models import ContentItem
from rights.presenters import case_present
from rights.states import ContentStatus

FRONT_PAGE_ITEMS = 50


def deadline_text(seconds: int) -> str:
    """The promise in words: "24 hours"; short test deadlines read as minutes or seconds."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def removal_link(item: ContentItem) -> str:
    """A mailto: link to the takedown mailbox, naming our copy of the article.

    RFC 6068 wants %20 for spaces (a "+" would reach the reader as a plus sign) and CRLF line
    breaks; ":" and "/" stay as they are, so the public URL reads plainly in the link.
    """
    fields = {
        "subject": f"Removal request: {item.public_url}",
        "body": f"Please remove: {item.public_url}\r\n",
    }
    query = "&".join(f"{key}={quote(value, safe=':/')}" for key, value in fields.items())
    return f"mailto:{settings.TAKEDOWN_MAILBOX}?{query}"


def front_page(request: HttpRequest) -> HttpResponse:
    """The aggregator's front page: the newest articles we publish, each with its source."""
    response = render(
        request, "rights/front.html", {"items": selectors.content_latest(limit=FRONT_PAGE_ITEMS)}
    )
    patch_cache_control(response, no_cache=True)
    return response


def content_page(request: HttpRequest, slug: str) -> HttpResponse:
    item = selectors.content_item_by_slug(slug)
    if item.status == ContentStatus.REMOVED:
        response = render(request, "rights/content_removed.html", {"item": item}, status=410)
    elif item.status == ContentStatus.DISABLED:
        response = render(request, "rights/content_disabled.html", {"item": item}, status=451)
        # RFC 7725: name who is blocking access (us, pending the review of a legal request).
        response["Link"] = f'<{settings.PUBLIC_BASE_URL}/>; rel="blocked-by"'
    else:
        response = render(
            request,
            "rights/content.html",
            {
                "item": item,
                "removal_link": removal_link(item),
                "deadline": deadline_text(settings.TAKEDOWN_DEADLINE),
            },
        )
    # Every cache between us and the reader must ask again before reusing a copy, so that a
    # removal takes effect at once rather than whenever someone's cache expires.
    patch_cache_control(response, no_cache=True)
    return response


def time_left(deadline: datetime | None, now: datetime) -> str:
    """ "3 hours 5 minutes", or "" once past: correct without any script on the page."""
    if deadline is None or deadline <= now:
        return ""
    minutes = int((deadline - now).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


@never_cache
def status_page(request: HttpRequest, token: str) -> HttpResponse:
    """The requester's page at the secret link every requester email carries."""
    reference = links.reference_from_status_token(token)
    found = selectors.case_by_status_link(reference) if reference else None
    if found is None:
        raise Http404("no such request")
    viewer, case, targets = found
    view = case_present(case, targets=targets, viewer=viewer)
    response = render(
        request,
        "rights/status.html",
        {
            "case": view,
            "deadline": case.deadline_at,
            # A closed case has no deadline still to come.
            "time_left": "" if case.closed_at else time_left(case.deadline_at, clock.now()),
        },
    )
    # The address is the secret: never sent on to the sites the page links to, never indexed.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and people: 200 when healthy, 503 with the same figures when not."""
    status = selectors.sla_status()
    return JsonResponse(status.as_dict(), status=200 if status.healthy else 503)
