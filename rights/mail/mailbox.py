"""The mailbox's address (MAILBOX_URL) and the rate setting's arithmetic. Imports no models:
config/settings.py validates its settings with these."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class MailboxAddress:
    """Where `mail_fetch` reads: IMAP over TLS (imaps), or plain IMAP on this machine only."""

    tls: bool
    host: str
    port: int
    user: str
    password: str
    folder: str


def parse_mailbox_url(url: str) -> MailboxAddress:
    """`imaps://user:pass@host[:port]/FOLDER`; ValueError saying what is wrong (never echoing
    the password)."""
    parts = urlsplit(url)
    if parts.scheme not in {"imap", "imaps"}:
        raise ValueError("MAILBOX_URL must start with imaps:// (or imap:// on this machine)")
    host = parts.hostname or ""
    if not host:
        raise ValueError("MAILBOX_URL must name a host, as imaps://user:password@host/INBOX")
    if parts.scheme == "imap" and host not in LOOPBACK_HOSTS:
        raise ValueError(
            "MAILBOX_URL must use imaps:// for a mailbox on another machine: plain imap:// "
            "would send its password in clear"
        )
    if not parts.username or parts.password is None:
        raise ValueError("MAILBOX_URL must carry a user and a password (user:password@host)")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise ValueError("MAILBOX_URL has a port that is not a number from 1 to 65535") from None
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxAddress(
        tls=parts.scheme == "imaps",
        host=host,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password),
        folder=folder,
    )


def rate_window(rate: str) -> tuple[int, int]:
    """ "10/h" -> (10, 3600); "5/10m" -> (5, 600): a count and its window in seconds, as the
    settings' rates are written (config/settings.env_rate has checked the form)."""
    match = re.fullmatch(r"([1-9][0-9]*)/([1-9][0-9]*)?([smhd])", rate)
    if match is None:
        raise ValueError(f"not a rate: {rate!r}")
    return int(match[1]), int(match[2] or 1) * RATE_UNITS[match[3]]
