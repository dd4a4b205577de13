"""The mailbox, in-process on the real database: a corpus of real-shaped messages, each making
the right case or stored and flagged (never lost, never a crash); the same message twice; a
reply threaded into its case; who counts as a verified sender; loops and rate limits; answers
threaded to the sender's message; and the staff queue."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from rights import audit, tasks
from rights.mail.receive import message_process, message_store
from rights.models import AuditEvent, InboundMessage, MailState, Notification, TakedownRequest
from rights.services import erasure
from rights.services.notifications import notification_send, outgoing_message_id
from rights.states import CaseState
from rights.workflow import transition
from tests.factories import ContentItemFactory

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parent.parent / "mail_corpus"
AUTHSERV = "mx.news.example"


@pytest.fixture(autouse=True)
def _mailbox_settings(settings: Any) -> None:
    settings.MAIL_AUTHSERV_ID = AUTHSERV
    settings.MAIL_RATE_PER_SENDER = "50/h"


@pytest.fixture
def article(outlet: Any) -> Any:
    """The article the corpus names, by its primary source or our copy."""
    return ContentItemFactory.create(outlet=outlet, slug="harbour-fire")


def receive(raw: bytes) -> InboundMessage:
    stored = message_store(raw=raw, source="pipe")
    message_process(message_id=stored.message.pk)
    stored.message.refresh_from_db()
    return stored.message


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def send_all() -> list[Any]:
    mail.outbox.clear()
    for pk in Notification.objects.filter(sent_at__isnull=True).values_list("pk", flat=True):
        assert notification_send(notification_id=pk)
    return list(mail.outbox)


# Each message that names our article opens a case for it, whatever its shape or charset.
OPENS = [
    ("plain.eml", "anna@example.org", "Please remove my article"),
    ("html_only.eml", "anna@example.org", "Takedown request"),
    ("alternative.eml", "anna@example.org", "Remove article"),
    ("forwarded.eml", "legal@example.org", "Fwd: They copied my piece"),
    ("latin1.eml", "joerg@example.de", "Löschung eines Artikels"),
    ("cp1252.eml", "chloe@example.fr", "Suppression"),
    ("shift_jis.eml", "yamada@example.jp", "記事の削除"),
    ("koi8r.eml", "ivan@example.ru", "Удалите"),
    ("utf8_qp.eml", "zoe@example.org", "Takedown"),
    ("utf8_base64.eml", "zoe@example.org", "Takedown"),
    ("rfc2047_subject.eml", "anna@example.org", "Bitte entfernen: „Hafenbrand“ \u2013 Artikel"),
    ("no_message_id.eml", "anna@example.org", "remove please"),
    ("unknown_charset.eml", "anna@example.org", "remove"),
]


@pytest.mark.parametrize(("name", "sender", "subject"), OPENS)
def test_a_message_naming_our_article_opens_a_case(
    article: Any, name: str, sender: str, subject: str
) -> None:
    message = receive(corpus(name))
    assert (message.state, message.reason) == (MailState.OPENED, "")
    assert (message.sender, message.subject) == (sender, subject)
    case = message.case
    assert case is not None
    assert case.channel == "email"
    assert [t.content_item_id for t in case.targets.all()] == [article.pk]
    # The clock started at receipt; nobody swore anything by email.
    assert case.clock_started_at is not None
    assert case.deadline_at is not None
    assert (case.statements, case.basis) == ([], "")
    # An unverified sender's case waits for review (and the fail-safe keeps the deadline).
    assert case.state == CaseState.IN_REVIEW
    assert not case.trusted
    if name == "no_message_id.eml":
        assert message.key.startswith("sha256:")
        assert message.message_id == ""
    else:
        assert message.key.startswith(f"mid:{message.message_id}:")


@pytest.mark.parametrize(
    ("name", "state", "reason"),
    [
        ("out_of_office.eml", MailState.IGNORED, "auto_submitted"),
        ("bounce.eml", MailState.IGNORED, "auto_submitted"),
        ("broken_mime.eml", MailState.NEEDS_STAFF, "broken_mime"),
        ("no_article.eml", MailState.ANSWERED, "no_article"),
    ],
)
def test_other_messages_are_stored_and_flagged(
    article: Any, name: str, state: str, reason: str
) -> None:
    raw = corpus(name)
    message = receive(raw)
    assert (message.state, message.reason) == (state, reason)
    assert bytes(message.raw) == raw  # kept whole
    assert message.case is None
    assert not TakedownRequest.objects.exists()
    sent = send_all()
    if state == MailState.ANSWERED:
        (reply,) = sent
        assert reply.to == [message.sender]
        assert "https://news.example/request/" in reply.body
        assert reply.extra_headers["In-Reply-To"] == message.message_id
        assert reply.extra_headers["Auto-Submitted"] == "auto-replied"
    else:
        assert sent == []  # never answered


def test_every_loop_marker_is_recognised(article: Any) -> None:
    plain = corpus("plain.eml").decode()
    markers = {
        "Precedence: bulk\r\n": "bulk_precedence",
        "Precedence: list\r\n": "bulk_precedence",
        "X-Autoreply: yes\r\n": "autoreply_header",
        "X-Autorespond: yes\r\n": "autoreply_header",
        "Auto-Submitted: auto-generated\r\n": "auto_submitted",
    }
    for n, (header, reason) in enumerate(markers.items()):
        raw = plain.replace("Message-ID: <plain.", f"Message-ID: <loop{n}.").replace(
            "MIME-Version", header + "MIME-Version"
        )
        assert (receive(raw.encode()).state, receive(raw.encode()).reason) == (
            MailState.IGNORED,
            reason,
        )
    bounce = corpus("bounce.eml").decode().replace("Auto-Submitted: auto-replied\r\n", "")
    assert receive(bounce.encode()).reason == "delivery_report"
    daemon = plain.replace("Anna Owner <anna@example.org>", "MAILER-DAEMON@example.org")
    assert receive(daemon.replace("<plain.", "<daemon.").encode()).reason == "machine_sender"
    empty = plain.replace("Return-Path: <anna@example.org>", "Return-Path: <>")
    assert receive(empty.replace("<plain.", "<empty.").encode()).reason == "null_return_path"
    # "no" is a person writing.
    person = plain.replace("MIME-Version", "Auto-Submitted: no\r\nMIME-Version")
    assert receive(person.replace("<plain.", "<person.").encode()).state == MailState.OPENED
    assert TakedownRequest.objects.count() == 1
    assert send_all()[0].subject.startswith("We received your request")


def test_the_same_message_twice_makes_one_row_and_one_case(article: Any) -> None:
    raw = corpus("plain.eml")
    first = receive(raw)
    # Delivered again, by another path that added a header of its own.
    again = message_store(raw=b"X-Delivered-Again: yes\r\n" + raw, source="imap")
    assert (again.created, again.message.pk) == (False, first.pk)
    # A message with no Message-ID: the same bytes are the same message.
    no_id = corpus("no_message_id.eml")
    assert receive(no_id).pk == receive(no_id).pk
    assert InboundMessage.objects.count() == 2
    assert TakedownRequest.objects.count() == 2
    assert message_process(message_id=first.pk) == MailState.OPENED  # reading again: nothing


def test_over_the_size_cap_is_kept_cut_and_flagged(article: Any, settings: Any) -> None:
    settings.MAIL_MAX_BYTES = 16 * 1024
    raw = corpus("plain.eml") + b"x" * 40_000 + b"\r\n"
    message = receive(raw)
    assert (message.state, message.reason) == (MailState.NEEDS_STAFF, "over_size_cap")
    assert message.truncated
    assert message.size == len(raw)
    assert bytes(message.raw) == raw[: 16 * 1024]
    assert not TakedownRequest.objects.exists()


def test_a_reply_to_our_acknowledgement_threads_into_its_case(article: Any) -> None:
    first = receive(corpus("plain.eml"))
    case = first.case
    assert case is not None
    (ack,) = send_all()
    # Our answer is threaded to the owner's message, and carries reference, deadline and link.
    assert ack.extra_headers["In-Reply-To"] == first.message_id
    assert ack.extra_headers["References"] == first.message_id
    assert case.reference in ack.subject
    assert case.reference in ack.body
    assert f"{case.deadline_at:%Y-%m-%d %H:%M} UTC" in ack.body
    assert "https://news.example/status/" in ack.body
    ours = ack.extra_headers["Message-ID"]
    assert ours == outgoing_message_id(Notification.objects.get())
    template = corpus("reply_to_ack.eml.template").decode()
    reply = template.replace("@@IN_REPLY_TO@@", ours).replace("@@REFERENCE@@", "TD-2222222")
    threaded = receive(reply.encode())
    assert (threaded.state, threaded.reason, threaded.case) == (MailState.THREADED, "reply", case)
    assert TakedownRequest.objects.count() == 1
    assert AuditEvent.objects.filter(
        stream=case.audit_stream(), action="case.mail_threaded", data__message=threaded.pk
    ).exists()
    assert send_all() == []  # recorded for staff, not answered


def test_a_reference_in_the_subject_threads_and_a_made_up_message_id_does_not(
    article: Any,
) -> None:
    case = receive(corpus("plain.eml")).case
    assert case is not None
    template = corpus("reply_to_ack.eml.template").decode().replace("<reply.", "<subj.")
    forged = f"<{'0' * 32}.{case.reference}@rights>"
    by_subject = receive(
        template.replace("@@IN_REPLY_TO@@", forged)
        .replace("@@REFERENCE@@", case.reference)
        .encode()
    )
    assert (by_subject.state, by_subject.reason, by_subject.case) == (
        MailState.THREADED,
        "subject",
        case,
    )
    # Neither a forged id nor a reference of nobody's case threads: the URL opens a new case.
    lone = template.replace("<subj.", "<lone.").replace("@@IN_REPLY_TO@@", forged)
    lone = lone.replace("@@REFERENCE@@", "TD-2345678")
    opened = receive(lone.encode())
    assert opened.state == MailState.OPENED
    assert opened.case != case


def _from_telegraph(results: str, mid: str) -> bytes:
    raw = corpus("plain.eml").decode()
    raw = raw.replace("Anna Owner <anna@example.org>", "Desk <desk@telegraph.co.uk>")
    raw = raw.replace("<plain.", f"<{mid}.")
    return raw.replace("Authentication-Results: mx.news.example;", results + "\r\nX-Was:").encode()


@pytest.mark.parametrize(
    ("results", "verified"),
    [
        # Our receiver: DMARC pass for the From: domain.
        ("Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk", True),
        # Our receiver: a DKIM pass by a subdomain of the same organisation (relaxed alignment).
        ("Authentication-Results: mx.news.example; dkim=pass header.d=mail.telegraph.co.uk", True),
        # Our receiver: DKIM pass, but signed by someone else's domain.
        ("Authentication-Results: mx.news.example; dkim=pass header.d=bulkmailer.example", False),
        # Our receiver: DMARC failed.
        ("Authentication-Results: mx.news.example; dmarc=fail header.from=telegraph.co.uk", False),
        # DMARC pass for another domain than the From: one.
        ("Authentication-Results: mx.news.example; dmarc=pass header.from=co.uk", False),
        # Forged: a pass written by someone else's server (another authserv-id) is ignored.
        (
            "Authentication-Results: mx.attacker.example; dmarc=pass header.from=telegraph.co.uk",
            False,
        ),
        # A look-alike id is another id.
        (
            "Authentication-Results: mx.news.example.evil; dmarc=pass header.from=telegraph.co.uk",
            False,
        ),
        # Garbage.
        ("Authentication-Results: ;;; dmarc", False),
    ],
)
def test_only_our_receivers_pass_verifies_the_sender(
    article: Any, results: str, verified: bool
) -> None:
    message = receive(_from_telegraph(results, "auth"))
    case = message.case
    assert case is not None
    assert message.sender == "desk@telegraph.co.uk"
    assert message.sender_verified is verified
    # telegraph.co.uk attests its mailboxes are its staff's: a verified desk@ is trusted at once;
    # a From: at the outlet's domain without our pass is not.
    assert case.trusted is verified
    assert case.state == (CaseState.APPROVED if verified else CaseState.IN_REVIEW)


def test_a_forged_header_below_ours_is_not_believed(article: Any) -> None:
    ours_then_forged = (
        "Authentication-Results: mx.news.example; dmarc=fail header.from=telegraph.co.uk\r\n"
        "Received: from relay.attacker.example by mail-out.example.org\r\n"
        "Authentication-Results: mx.attacker.example; none\r\n"
        "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    )
    message = receive(_from_telegraph(ours_then_forged, "below"))
    assert not message.sender_verified
    assert message.case is not None
    assert not message.case.trusted


def test_without_an_authserv_id_setting_nobody_is_verified(article: Any, settings: Any) -> None:
    settings.MAIL_AUTHSERV_ID = ""
    results = "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    assert not receive(_from_telegraph(results, "unset")).sender_verified


def test_over_the_senders_rate_limit_is_stored_not_answered(article: Any, settings: Any) -> None:
    settings.MAIL_RATE_PER_SENDER = "2/h"
    raw = corpus("no_article.eml").decode()
    states = [receive(raw.replace("<noart.", f"<noart{n}.").encode()).state for n in range(4)]
    assert states == [MailState.ANSWERED] * 2 + [MailState.LIMITED] * 2
    assert len(send_all()) == 2
    assert InboundMessage.objects.count() == 4


def test_a_message_without_a_sender_waits_for_staff(article: Any) -> None:
    raw = corpus("plain.eml").replace(b"From: Anna Owner <anna@example.org>", b"From: nobody")
    message = receive(raw)
    assert (message.state, message.reason) == (MailState.NEEDS_STAFF, "no_sender")


def test_every_step_is_audited_without_personal_data(article: Any) -> None:
    message = receive(corpus("plain.eml"))
    events = list(AuditEvent.objects.filter(stream=message.audit_stream()).order_by("seq"))
    assert [e.action for e in events] == ["mail.stored", "mail.read"]
    for event in events:
        assert "anna" not in str(event.data).lower()
        assert "harbour" not in str(event.data).lower()


def test_erasing_a_requester_erases_what_the_mailbox_kept_of_them(
    article: Any, admin_user: Any
) -> None:
    opened = receive(corpus("plain.eml"))
    asked = corpus("no_article.eml").replace(b"Dan Reader <dan@example.org>", b"anna@example.org")
    answered = receive(asked)
    assert answered.sender == "anna@example.org"
    assert opened.case is not None
    case = transition(opened.case, CaseState.REJECTED, actor="staff:1")
    erasure.requester_erase(requester=case.requester, user_id=admin_user.pk, reason="asked")
    for message in InboundMessage.objects.all():
        assert bytes(message.raw) == b""
        assert (message.sender, message.subject, message.message_id, message.urls) == (
            "",
            "",
            "",
            [],
        )
        assert message.key.startswith("erased:")
    # The answer not yet sent is cancelled; the trail still verifies.
    assert send_all() == []
    assert audit.verify().events > 0
    # The same message delivered again is recognised as seen: nothing of it is taken in anew.
    again = message_store(raw=corpus("plain.eml"), source="imap")
    assert (again.created, again.message.pk) == (False, opened.pk)
    assert InboundMessage.objects.count() == 2


def test_a_message_stored_but_left_unread_is_read_by_the_periodic_task(
    article: Any, time_machine: Any
) -> None:
    # The reader died after storing it (mail_receive killed, a task lost with the broker).
    stored = message_store(raw=corpus("plain.eml"), source="pipe").message
    assert tasks.mail_pending() == 0  # a reader may still be on it: not yet
    time_machine.move_to(timezone.now() + timedelta(seconds=31))
    assert tasks.mail_pending() == 1
    stored.refresh_from_db()
    assert stored.state == MailState.OPENED
    # Read late, its clock still started when it was received.
    assert stored.case is not None
    assert stored.case.clock_started_at == stored.received_at
    assert stored.case.received_at == stored.received_at
    assert tasks.mail_pending() == 0


def test_our_own_messages_coming_back_are_never_answered(article: Any, settings: Any) -> None:
    settings.TAKEDOWN_MAILBOX = "takedown@news.example"
    settings.DEFAULT_FROM_EMAIL = "Takedown team <takedown@news.example>"
    plain = corpus("plain.eml").decode()
    from_us = plain.replace("Anna Owner <anna@example.org>", "Takedown <TAKEDOWN@news.example>")
    assert receive(from_us.encode()).reason == "our_own"
    ours = f"<{'a' * 32}.TD-2345678@rights>"
    looped = plain.replace("<plain.20261130091201.4242@mail-out.example.org>", ours)
    assert receive(looped.encode()).reason == "our_own"
    assert not TakedownRequest.objects.exists()
    assert send_all() == []


FORGED_LAYOUTS = {
    # Our topmost header says fail; a pass of ours right below it is not read on to.
    "fail_then_pass": (
        "Authentication-Results: mx.news.example; dmarc=fail header.from=telegraph.co.uk\r\n"
        "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    ),
    # A DKIM pass and a DMARC fail for the From: domain in one header: the fail wins.
    "pass_and_fail_in_one": (
        "Authentication-Results: mx.news.example; dkim=pass header.d=telegraph.co.uk;\r\n"
        "\tdmarc=fail header.from=telegraph.co.uk"
    ),
    # Another server's header on top: ours below it is the sender's writing.
    "other_on_top": (
        "Authentication-Results: other.example; none\r\n"
        "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    ),
    # A Received: line of another server between our own and the claimed header.
    "below_a_foreign_received": (
        "Received: from relay.attacker.example by relay.attacker.example\r\n"
        "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    ),
}


@pytest.mark.parametrize("layout", sorted(FORGED_LAYOUTS))
def test_only_the_run_of_our_headers_at_the_top_is_believed(article: Any, layout: str) -> None:
    message = receive(_from_telegraph(FORGED_LAYOUTS[layout], f"forged-{layout}"))
    assert message.sender == "desk@telegraph.co.uk"
    assert not message.sender_verified
    assert message.case is not None
    assert not message.case.trusted


def test_our_header_below_our_own_received_line_is_believed(article: Any) -> None:
    # The corpus's layout: our MTA's Received: ("by mx.news.example"), then our header.
    results = "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk"
    message = receive(_from_telegraph(results, "ours-below-our-received"))
    assert message.sender_verified


def _no_article(n: int, sender: str = "Dan Reader <dan@example.org>") -> bytes:
    raw = corpus("no_article.eml").decode().replace("<noart.", f"<noart{n}.")
    return raw.replace("Dan Reader <dan@example.org>", sender).encode()


def test_unverified_mail_does_not_use_up_a_verified_senders_rate(
    article: Any, settings: Any
) -> None:
    settings.MAIL_RATE_PER_SENDER = "2/h"
    forged = _from_telegraph(
        "Authentication-Results: mx.news.example; dmarc=none header.from=telegraph.co.uk", "x"
    ).decode()
    for n in range(3):  # anyone can write From: desk@telegraph.co.uk
        receive(forged.replace("<x.", f"<forged{n}.").replace("/harbour-fire/", f"/n{n}/").encode())
    verified = _from_telegraph(
        "Authentication-Results: mx.news.example; dmarc=pass header.from=telegraph.co.uk", "real"
    )
    message = receive(verified)
    assert (message.state, message.reason) == (MailState.OPENED, "")
    assert message.sender_verified


def test_over_the_rate_a_message_naming_our_article_still_opens_its_case(
    article: Any, settings: Any
) -> None:
    settings.MAIL_RATE_PER_SENDER = "2/h"
    for n in range(2):  # the +tag is the same sender
        receive(_no_article(n, f"dan+{n}@example.org"))
    plain = corpus("plain.eml").replace(b"Anna Owner <anna@example.org>", b"dan+x@example.org")
    message = receive(plain)
    assert (message.state, message.reason) == (MailState.OPENED, "sender_rate")
    case = message.case
    assert case is not None
    assert case.deadline_at is not None  # the clock runs
    # Only our answer is withheld: two help replies went out, no acknowledgement.
    sent = send_all()
    assert [m.subject for m in sent] == [SUBJECT_HELP] * 2
    assert receive(_no_article(9, "dan+y@example.org")).state == MailState.LIMITED


SUBJECT_HELP = "How to ask us to remove an article"


def test_a_message_stored_under_the_earlier_key_is_still_found(article: Any) -> None:
    first = receive(corpus("plain.eml"))
    # Stored before the key held a digest of the content: under its Message-ID alone.
    InboundMessage.objects.filter(pk=first.pk).update(key=f"mid:{first.message_id}")
    again = message_store(raw=b"X-Delivered-Again: yes\r\n" + corpus("plain.eml"), source="imap")
    assert (again.created, again.message.pk) == (False, first.pk)
    # Another message reusing that Message-ID is still its own.
    other = corpus("plain.eml").replace(b"Please remove it.", b"And another thing.")
    assert message_store(raw=other, source="pipe").created
    assert TakedownRequest.objects.count() == 1


def test_a_second_message_under_a_used_message_id_is_kept_and_flagged(article: Any) -> None:
    first = receive(corpus("no_article.eml"))
    other = corpus("plain.eml").replace(
        b"<plain.20261130091201.4242@mail-out.example.org>",
        b"<noart.20261130091201.4242@mail-out.example.org>",
    )
    second = receive(other)
    assert second.pk != first.pk
    assert second.message_id == first.message_id
    assert (second.state, second.reason) == (MailState.OPENED, "message_id_reused")
    assert AuditEvent.objects.filter(
        stream=second.audit_stream(), action="mail.read", data__message_id_reused=True
    ).exists()
    # The same bytes again are still one row, one case.
    assert receive(other).pk == second.pk
    assert TakedownRequest.objects.count() == 1


def test_a_nul_in_a_header_or_link_is_never_written(article: Any, caplog: Any) -> None:
    raw = (
        corpus("html_only.eml")
        .replace(b"<html.20261130091201", b"<a\x00b.20261130091201")
        .replace(
            b'">this copy', b'\x00">link</a> <a href="https://news.example/a/harbour-fire/">this'
        )
    )
    raw = raw.replace(b"Subject: Takedown request", b"Subject: Secret\x00words")
    message = receive(raw)
    assert message.state == MailState.OPENED
    assert message.message_id == ""
    assert message.subject == "Secretwords"
    assert all("\x00" not in url for url in message.urls)
    assert "Secret" not in caplog.text


def test_a_reply_from_a_stranger_waits_for_staff(article: Any) -> None:
    case = receive(corpus("plain.eml")).case
    assert case is not None
    template = corpus("reply_to_ack.eml.template").decode()
    stranger = template.replace("Anna Owner <anna@example.org>", "mallory@example.net")
    message = receive(
        stranger.replace("@@IN_REPLY_TO@@", "<x@y>")
        .replace("@@REFERENCE@@", case.reference)
        .encode()
    )
    assert (message.state, message.reason, message.case) == (
        MailState.NEEDS_STAFF,
        "thread_stranger",
        None,
    )
    assert not AuditEvent.objects.filter(
        stream=case.audit_stream(), action="case.mail_threaded"
    ).exists()


def test_a_reply_naming_another_of_our_articles_opens_a_new_case(article: Any, outlet: Any) -> None:
    other = ContentItemFactory.create(outlet=outlet, slug="other-story")
    case = receive(corpus("plain.eml")).case
    assert case is not None
    template = corpus("reply_to_ack.eml.template").decode()
    more = template.replace("I think.", f"I think. Also {other.public_url}")
    message = receive(
        more.replace("@@IN_REPLY_TO@@", "<x@y>").replace("@@REFERENCE@@", case.reference).encode()
    )
    assert message.state == MailState.OPENED
    assert message.case is not None
    assert message.case != case
    assert [t.content_item_id for t in message.case.targets.all()] == [other.pk]
    assert [t.content_item_id for t in case.targets.all()] == [article.pk]


def test_many_urls_are_resolved_only_up_to_the_cap(article: Any) -> None:
    links = " ".join(f"https://junk.example/{n}" for n in range(250))
    raw = corpus("plain.eml").replace(b"Please remove it.", links.encode())
    raw = raw.replace(b"https://www.telegraph.co.uk/news/harbour-fire/\r\n", b"")
    raw += b"https://www.telegraph.co.uk/news/harbour-fire/\r\n"  # the 251st
    message = receive(raw)
    assert (message.state, message.reason) == (MailState.ANSWERED, "no_article")


def test_no_automatic_answer_to_mail_our_receiver_found_forged(article: Any) -> None:
    raw = _no_article(1).replace(
        b"dmarc=none header.from=example.org", b"dmarc=fail header.from=example.org"
    )
    message = receive(raw)
    assert (message.state, message.reason) == (MailState.LIMITED, "dmarc_fail")
    assert send_all() == []


def test_automatic_answers_stop_at_the_hourly_cap(article: Any, settings: Any) -> None:
    settings.MAIL_ANSWERS_PER_HOUR = 2
    states = [receive(_no_article(n, f"p{n}@example.org")).reason for n in range(3)]
    assert states == ["no_article", "no_article", "answer_cap"]
    assert len(send_all()) == 2


def test_an_answer_to_our_help_reply_is_not_answered_again(article: Any) -> None:
    asked = corpus("no_message_id.eml").replace(
        b"please remove https://www.telegraph.co.uk/news/harbour-fire/", b"remove my photo"
    )
    first = receive(asked)
    assert first.state == MailState.ANSWERED
    (help_reply,) = send_all()
    assert help_reply.extra_headers["Auto-Submitted"] == "auto-replied"  # no Message-ID to answer
    assert "In-Reply-To" not in help_reply.extra_headers
    auto = corpus("no_article.eml").replace(
        b"MIME-Version",
        f"In-Reply-To: {help_reply.extra_headers['Message-ID']}\r\nMIME-Version".encode(),
    )
    looped = receive(auto)
    assert (looped.state, looped.reason) == (MailState.IGNORED, "auto_loop")
    assert send_all() == []


def test_a_raw_utf8_sender_domain_opens_a_case(article: Any) -> None:
    raw = corpus("plain.eml").replace(
        b"Anna Owner <anna@example.org>", "Anna <anna@müller.de>".encode()
    )
    message = receive(raw)
    assert (message.state, message.sender) == (MailState.OPENED, "anna@xn--mller-kva.de")


@pytest.mark.parametrize(
    "display",
    ['"desk@telegraph.co.uk"', "desk\uff20telegraph.co.uk", "=?utf-8?q?desk=40telegraph.co.uk?="],
)
def test_a_display_name_made_to_look_like_an_address_is_not_the_requesters_name(
    article: Any, display: str
) -> None:
    raw = corpus("plain.eml").replace(
        b"From: Anna Owner <anna@example.org>",
        f"From: {display} <someone@elsewhere.example>".encode(),
    )
    message = receive(raw)
    assert message.sender == "someone@elsewhere.example"
    assert message.case is not None
    assert message.case.requester.name == "someone"
