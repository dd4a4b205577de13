"""Pages for what went wrong, in the site's words and under its Content Security Policy (Django's
own pages carry inline styles)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its CSRF cookie or token (cookies blocked, or a page kept open across
    a cookie's expiry): nothing was done, and sending it again from a fresh page works."""
    return render(request, "rights/csrf_failure.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "rights/not_found.html", status=404)
