"""The confirmation link: a GET shows one button and changes nothing (mail scanners open every
link); the POST confirms, starts the clock and lands on the status page; a used, expired or
altered link is refused clearly; pressing the button is rate limited per address."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from rights import links
from rights.models import AuditEvent, ContentItem, Notification, TakedownRequest
from rights.services.notifications import notification_send
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS_VERSION
from rights.states import CaseState
from tests.integration.test_request_form import unreadable_is_a_clear_400

pytestmark = pytest.mark.django_db


def send_form(client: Client, item: ContentItem, email: str = "ada@example.org") -> None:
    response = client.post(
        "/request/",
        {
            "urls": f"{item.public_url}\nhttps://unknown.example/story",
            "basis": "copyright",
            "statements_copyright": list(REQUIRED_STATEMENTS["copyright"]),
            "name": "Ada Owner",
            "email": email,
            "token": uuid.uuid4().hex,
            "statements_version": STATEMENTS_VERSION,
        },
    )
    assert response.status_code == 302


def mailed_link(case: TakedownRequest) -> str:
    """The confirmation link as the requester reads it in the mail, as a path."""
    for notification in Notification.objects.filter(case=case, sent_at__isnull=True):
        notification_send(notification_id=notification.pk)
    found = re.search(r"https://news\.example(/confirm/[^\s]+/)", str(mail.outbox[-1].body))
    assert found is not None, mail.outbox[-1].body
    return found.group(1)


def snapshot(case: TakedownRequest) -> tuple[Any, ...]:
    case.refresh_from_db()
    case.requester.refresh_from_db()
    return (
        case.state,
        case.clock_started_at,
        case.deadline_at,
        case.requester.email_verified_at,
        AuditEvent.objects.count(),
        Notification.objects.count(),
    )


def text(response: Any) -> str:
    return " ".join(html.unescape(response.content.decode()).split())


@pytest.fixture
def web_case(client: Client, item: ContentItem) -> TakedownRequest:
    send_form(client, item)
    return TakedownRequest.objects.get()


def test_the_journey_from_mail_to_status_page(client: Client, web_case: TakedownRequest) -> None:
    path = mailed_link(web_case)
    page = client.get(path)
    assert page.status_code == 200
    words = text(page)
    assert "Confirm your request" in words
    assert "Your request names 2 web addresses." in words
    assert "ada@example.org" not in words
    assert "Ada Owner" not in words
    body = page.content.decode()
    assert body.count("<form") == 1
    assert re.search(
        r'<form method="post"[^>]*>\s*<input type="hidden" name="csrfmiddlewaretoken"', body
    )
    assert body.count("<button") == 1

    response = client.post(path)
    assert response.status_code == 302
    web_case.refresh_from_db()
    assert response["Location"] == f"/status/{links.status_token(web_case)}/"
    assert web_case.state == CaseState.IN_REVIEW
    assert web_case.clock_started_at is not None
    assert web_case.requester.email_verified_at is not None
    status = client.get(response["Location"])
    assert status.status_code == 200
    assert web_case.reference in text(status)
    assert "Being reviewed by our team" in text(status)


def test_a_trusted_owner_lands_on_a_page_that_shows_the_approval(
    client: Client, item: ContentItem
) -> None:
    send_form(client, item, email="desk@telegraph.co.uk")
    case = TakedownRequest.objects.get()
    response = client.post(f"/confirm/{links.confirmation_token(case)}/", follow=True)
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED
    assert case.trusted


@pytest.mark.parametrize("method", ["get", "head"])
def test_opening_the_link_changes_nothing(
    client: Client, web_case: TakedownRequest, method: str
) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    before = snapshot(web_case)
    for _ in range(3):  # a scanner, a preview, the requester
        assert getattr(client, method)(path).status_code == 200
    assert snapshot(web_case) == before
    assert web_case.state == CaseState.AWAITING_CONFIRMATION


def test_the_confirmation_page_is_private(client: Client, web_case: TakedownRequest) -> None:
    response = client.get(f"/confirm/{links.confirmation_token(web_case)}/")
    # Nothing to other sites; "no-referrer" would make browsers post the form with
    # `Origin: null`, which the CSRF check refuses.
    assert response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]
    assert "no-store" in response["Cache-Control"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_a_used_link_is_refused_with_what_to_do_next(
    client: Client, web_case: TakedownRequest
) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    assert client.post(path).status_code == 302
    before = snapshot(web_case)
    for response in (client.get(path), client.post(path)):
        assert response.status_code == 410
        words = text(response)
        assert "This request is already confirmed" in words
        assert "has already been confirmed" in words
        assert 'href="/status/"' in response.content.decode()
    assert snapshot(web_case) == before


def test_an_expired_link_is_refused_and_nothing_starts(
    client: Client, web_case: TakedownRequest, settings: Settings
) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    before = snapshot(web_case)
    later = timezone.now() + timedelta(seconds=settings.CONFIRMATION_WINDOW + 60)
    with time_machine.travel(later, tick=False):
        for response in (client.get(path), client.post(path)):
            assert response.status_code == 410
            words = text(response)
            assert "This link has expired" in words
            assert "Please send your request again" in words
            assert 'href="/request/"' in response.content.decode()
    assert snapshot(web_case) == before


def test_a_case_past_its_confirm_by_is_expired_whatever_the_link_says(
    client: Client, web_case: TakedownRequest
) -> None:
    TakedownRequest.objects.filter(pk=web_case.pk).update(
        confirm_by=timezone.now() - timedelta(minutes=1)
    )
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    before = snapshot(web_case)
    assert client.get(path).status_code == 410
    assert client.post(path).status_code == 410
    assert snapshot(web_case) == before


def _altered(token: str) -> list[str]:
    last = "A" if token[-1] != "A" else "B"
    reference, stamp, signature = token.split(":")
    return [
        token[:-1] + last,  # one character of the signature
        f"TD-ZZZZZZZ:{stamp}:{signature}",  # another reference
        f"{reference}:{stamp}",  # no signature
        "nonsense",
        "x" * 500,
    ]


def test_an_altered_link_is_not_found(client: Client, web_case: TakedownRequest) -> None:
    before = snapshot(web_case)
    for token in _altered(links.confirmation_token(web_case)):
        for response in (client.get(f"/confirm/{token}/"), client.post(f"/confirm/{token}/")):
            assert response.status_code == 404
            words = text(response)
            assert "This link does not work" in words
            assert "Copy the whole link from the email" in words
    assert snapshot(web_case) == before


def test_a_link_for_a_case_that_does_not_exist_is_not_found(
    client: Client, web_case: TakedownRequest
) -> None:
    ghost = TakedownRequest(reference="TD-NOTHERE")
    assert client.get(f"/confirm/{links.confirmation_token(ghost)}/").status_code == 404


def test_a_withdrawn_request_cannot_be_confirmed(client: Client, web_case: TakedownRequest) -> None:
    status = client.get(f"/status/{links.status_token(web_case)}/withdraw/")
    assert status.status_code == 200
    assert client.post(f"/status/{links.status_token(web_case)}/withdraw/").status_code == 302
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    before = snapshot(web_case)
    for response in (client.get(path), client.post(path)):
        # Said as it is: withdrawn, not "already confirmed" (it never was).
        assert response.status_code == 410
        words = text(response)
        assert "<h1>This request was withdrawn</h1>" in words
        assert (
            "This request was withdrawn before it was confirmed. Send a new request if you still "
            "want the content removed." in words
        )
        assert "confirmed. Follow it" not in words
        assert "already confirmed" not in words
        assert 'href="/request/"' in response.content.decode()
        assert "noindex" in response["X-Robots-Tag"]
    assert snapshot(web_case) == before
    assert web_case.state == CaseState.WITHDRAWN


def test_a_request_withdrawn_after_it_was_confirmed_was_confirmed(
    client: Client, web_case: TakedownRequest
) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    assert client.post(path).status_code == 302
    assert client.post(f"/status/{links.status_token(web_case)}/withdraw/").status_code == 302
    response = client.get(path)
    assert response.status_code == 410
    assert "This request is already confirmed" in text(response)


@pytest.mark.parametrize("charset", ["utf-16", "utf-7"])
@pytest.mark.parametrize("csrf", [False, True], ids=["view", "csrf-check"])
def test_an_unreadable_press_is_a_clear_400_and_confirms_nothing(
    web_case: TakedownRequest, charset: str, csrf: bool
) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    client = Client(enforce_csrf_checks=csrf)
    assert client.get(path).status_code == 200  # the CSRF cookie, as a browser has it
    before = snapshot(web_case)
    response = unreadable_is_a_clear_400(client, path, charset)
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert snapshot(web_case) == before
    assert web_case.state == CaseState.AWAITING_CONFIRMATION


def test_a_refused_press_is_private(web_case: TakedownRequest) -> None:
    path = f"/confirm/{links.confirmation_token(web_case)}/"
    before = snapshot(web_case)
    response = Client(enforce_csrf_checks=True).post(path)  # no CSRF cookie
    assert response.status_code == 403
    assert "Your form could not be sent" in text(response)
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert snapshot(web_case) == before


def test_pressing_confirm_is_rate_limited_per_address_and_recovers(
    client: Client, web_case: TakedownRequest, settings: Settings
) -> None:
    settings.CONFIRM_RATE_PER_IP = "2/h"
    start = timezone.now()
    bad = "/confirm/TD-AAAAAAA:aaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbb/"
    with time_machine.travel(start, tick=False):
        assert client.post(bad).status_code == 404
        assert client.post(bad).status_code == 404
        limited = client.post(f"/confirm/{links.confirmation_token(web_case)}/")
        assert limited.status_code == 429
        retry = int(limited["Retry-After"])
        assert 0 < retry <= 3600
        assert "Please try again in" in text(limited)
        web_case.refresh_from_db()
        assert web_case.state == CaseState.AWAITING_CONFIRMATION
        # Opening the link is not limited: it changes nothing.
        assert client.get(f"/confirm/{links.confirmation_token(web_case)}/").status_code == 200
    with time_machine.travel(start + timedelta(seconds=retry + 1), tick=False):
        assert client.post(f"/confirm/{links.confirmation_token(web_case)}/").status_code == 302
