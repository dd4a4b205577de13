"""Pages for what went wrong, in the site's words and under its Content Security Policy (Django's
own pages carry inline styles).

None of them reads what was posted or checks a CSRF token (Django's own 400 page does, and a body
it could not read the first time fails again: a 500). An error on an address that may hold a
secret link (/status/…, /confirm/…) is kept private like the page it stands in for.
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render

from rights.web.secret import View, is_secret_path, keep_private


def _answer(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    return keep_private(response) if is_secret_path(request) else response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request we cannot read: a form body in an encoding other than UTF-8 (a charset=utf-16
    or utf-7 form), a broken multipart body, too many fields. Nothing was done."""
    return _answer(request, render(request, "rights/bad_request.html", status=400))


def readable_body(view: View) -> View:
    """A POST's body is read before the view does anything, even a view that needs nothing from
    it (a confirmation, a withdrawal): a body Django cannot read is answered with the 400 page
    (`bad_request`) and nothing is done. Django's CSRF check reads every POST first anyway; this
    keeps the answer the same wherever that check does not run."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method == "POST":
            request.POST.get("")  # raises BadRequest for a body it cannot read: a 400
        return view(request, *args, **kwargs)

    return wrapped


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
