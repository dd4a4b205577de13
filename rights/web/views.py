"""Public pages: the front page, our copy of each article with the owner notice, and /healthz.

The requester's pages live beside this module: the request form (request_form), the
confirmation link (confirmation) and the status page with what can be done from it (status).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache

from rights import selectors
from rights.deadlines import duration_words
from rights.evidence import evidence_public_key
from rights.models import ContentItem
from rights.states import ContentStatus

FRONT_PAGE_ITEMS = 50


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


def request_link(item: ContentItem) -> str:
    """The removal request form, with our copy of the article filled in."""
    return f"{reverse('rights:request')}?{urlencode({'url': item.public_url})}"


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
                "request_link": request_link(item),
                "removal_link": removal_link(item),
                "deadline": duration_words(settings.TAKEDOWN_DEADLINE),
            },
        )
    # Every cache between us and the reader must ask again before reusing a copy, so that a
    # removal takes effect at once rather than whenever someone's cache expires.
    patch_cache_control(response, no_cache=True)
    return response


def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers and crawlers ask for whatever the page says: the SVG icon
    every page links to (base.html)."""
    return redirect(static("rights/favicon.svg"), permanent=True)


def evidence_key(request: HttpRequest) -> HttpResponse:
    """The public half of the key evidence bundles are signed with (hex): what a third party
    passes to evidence_verify.py as --public-key."""
    response = HttpResponse(evidence_public_key() + "\n", content_type="text/plain; charset=utf-8")
    patch_cache_control(response, public=True, max_age=3600)
    return response


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and people: 200 when healthy, 503 with the same figures when not."""
    status = selectors.sla_status()
    return JsonResponse(status.as_dict(), status=200 if status.healthy else 503)
