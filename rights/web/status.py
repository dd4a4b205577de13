"""The requester's status page at its secret link, what they can do from it (withdraw, appeal),
the small JSON view the page polls while work is in progress, and "Lost your link?".

Every action is a POST behind a page that says what it will do: a GET never changes anything.
The services check again, under the case's lock, whatever the page offered.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_safe

from rights import clock, links, redress, selectors
from rights.errors import DomainError
from rights.models import TakedownRequest, Target
from rights.presenters import BEING_REMOVED, Viewer, case_present
from rights.services.requester import case_appeal, case_withdraw, status_links_send
from rights.web.forms import AppealForm, LostLinkForm, person_message
from rights.web.limits import Limited, address_key, limit_hit
from rights.web.secret import SAME_ORIGIN, secret_link

# How often the page asks for news while work is in progress: every few seconds while a person
# decides, as often as we allow once the content is on its way out (that takes seconds). Like
# the engine's intervals it scales with the deadline, so a short test deadline stays watchable.
POLL_SECONDS = 5
# Every "lost your link?" answer takes at least this long (seconds), known address or not.
LOST_LINK_SECONDS = 0.05
POLL_SECONDS_MIN = 2


def poll_seconds(case: TakedownRequest) -> int:
    if case.state in BEING_REMOVED:
        return POLL_SECONDS_MIN
    length = case.deadline_seconds or settings.TAKEDOWN_DEADLINE
    return max(POLL_SECONDS_MIN, min(POLL_SECONDS, length // 20))


Found = tuple[Viewer, TakedownRequest, list[Target]]


# Under this many seconds the countdown shows seconds too, and the page's script ticks every
# second; above it, hours and minutes, ticking every minute.
SECONDS_SHOWN_UNDER = 600


def time_left(deadline: datetime | None, now: datetime) -> str:
    """ "3 hours 5 minutes", "1 minute 59 seconds", "40 seconds", or "" once past: correct
    without any script on the page (status.js counts the same way).

    Whole seconds are rounded up, as a countdown does: "0" only when the time is up, never
    while any is left.
    """
    if deadline is None or deadline <= now:
        return ""
    seconds = math.ceil((deadline - now).total_seconds())
    if seconds < SECONDS_SHOWN_UNDER:
        minutes, seconds = divmod(seconds, 60)
        parts = (
            [ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}] if minutes else []
        )
        if seconds:
            parts.append(ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds})
        return " ".join(parts)
    hours, minutes = divmod(seconds // 60, 60)
    parts = [ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}] if hours else []
    if minutes:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes})
    return " ".join(parts)


def _second(moment: datetime | None) -> str:
    """An ISO 8601 time to the second, which every browser's Date.parse reads."""
    return moment.replace(microsecond=0).isoformat() if moment is not None else ""


def _find(token: str) -> Found | None:
    """The case a status link names, as its requester sees it; None for anything forged."""
    reference = links.reference_from_status_token(token)
    return selectors.case_by_status_link(reference) if reference else None


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return render(request, "rights/link_invalid.html", status=404)


def _refused(
    request: HttpRequest, token: str, *, title: str, message: str, status: int = 409
) -> HttpResponse:
    """An action the case no longer allows: said plainly, with the way back."""
    return render(
        request,
        "rights/action_refused.html",
        {"title": title, "message": message, "status_url": reverse("rights:status", args=[token])},
        status=status,
    )


def _context(token: str, found: Found) -> dict[str, Any]:
    viewer, case, targets = found
    now = clock.now()
    closed = case.closed_at is not None
    view = case_present(case, targets=targets, viewer=viewer)
    return {
        "case": view,
        # What the page's script compares to tell that something happened (a minute passing is
        # not news; a state changing is).
        "signature": "|".join(
            [
                view.state,
                ",".join(t.state for t in view.targets),
                str(bool(view.decision)),
                str(view.may_withdraw),
                view.appeal_until or "",
            ]
        ),
        "now_iso": _second(now),
        "deadline_iso": _second(case.deadline_at),
        "mailbox": settings.TAKEDOWN_MAILBOX,
        "token": token,
        "deadline": case.deadline_at,
        "confirm_by": case.confirm_by,
        # A closed case has no deadline still to come.
        "time_left": "" if closed else time_left(case.deadline_at, now),
        "closed": closed,
        "may_withdraw": redress.may_withdraw(case),
        "appeal_until": redress.appeal_until(case, targets, now),
        "appealed_at": case.appealed_at,
        "now": now,
        "poll_seconds": poll_seconds(case),
        "seconds_under": SECONDS_SHOWN_UNDER,
    }


