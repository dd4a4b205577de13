"""The mailbox's staff queue in the console: who sees what, the raw source for leads only (each
look audited), and a message made into a case or dismissed (audited; bad input a clear 400
that writes nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from rights.mail.receive import message_process, message_store
from rights.models import AuditEvent, InboundMessage, MailState, TakedownRequest
from tests.factories import ContentItemFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parent.parent / "mail_corpus"
LIST = reverse("admin:rights_inboundmessage_changelist")


@pytest.fixture
def clients(db: None) -> dict[str, Client]:
    clients = {}
    for role in ("reviewer", "lead", "admin"):
        client = Client()
        client.force_login(staff_in(role, f"{role}-mail"))
        clients[role] = client
    return clients


def received(name: str) -> InboundMessage:
    stored = message_store(raw=(CORPUS / name).read_bytes(), source="pipe")
    message_process(message_id=stored.message.pk)
    stored.message.refresh_from_db()
    return stored.message


@pytest.fixture
def broken(db: None) -> InboundMessage:
    message = received("broken_mime.eml")
    assert message.state == MailState.NEEDS_STAFF
    return message


def test_every_role_sees_the_queue_of_messages_waiting(
    clients: dict[str, Client], broken: InboundMessage, outlet: Any
) -> None:
    ContentItemFactory.create(outlet=outlet, slug="harbour-fire")
    opened = received("plain.eml")
    for client in clients.values():
        page = client.get(LIST)
        assert page.status_code == 200
        listed = {m.pk for m in page.context["cl"].result_list}
        assert listed == {broken.pk}  # the queue: waiting for staff only
        everything = client.get(LIST, {"queue": "all"})
        assert {m.pk for m in everything.context["cl"].result_list} == {broken.pk, opened.pk}
        detail = client.get(reverse("admin:rights_inboundmessage_change", args=[broken.pk]))
        assert detail.status_code == 200


def test_html_in_a_message_is_shown_as_text(clients: dict[str, Client], outlet: Any) -> None:
    message = received("html_only.eml")  # no article in the catalogue: answered
    page = clients["reviewer"].get(reverse("admin:rights_inboundmessage_change", args=[message.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "this copy of my article" in body
    assert "<script>alert" not in body
    assert "alert(" not in body  # script content is dropped, not shown


def test_only_leads_read_the_raw_source_and_each_look_is_audited(
    clients: dict[str, Client], broken: InboundMessage
) -> None:
    raw_url = reverse("admin:rights_inboundmessage_raw", args=[broken.pk])
    assert clients["reviewer"].get(raw_url).status_code == 403
    assert clients["admin"].get(raw_url).status_code == 403
    page = clients["lead"].get(raw_url)
    assert page.status_code == 200
    assert page["Content-Type"] == "text/plain; charset=utf-8"
    assert "no-store" in page["Cache-Control"]
    assert page.content == bytes(broken.raw)
    (event,) = AuditEvent.objects.filter(stream=broken.audit_stream(), action="mail.raw_viewed")
    assert event.actor.startswith("staff:")
    assert Client().get(raw_url).status_code == 302  # not logged in: to the login page


def test_a_reviewer_makes_a_message_into_a_case(
    clients: dict[str, Client], broken: InboundMessage, outlet: Any
) -> None:
    item = ContentItemFactory.create(outlet=outlet, slug="harbour-fire")
    triage = reverse("admin:rights_inboundmessage_triage", args=[broken.pk])
    assert clients["admin"].get(triage).status_code == 403
    form = clients["reviewer"].get(triage)
    assert form.status_code == 200
    assert form.context["form"].initial["email"] == "anna@example.org"
    # Bad input: a clear 400 naming the fault, and nothing written.
    bad = clients["reviewer"].post(
        triage, {"do": "case", "email": "anna@example.org", "name": "Anna", "urls": "ftp://x"}
    )
    assert bad.status_code == 400
    assert "urls" in bad.context["error"]
    assert not TakedownRequest.objects.exists()
    done = clients["reviewer"].post(
        triage,
        {"do": "case", "email": "anna@example.org", "name": "Anna", "urls": item.source_url},
    )
    case = TakedownRequest.objects.get()
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:rights_takedownrequest_change", args=[case.pk])
    broken.refresh_from_db()
    assert (broken.state, broken.case) == (MailState.CASE_BY_STAFF, case)
    assert case.channel == "email"
    assert case.clock_started_at is not None
    assert AuditEvent.objects.filter(
        stream=broken.audit_stream(), action="mail.case_made", data__case=case.reference
    ).exists()
    # Dealt with: a second try changes nothing.
    again = clients["lead"].post(triage, {"do": "dismiss"})
    assert again.status_code == 400
    assert TakedownRequest.objects.count() == 1


def test_a_reviewer_dismisses_a_message(clients: dict[str, Client], broken: InboundMessage) -> None:
    triage = reverse("admin:rights_inboundmessage_triage", args=[broken.pk])
    done = clients["reviewer"].post(triage, {"do": "dismiss"})
    assert done.status_code == 302
    broken.refresh_from_db()
    assert broken.state == MailState.DISMISSED
    (event,) = AuditEvent.objects.filter(stream=broken.audit_stream(), action="mail.dismissed")
    assert event.actor.startswith("staff:")
    assert bytes(broken.raw)  # dismissed, never deleted


def test_a_huge_messages_words_are_read_from_its_start_only(clients: dict[str, Client]) -> None:
    filler = b"".join(b"line %d of a very long letter\r\n" % n for n in range(20_000))
    raw = (CORPUS / "no_article.eml").read_bytes() + filler + b"THE LAST LINE\r\n"
    stored = message_store(raw=raw, source="pipe").message
    page = clients["reviewer"].get(reverse("admin:rights_inboundmessage_change", args=[stored.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "the first 256 KiB only" in body
    assert "line 0 of a very long letter" in body
    assert "THE LAST LINE" not in body
