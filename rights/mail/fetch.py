"""Reading the mailbox at MAILBOX_URL over IMAP (imaplib, the standard library's client).

Each message is fetched, stored (`message_store`, committed), and only then moved to the
processed folder (MOVE where the server has it, RFC 6851; otherwise COPY, flag \\Deleted and
expunge). A message that cannot be stored stays in the inbox for the next read. A message over
the size cap is fetched only up to the cap (a partial fetch), and stored flagged as cut.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from rights.mail.mailbox import MailboxAddress, parse_mailbox_url
from rights.mail.receive import message_store

logger = logging.getLogger(__name__)

SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class MailboxError(Exception):
    """The mailbox could not be read (connection, login, or a command the server refused)."""


@dataclass
class FetchResult:
    stored: list[int] = field(default_factory=list)  # InboundMessage ids, in the order read
    moved: int = 0
    left: int = 0  # messages still in the inbox after this read (beyond the batch)


def _check(response: tuple[str, Any], what: str) -> list[Any]:
    status, data = response
    if status != "OK":
        raise MailboxError(f"the IMAP server refused {what}")
    return data


def _connect(address: MailboxAddress) -> imaplib.IMAP4:
    timeout = settings.MAIL_IMAP_TIMEOUT
    try:
        client: imaplib.IMAP4
        if address.tls:
            client = imaplib.IMAP4_SSL(
                address.host,
                address.port,
                ssl_context=ssl.create_default_context(),
                timeout=timeout,
            )
        else:
            client = imaplib.IMAP4(address.host, address.port, timeout=timeout)
        client.login(address.user, address.password)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"could not log in to the mailbox ({type(exc).__name__})") from None
    return client


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _capabilities(client: imaplib.IMAP4) -> frozenset[str]:
    """What the server offers once logged in (it may offer more than before the login)."""
    data = _check(client.capability(), "CAPABILITY")
    words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace")
    return frozenset(words.upper().split())


def _move(client: imaplib.IMAP4, uid: bytes, folder: str, capabilities: frozenset[str]) -> None:
    if "MOVE" in capabilities:
        _check(client.uid("MOVE", uid.decode(), _quoted(folder)), "MOVE")
        return
    _check(client.uid("COPY", uid.decode(), _quoted(folder)), "COPY")
    _check(client.uid("STORE", uid.decode(), "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
    if "UIDPLUS" in capabilities:
        _check(client.uid("EXPUNGE", uid.decode()), "UID EXPUNGE")
    else:
        _check(client.expunge(), "EXPUNGE")


def _fetch_one(client: imaplib.IMAP4, uid: bytes) -> tuple[bytes, int] | None:
    """The message's bytes (up to the cap) and its full size; None if it is gone."""
    data = _check(client.uid("FETCH", uid.decode(), "(RFC822.SIZE)"), "FETCH size")
    sizes = [SIZE.search(d) for d in data if isinstance(d, bytes)]
    size_match = next((m for m in sizes if m), None)
    if size_match is None:
        return None
    size = int(size_match.group(1))
    cap = settings.MAIL_MAX_BYTES
    section = "BODY.PEEK[]" if size <= cap else f"BODY.PEEK[]<0.{cap}>"
    data = _check(client.uid("FETCH", uid.decode(), f"({section})"), "FETCH")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1], size
    return None


def mailbox_read(*, url: str | None = None, batch: int | None = None) -> FetchResult:
    """One read of the mailbox: store and move up to `batch` messages. Raises MailboxError
    when the mailbox cannot be read; a database error while storing propagates, leaving that
    message (and the rest) in the inbox."""
    address = parse_mailbox_url(url or settings.MAILBOX_URL)
    limit = batch or settings.MAIL_FETCH_BATCH
    folder = settings.MAIL_PROCESSED_FOLDER
    result = FetchResult()
    client = _connect(address)
    try:
        capabilities = _capabilities(client)
        _check(client.select(_quoted(address.folder)), f"to open folder {address.folder}")
        # Created once; an existing folder is fine (the server says so, and nothing changes).
        client.create(_quoted(folder))
        uids = _check(client.uid("SEARCH", "ALL"), "SEARCH")
        found = uids[0].split() if uids and isinstance(uids[0], bytes) else []
        result.left = max(0, len(found) - limit)
        for uid in found[:limit]:
            fetched = _fetch_one(client, uid)
            if fetched is None:
                continue
            raw, size = fetched
            stored = message_store(raw=raw, source="imap", size=size)
            result.stored.append(stored.message.pk)
            # Stored and committed: only now may it leave the inbox.
            _move(client, uid, folder, capabilities)
            result.moved += 1
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"the mailbox connection failed ({type(exc).__name__})") from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return result
