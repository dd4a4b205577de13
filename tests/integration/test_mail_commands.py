"""The mailbox's two ways in, against real servers: `mail_fetch` reading a real Dovecot IMAP
server (messages appended over IMAP, fetched, stored, moved only once stored), and
`mail_receive` as the MTA runs it, in a process of its own (exit 75 while the database is
down, nothing lost once it is back)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from rights.models import InboundMessage, MailState, TakedownRequest
from tests.factories import ContentItemFactory
from tests.mail_servers import Dovecot
from tests.stack import ROOT, free_port

CORPUS = Path(__file__).resolve().parent.parent / "mail_corpus"


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def article(outlet: Any) -> Any:
    return ContentItemFactory.create(outlet=outlet, slug="harbour-fire")


def _env(**changes: str) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        **changes,
    }


def _manage(*args: str, stdin: bytes = b"", **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_env(**env),
        input=stdin,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_mail_fetch_stores_then_moves_every_message(
    dovecot: Dovecot, article: Any, settings: Any, run_command: Any
) -> None:
    settings.MAILBOX_URL = dovecot.url
    settings.MAIL_FETCH_BATCH = 2  # three messages: two reads in one --once
    for name in ("plain.eml", "no_article.eml", "out_of_office.eml"):
        dovecot.append(corpus(name))
    assert dovecot.count("INBOX") == 3
    run = run_command("mail_fetch", "--once")
    assert run.code == 0, run.stderr
    assert "read 3 message(s)" in run.stdout
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 3)
    states = dict(InboundMessage.objects.values_list("message_id", "state"))
    assert sorted(states.values()) == sorted(
        [MailState.OPENED, MailState.ANSWERED, MailState.IGNORED]
    )
    assert set(InboundMessage.objects.values_list("source", flat=True)) == {"imap"}
    # The same message delivered again (a second copy in the inbox): no second case.
    dovecot.append(corpus("plain.eml"))
    assert run_command("mail_fetch", "--once").code == 0
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 4)
    assert (InboundMessage.objects.count(), TakedownRequest.objects.count()) == (3, 1)


@pytest.mark.django_db
def test_mail_fetch_cuts_a_message_over_the_cap(
    dovecot: Dovecot, article: Any, settings: Any, run_command: Any
) -> None:
    settings.MAILBOX_URL = dovecot.url
    settings.MAIL_MAX_BYTES = 16 * 1024
    raw = corpus("plain.eml") + b"y" * 50_000 + b"\r\n"
    dovecot.append(raw)
    assert run_command("mail_fetch", "--once").code == 0
    message = InboundMessage.objects.get()
    assert message.truncated
    assert message.size >= len(raw)  # as the server counts it
    assert len(bytes(message.raw)) == 16 * 1024
    assert (message.state, message.reason) == (MailState.NEEDS_STAFF, "over_size_cap")
    assert dovecot.count("Processed") == 1


@pytest.mark.django_db
def test_mail_fetch_with_a_wrong_password_says_so(
    dovecot: Dovecot, settings: Any, run_command: Any
) -> None:
    settings.MAILBOX_URL = dovecot.url.replace("imap-test-password", "wrong")
    dovecot.append(corpus("plain.eml"))
    run = run_command("mail_fetch", "--once")
    assert run.code == 1
    assert "could not log in to the mailbox" in run.stderr
    assert "wrong" not in run.stderr  # the password is never echoed
    assert dovecot.count("INBOX") == 1


@pytest.mark.django_db(transaction=True)
def test_mail_fetch_leaves_the_message_when_it_cannot_store_it(
    dovecot: Dovecot, article: Any, settings: Any, run_command: Any
) -> None:
    dovecot.append(corpus("plain.eml"))
    down = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    failed = _manage("mail_fetch", "--once", DATABASE_URL=down, MAILBOX_URL=dovecot.url)
    assert failed.returncode == 1, failed.stderr
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (1, 0)
    settings.MAILBOX_URL = dovecot.url
    assert run_command("mail_fetch", "--once").code == 0
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 1)
    assert InboundMessage.objects.get().state == MailState.OPENED


@pytest.mark.django_db(transaction=True)
def test_mail_receive_exits_75_while_the_database_is_down_and_loses_nothing(
    article: Any,
) -> None:
    raw = corpus("latin1.eml")
    # A real database server that is not there: nothing listens on this port.
    down = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    refused = _manage("mail_receive", stdin=raw, DATABASE_URL=down)
    assert refused.returncode == 75, refused.stderr
    assert b"could not store the message" in refused.stderr
    assert not InboundMessage.objects.exists()
    # The MTA delivers it again once the database is back: stored, read, a case.
    stored = _manage("mail_receive", stdin=raw)
    assert stored.returncode == 0, stored.stderr
    message = InboundMessage.objects.get()
    assert bytes(message.raw) == raw
    assert message.state == MailState.OPENED
    assert b"stored, opened" in stored.stdout
    assert b"joerg" not in stored.stdout + stored.stderr  # no personal data in its output
    # And a third delivery of the same message changes nothing.
    again = _manage("mail_receive", stdin=raw)
    assert again.returncode == 0
    assert b"already stored" in again.stdout
    assert TakedownRequest.objects.count() == 1


@pytest.mark.django_db
def test_mail_receive_refuses_an_empty_message() -> None:
    empty = _manage("mail_receive", stdin=b"\r\n \r\n")
    assert empty.returncode == 65
    assert b"held no message" in empty.stderr
    assert not InboundMessage.objects.exists()


def test_a_bad_setting_makes_mail_receive_ask_the_mta_to_try_again() -> None:
    """Exit 75 (EX_TEMPFAIL): the MTA keeps the message and retries once the operator fixes the
    setting; any other code would bounce the owner's request back to them."""
    run = _manage("mail_receive", stdin=corpus("plain.eml"), MAIL_MAX_BYTES="not a number")
    assert run.returncode == 75, run.stderr
    assert run.stderr.startswith(b"configuration error: MAIL_MAX_BYTES")
    # Every other command still exits 2 on the same setting.
    assert _manage("check", MAIL_MAX_BYTES="not a number").returncode == 2


@pytest.mark.django_db(transaction=True)
def test_mail_receive_stores_a_message_with_a_nul_in_its_headers(article: Any) -> None:
    raw = (
        corpus("plain.eml")
        .replace(b"<plain.", b"<a\x00b.")
        .replace(b"Subject: Please remove", b"Subject: Please\x00remove")
    )
    run = _manage("mail_receive", stdin=raw)
    assert run.returncode == 0, run.stderr  # never 75 for ever
    message = InboundMessage.objects.get()
    assert bytes(message.raw) == raw
    assert (message.state, message.message_id) == (MailState.OPENED, "")
    assert b"Please" not in run.stdout + run.stderr
