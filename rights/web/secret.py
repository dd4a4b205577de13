"""Pages reached by a secret link (a status page, a confirmation link): the address is the key."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

View = Callable[..., HttpResponse]

# The address never goes to another site. A page that holds a form says "same-origin" rather
# than "no-referrer": a browser posts a no-referrer page's form with `Origin: null` and no
# Referer, which Django's CSRF check rightly refuses; same-origin still sends nothing to
# anyone else.
NO_REFERRER = "no-referrer"
SAME_ORIGIN = "same-origin"
# Where secret links live (rights.web.urls): every status and confirmation address, and "lost
# your link?" at /status/ itself, which is sent an email address.
SECRET_PREFIXES = ("/status/", "/confirm/")


def is_secret_path(request: HttpRequest) -> bool:
    """Whether this request's address may hold a secret: what any answer to it, an error page
    included, must keep private."""
    return request.path_info.startswith(SECRET_PREFIXES)


def keep_private(response: HttpResponse, *, referrer_policy: str = NO_REFERRER) -> HttpResponse:
    """Never cached, never sent on as a Referer to other sites, never indexed."""
    add_never_cache_headers(response)
    response["Referrer-Policy"] = referrer_policy
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def secret_link(*, referrer_policy: str = NO_REFERRER) -> Callable[[View], View]:
    """Every answer of the view is kept private (`keep_private`)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            return keep_private(view(request, *args, **kwargs), referrer_policy=referrer_policy)

        return wrapped

    return decorate