@secret_link()
@require_safe
def status_page(request: HttpRequest, token: str) -> HttpResponse:
    """The requester's page at the secret link every requester email carries."""
    found = _find(token)
    if found is None:
        return _invalid_link(request)
    return render(request, "rights/status.html", _context(token, found))


@secret_link()
@require_safe
def status_live(request: HttpRequest, token: str) -> JsonResponse:
    """What the status page's script polls: the case, and its region of the page re-rendered."""
    found = _find(token)
    if found is None:
        return JsonResponse({"error": "not_found"}, status=404)
    context = _context(token, found)
    return JsonResponse(
        {
            "case": context["case"].as_dict(),
            "closed": context["closed"],
            "now": context["now_iso"],
            "signature": context["signature"],
            "poll_seconds": context["poll_seconds"],
            "time_left": context["time_left"],
            "region": render_to_string("rights/_status_region.html", context, request=request),
        }
    )


@secret_link(referrer_policy=SAME_ORIGIN)
@require_http_methods(["GET", "HEAD", "POST"])
def withdraw(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what withdrawing means, and the button. POST: withdraw."""
    found = _find(token)
    if found is None:
        return _invalid_link(request)
    _viewer, case, _targets = found
    title = _("This request can no longer be withdrawn")
    if request.method == "POST":
        try:
            case_withdraw(case=case, actor=case.requester.actor)
        except DomainError as error:
            return _refused(request, token, title=title, message=person_message("", error.message))
        return redirect("rights:status", token)
    if not redress.may_withdraw(case):
        return _refused(
            request,
            token,
            title=title,
            message=_("It has been decided, or closed. Its page shows where it stands."),
        )
    return render(request, "rights/withdraw.html", {**_context(token, found)})


@secret_link(referrer_policy=SAME_ORIGIN)
@require_http_methods(["GET", "HEAD", "POST"])
def appeal(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the appeal form, while the decision may be appealed. POST: appeal."""
    found = _find(token)
    if found is None:
        return _invalid_link(request)
    _viewer, case, _targets = found
    context = _context(token, found)
    if context["appeal_until"] is None:
        return _refused(
            request,
            token,
            title=_("This decision cannot be appealed here"),
            message=_(
                "An appeal is possible once, within %(window)s of a decision that refused some "
                "or all of a request. You can still take the decision to a certified "
                "out-of-court dispute settlement body, or to a court."
            )
            % {"window": _window_words()},
        )
    form = AppealForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            case_appeal(case=case, reasons=form.cleaned_data["reasons"], actor=case.requester.actor)
        except DomainError as error:
            if error.field != "reasons":
                return _refused(
                    request,
                    token,
                    title=_("This decision cannot be appealed here"),
                    message=person_message("", error.message),
                )
            form.add_error("reasons", person_message("", error.message))
        else:
            return redirect("rights:status", token)
    return render(request, "rights/appeal.html", {**context, "form": form})


def _window_words() -> str:
    days = settings.APPEAL_WINDOW // 86400
    return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}


def _lost_page(
    request: HttpRequest, form: LostLinkForm, limited: Limited | None = None
) -> HttpResponse:
    response = render(
        request,
        "rights/status_lost.html",
        {"form": form, "limited": limited},
        status=429 if limited else 200,
    )
    if limited:
        response["Retry-After"] = str(limited.retry_after)
    return response


@secret_link(referrer_policy=SAME_ORIGIN)
@require_http_methods(["GET", "HEAD", "POST"])
def status_lost(request: HttpRequest) -> HttpResponse:
    """ "Lost your link?": the links go by email to the address given, and only there; the page
    says the same whether or not that address has asked us anything. Kept private like the
    status pages: what it answers holds the address typed."""
    if request.method != "POST":
        return _lost_page(request, LostLinkForm())
    form = LostLinkForm(request.POST)
    limited = limit_hit(
        request, group="status-links-ip", rate=settings.STATUS_LINKS_RATE_PER_IP, key="ip"
    )
    if limited:
        return _lost_page(request, form, limited)
    if not form.is_valid():
        return _lost_page(request, form)
    email = form.cleaned_data["email"]
    limited = limit_hit(
        request,
        group="status-links-email",
        rate=settings.STATUS_LINKS_RATE_PER_EMAIL,
        key=address_key(email),
    )
    if limited:
        return _lost_page(request, form, limited)
    # The same time whether or not the address is known (a known one writes a message to the
    # outbox, an unknown one nothing): the answer's timing must not tell them apart either.
    started = time.monotonic()
    status_links_send(email=email)
    time.sleep(max(0.0, LOST_LINK_SECONDS - (time.monotonic() - started)))
    return redirect("rights:status_lost_sent")


@require_safe
def status_lost_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "rights/status_lost_sent.html")
