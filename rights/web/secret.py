"""Pages reached by a secret link (a status page, a confirmation link): the address is the key."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

View = Callable[..., HttpResponse]

# The address never goes to another site. A page that holds a form says "same-origin" rather
# than "no-referrer": a browser posts a no-referrer page's form with `Origin: null` and no
# Referer, which Django's CSRF check rightly refuses; same-origin still sends nothing to
# anyone else.
NO_REFERRER = "no-referrer"
SAME_ORIGIN = "same-origin"


def secret_link(*, referrer_policy: str = NO_REFERRER) -> Callable[[View], View]:
    """Never cached, never sent on as a Referer to other sites, never indexed."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response["Referrer-Policy"] = referrer_policy
            response["X-Robots-Tag"] = "noindex, nofollow"
            return response

        return never_cache(wrapped)

    return decorate
