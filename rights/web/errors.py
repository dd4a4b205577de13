"""Pages for what went wrong, in the site's words and under its Content Security Policy (Django's
own pages carry inline styles).

None of them reads what was posted or checks a CSRF token (Django's own 400 page does, and a body
it could not read the first time fails again: a 500). An error on an address that may hold a
secret link (/status/…, /confirm/…) is kept private like the page it stands in for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render

from rights.web.secret import is_secret_path, keep_private

logger = logging.getLogger("django.request")


def _answer(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    return keep_private(response) if is_secret_path(request) else response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request we cannot read: a form body in an encoding other than UTF-8 (a charset=utf-16
    or utf-7 form), a broken multipart body, too many fields. Nothing was done."""
    return _answer(request, render(request, "rights/bad_request.html", status=400))


# The staff console (Django's admin), whose filters and forms take any text as given.
CONSOLE_PREFIX = "/admin/"


class UnreadableBodyMiddleware:
    """Every POST's body is read before anything else looks at it (the CSRF check, a view, the
    admin, Django's DEBUG error page): a body Django cannot read (a form in UTF-16 or UTF-7, a
    broken multipart body) is answered with the 400 page, once, and nothing is done. Read later,
    it fails again wherever it is read, and Django's own pages turn that into a 500. So is a
    request to the console with a NUL character in its query or form fields."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            try:
                request.POST.get("")
            except RequestDataTooBig as exc:
                logger.warning("request body over the limit")
                answer = bad_request(request, exc)
                answer.status_code = 413  # the same page: nothing was done
                return answer
            except (BadRequest, SuspiciousOperation) as exc:
                logger.warning("unreadable request body: %s", exc)
                return bad_request(request, exc)
        if request.path.startswith(CONSOLE_PREFIX) and _holds_nul(request):
            # PostgreSQL cannot store or compare text with NUL in it: one of the admin's list
            # filters or fields holding one would fail deep down, as a 500. The public forms
            # say so next to the field instead, and the API in its problem details.
            logger.warning("request with a NUL character refused")
            return bad_request(request, BadRequest("a NUL character in the request"))
        return self.get_response(request)


def _holds_nul(request: HttpRequest) -> bool:
    """A NUL character in a query or form field's name or value."""
    fields = [request.GET, request.POST] if request.method == "POST" else [request.GET]
    return any(
        "\x00" in name or any("\x00" in value for value in values)
        for query in fields
        for name, values in query.lists()
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its CSRF cookie or token (cookies blocked, or a page kept open across
    a cookie's expiry): nothing was done, and sending it again from a fresh page works."""
    return _answer(request, render(request, "rights/csrf_failure.html", status=403))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _answer(request, render(request, "rights/not_found.html", status=404))


def server_error(request: HttpRequest) -> HttpResponse:
    """Our fault. The page must not fail in its turn: if even it cannot be drawn, plain words."""
    try:
        response = render(request, "rights/server_error.html", status=500)
    except Exception:  # the last page there is: it must answer
        response = HttpResponseServerError(
            "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
            "<p>The fault is ours. Please try again in a few minutes.</p>"
        )
    return _answer(request, response)
