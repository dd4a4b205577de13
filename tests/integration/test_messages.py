"""What requesters and staff are told: templates with links, one message per event, and a
rejection that states its reasons and the requester's options."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from rights import links
from rights.models import Audience, Notification, TakedownRequest
from rights.services import review, scheduling
from rights.services.notifications import notification_send, notify
from rights.states import CaseState
from rights.workflow import transition
from tests.engine import drive

pytestmark = pytest.mark.django_db


def _send_all() -> list[Any]:
    mail.outbox.clear()
    for pk in Notification.objects.filter(sent_at__isnull=True).values_list("pk", flat=True):
        assert notification_send(notification_id=pk)
    return list(mail.outbox)


def test_every_requester_email_carries_the_status_link(submit: Any, item: Any) -> None:
    case = submit(urls=[item.source_url], name="Ann Owner").case
    (message,) = _send_all()
    assert message.to == ["owner@example.org"]
    assert message.subject == f"We received your request {case.reference}"
    # Anyone may type a name beside someone else's address: it is used once the address is
    # proved, never before.
    assert "Hello," in message.body
    assert "Ann Owner" not in message.body
    assert links.status_url(case) in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    assert links.status_url(case) in html


def test_a_verified_requester_is_greeted_by_name(submit: Any, item: Any) -> None:
    submit(urls=[item.source_url], name="Ann Owner", channel="staff", email_verified=True)
    (message,) = _send_all()
    assert "Hello Ann Owner," in message.body


def test_a_rejection_states_its_reasons_and_the_options_for_redress(
    submit: Any, item: Any, admin_user: User, settings: Any
) -> None:
    case = submit(urls=[item.source_url]).case
    _send_all()
    review.case_reject(case=case, user_id=admin_user.pk, reasons="The article quotes you fairly.")
    (message,) = _send_all()
    assert "The article quotes you fairly." in message.body
    assert "Appeal against the decision" in message.body
    case.refresh_from_db()
    assert case.decided_at is not None
    appeal_until = case.decided_at + timedelta(seconds=settings.APPEAL_WINDOW)
    assert f"by {appeal_until:%Y-%m-%d}" in message.body
    assert "out-of-court dispute settlement body" in message.body
    assert "on request" not in message.body


def test_content_removed_again_after_an_appeal_is_announced_again(
    submit: Any, item: Any, admin_user: User
) -> None:
    case = submit(
        channel="staff", email="desk@telegraph.co.uk", urls=[item.source_url], email_verified=True
    ).case
    drive(case)
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REMOVED
    # The decision is appealed and upheld: approved again, and closed removed again.
    transition(TakedownRequest.objects.get(pk=case.pk), CaseState.APPEALED, actor="test")
    review.case_approve(case=TakedownRequest.objects.get(pk=case.pk), user_id=admin_user.pk)
    drive(case)
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REMOVED
    assert Notification.objects.filter(case=case, kind="removed").count() == 2
    # Doing the same step again adds nothing.
    drive(case)
    assert Notification.objects.filter(case=case, kind="removed").count() == 2


def test_staff_messages_link_to_the_case_in_the_console(submit: Any, item: Any) -> None:
    case = submit(urls=[item.source_url]).case
    scheduling.case_kick(case)
    notify(case=case, kind="escalation", audience=Audience.LEADS)
    sent = [m for m in _send_all() if m.subject.startswith("Escalation")]
    assert len(sent) == 1
    assert links.staff_case_url(case) in sent[0].body
    assert not sent[0].alternatives  # staff mail is plain text


def test_the_status_page_shows_the_case_in_plain_words(
    client: Client, submit: Any, item: Any
) -> None:
    case = submit(urls=[item.source_url, "https://unknown.example/x"]).case
    response = client.get(links.status_url(case).removeprefix("https://news.example"))
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    page = response.content.decode()
    assert case.reference in page
    assert "Being reviewed by our team" in page
    assert "Not on our site under any spelling" in page
    assert "from now" in page


@pytest.mark.parametrize("token", ["TD-AAAAAAA", "TD-AAAAAAA:forged", "nonsense", "x" * 300])
def test_a_forged_or_mangled_status_link_is_not_found(
    client: Client, submit: Any, item: Any, token: str
) -> None:
    submit(urls=[item.source_url])
    assert client.get(f"/status/{token}/").status_code == 404


def test_a_status_link_shows_only_its_own_case(client: Client, submit: Any, item: Any) -> None:
    mine = submit(urls=[item.source_url], email="me@example.org").case
    theirs = submit(urls=[item.source_url], email="them@example.org").case
    page = client.get(links.status_url(mine).removeprefix("https://news.example")).content
    assert mine.reference.encode() in page
    assert theirs.reference.encode() not in page


def test_a_closed_cases_page_announces_no_deadline_to_come(
    client: Client, submit: Any, item: Any
) -> None:
    case = submit(
        channel="staff", email="desk@telegraph.co.uk", urls=[item.source_url], email_verified=True
    ).case
    drive(case)
    page = client.get(links.status_url(case).removeprefix("https://news.example")).content.decode()
    assert "Done: the content has been removed" in page
    assert "from now" not in page
    assert 'data-testid="deadline"' not in page
