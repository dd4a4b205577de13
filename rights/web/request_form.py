"""The owner's door: the removal request form at /request/, and "check your email".

Nothing is written until the request is valid; then one call to the intake service, which waits
for the requester to confirm their address (the clock starts then). The form's submission token
is the request's id at this door, so a double click or a re-sent page makes one case. Whatever
the address (new, known or suspended) the next page is the same "check your email": only the
mail to that address says more.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from rights.deadlines import duration_words
from rights.errors import DomainError
from rights.services.intake import IdempotencyConflict, takedown_submit
from rights.services.intake_checks import InvalidRequest
from rights.statements import STATEMENTS_VERSION
from rights.web.forms import TOKEN_PATTERN, RequestForm, new_token
from rights.web.limits import Limited, address_key, limit_hit

PREFILL_MAX = 2048


def _page(
    request: HttpRequest, form: RequestForm, *, token: str, limited: Limited | None = None
) -> HttpResponse:
    """The form, as typed, with its errors; HTTP 429 and when to try again when over a limit."""
    response = render(
        request,
        "rights/request.html",
        {
            "form": form,
            "token": token,
            "statements_version": STATEMENTS_VERSION,
            "deadline": duration_words(settings.TAKEDOWN_DEADLINE),
            "max_urls": settings.TAKEDOWN_MAX_URLS,
            "limited": limited,
        },
        status=429 if limited else 200,
    )
    if limited:
        response["Retry-After"] = str(limited.retry_after)
    return response


def _token_kept(form: RequestForm) -> str:
    """The posted token when it is well formed (a corrected form is the same request), else a
    new one."""
    token = form.data.get("token", "")
    return token if isinstance(token, str) and TOKEN_PATTERN.fullmatch(token) else new_token()


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def request_form(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        prefill = request.GET.get("url", "")[:PREFILL_MAX]
        return _page(request, RequestForm(initial={"urls": prefill}), token=new_token())

    form = RequestForm(request.POST)
    limited = limit_hit(request, group="request-ip", rate=settings.REQUEST_RATE_PER_IP, key="ip")
    if limited:
        return _page(request, form, token=_token_kept(form), limited=limited)
    if form.is_bot:
        # Answered as any request is, and nothing written.
        return redirect("rights:request_sent")
    if not form.is_valid() or form.submission is None:
        return _page(request, form, token=_token_kept(form))

    submission = form.submission
    limited = limit_hit(
        request,
        group="request-email",
        rate=settings.REQUEST_RATE_PER_EMAIL,
        key=address_key(submission.email),
    )
    if limited:
        return _page(request, form, token=submission.external_id, limited=limited)
    try:
        takedown_submit(submission=submission)
    except InvalidRequest as invalid:
        form.add_service_errors(invalid.errors)
        return _page(request, form, token=submission.external_id)
    except IdempotencyConflict:
        # The same page sent again with other details (back, edit, send): a new request, which
        # needs a new token once the requester has looked at it again.
        form.add_error(
            None,
            _(
                "You have already sent this form with different details. If you want to send "
                "another request, check the details below and send the form again."
            ),
        )
        return _page(request, form, token=new_token())
    except DomainError as error:
        form.add_error(None, error.message)
        return _page(request, form, token=submission.external_id)
    return redirect("rights:request_sent")


@require_safe
def request_sent(request: HttpRequest) -> HttpResponse:
    """The same page for every request, whoever's address it names."""
    return render(
        request,
        "rights/request_sent.html",
        {"window": duration_words(settings.CONFIRMATION_WINDOW)},
    )
