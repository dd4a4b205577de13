"""The confirmation link in the first email: a page with one button.

Mail scanners open every link in a message, so opening the link (a GET) only shows the button
and changes nothing; pressing it (a POST) confirms the address, starts the clock, and lands the
requester on their status page. A link that is forged, expired or used, or whose request was
withdrawn before it was confirmed, is refused with what to do next.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from rights import links
from rights.deadlines import duration_words
from rights.errors import DomainError
from rights.services.requester import ConfirmationRefused, confirmation_check, confirmation_use
from rights.web.limits import limit_hit, too_many
from rights.web.secret import SAME_ORIGIN, secret_link

# A forged or mangled link names nothing (404); one that did exist is gone (410): used, expired,
# or its request withdrawn before it was confirmed.
REFUSAL_STATUS = {"invalid": 404, "expired": 410, "used": 410, "withdrawn": 410}
REFUSAL_HEADINGS: dict[str, Promise] = {
    "used": _("This request is already confirmed"),
    "expired": _("This link has expired"),
    "withdrawn": _("This request was withdrawn"),
}


def _refused(request: HttpRequest, refusal: DomainError) -> HttpResponse:
    return render(
        request,
        "rights/confirm_refused.html",
        {
            "message": refusal.message,
            "code": refusal.code,
            "heading": REFUSAL_HEADINGS.get(refusal.code, _("This link does not work")),
        },
        status=REFUSAL_STATUS.get(refusal.code, 409),
    )


@secret_link(referrer_policy=SAME_ORIGIN)
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        limited = limit_hit(
            request, group="confirm-ip", rate=settings.CONFIRM_RATE_PER_IP, key="ip"
        )
        if limited:
            return too_many(request, limited)
        try:
            case = confirmation_use(token=token)
        except ConfirmationRefused as refusal:
            return _refused(request, refusal)
        except DomainError as error:
            return _refused(request, error)
        return redirect("rights:status", links.status_token(case))
    try:
        case = confirmation_check(token=token)
    except ConfirmationRefused as refusal:
        return _refused(request, refusal)
    return render(
        request,
        "rights/confirm.html",
        {
            "url_count": case.targets.count(),
            "whole_domain": case.whole_domain,
            "confirm_by": case.confirm_by,
            "deadline": duration_words(settings.TAKEDOWN_DEADLINE),
        },
    )
