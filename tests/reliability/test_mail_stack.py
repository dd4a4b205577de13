"""The mailbox, whole stack: an owner's email lands in a real IMAP mailbox (Dovecot), beat's
`mail_fetch` takes it, a real worker reads it and opens the case, and the answer (reference,
deadline, status link, threaded to the owner's message) arrives over real SMTP (aiosmtpd); the
content goes long before the deadline. A bounce and an out-of-office reply beside it change
nothing and are never answered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rights.models import ContentItem, InboundMessage, MailState, TakedownRequest
from rights.states import CaseState, ContentStatus
from tests.factories import ContentItemFactory, telegraph
from tests.mail_servers import Dovecot, SmtpSink
from tests.reliability.conftest import requires_postgres
from tests.stack import Stack, wait_for

pytestmark = [requires_postgres, pytest.mark.stack]

CORPUS = Path(__file__).resolve().parent.parent / "mail_corpus"
OWNER_MAIL = (
    "Return-Path: <desk@telegraph.co.uk>\r\n"
    "Authentication-Results: mx.news.example; dkim=pass header.d=telegraph.co.uk;\r\n"
    "\tdmarc=pass (p=reject) header.from=telegraph.co.uk\r\n"
    "From: Telegraph Desk <desk@telegraph.co.uk>\r\n"
    "To: takedown@news.example\r\n"
    "Subject: Please remove our article\r\n"
    "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <owner-request-1@mail.telegraph.co.uk>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello,\r\n\r\nplease remove https://news.example/a/harbour-fire/ - it is ours.\r\n"
)


@pytest.fixture
def mail_servers() -> Iterator[tuple[Dovecot, SmtpSink]]:
    dovecot, sink = Dovecot(), SmtpSink()
    try:
        yield dovecot, sink
    finally:
        sink.close()
        dovecot.close()


def test_an_owners_email_is_answered_threaded_and_the_content_goes(
    stack: Stack, mail_servers: tuple[Dovecot, SmtpSink]
) -> None:
    dovecot, sink = mail_servers
    item = ContentItemFactory.create(outlet=telegraph(), slug="harbour-fire")
    stack.env.update(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(sink.port),
        MAILBOX_URL=dovecot.url,
        MAIL_POLL_INTERVAL="1",
        MAIL_AUTHSERV_ID="mx.news.example",
    )
    dovecot.append(OWNER_MAIL.encode())
    dovecot.append((CORPUS / "bounce.eml").read_bytes())
    dovecot.append((CORPUS / "out_of_office.eml").read_bytes())
    started = time.monotonic()
    stack.start_worker()
    stack.start_beat()

    def answered() -> bool:
        return any(m["To"] == "desk@telegraph.co.uk" for m in sink.received())

    wait_for(answered, timeout=20, what="the answer over SMTP")
    answer_after = time.monotonic() - started
    case = TakedownRequest.objects.get()
    first = next(m for m in sink.received() if m["To"] == "desk@telegraph.co.uk")
    assert first["Subject"] == f"We received your request {case.reference}"
    assert first["In-Reply-To"] == "<owner-request-1@mail.telegraph.co.uk>"
    assert first["References"] == "<owner-request-1@mail.telegraph.co.uk>"
    assert first["Auto-Submitted"] == "auto-replied"
    body = first.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert case.reference in text
    assert f"{case.deadline_at:%Y-%m-%d %H:%M} UTC" in text
    assert "https://news.example/status/" in text
    assert answer_after < 20
    # Our receiver's DMARC pass, for a domain whose mailboxes are the outlet's staff's: trusted,
    # and the content goes within seconds, long before the deadline.
    wait_for(
        lambda: TakedownRequest.objects.filter(pk=case.pk, state=CaseState.REMOVED).exists(),
        timeout=15,
        what="the case closed as removed",
    )
    assert ContentItem.objects.get(pk=item.pk).status == ContentStatus.REMOVED
    case.refresh_from_db()
    assert case.trusted
    assert case.deadline_at is not None
    assert case.closed_at is not None
    assert case.closed_at < case.deadline_at
    # Everything left the inbox once stored; the bounce and the auto-reply changed nothing.
    wait_for(lambda: dovecot.count("INBOX") == 0, timeout=10, what="the inbox emptied")
    assert dovecot.count("Processed") == 3
    states = sorted(InboundMessage.objects.values_list("state", flat=True))
    assert states == sorted([MailState.OPENED, MailState.IGNORED, MailState.IGNORED])
    wait_for(lambda: len(sink.received()) >= 2, timeout=10, what="the removal message")
    assert {m["To"] for m in sink.received()} == {"desk@telegraph.co.uk"}
    assert all(
        m["In-Reply-To"] == "<owner-request-1@mail.telegraph.co.uk>" for m in sink.received()
    )
