"""`python manage.py mail_receive`: one RFC 5322 message on standard input, from the MTA's pipe.

Exit 0 once the message is stored (whatever reading it then makes of it); exit 75 (EX_TEMPFAIL)
when it cannot be stored, so that the MTA keeps it and delivers it again later. Prints the
message's id and what became of it, never its sender or words.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from rights.mail.receive import message_process, message_store

logger = logging.getLogger(__name__)

EX_TEMPFAIL = 75
CHUNK = 1 << 16


def read_capped(stream: Any, cap: int) -> tuple[bytes, int]:
    """The first `cap` bytes of `stream`, and its whole length (the rest is read and dropped)."""
    kept = bytearray()
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return bytes(kept), size


class Command(BaseCommand):
    help = "Store one message read on standard input (exit 0), or exit 75 so the MTA retries."
    # The database may be down: the one answer then is 75, not a system check's traceback.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        raw, size = read_capped(sys.stdin.buffer, settings.MAIL_MAX_BYTES)
        if not raw.strip():
            self.stderr.write("mail_receive: standard input held no message")
            sys.exit(65)  # EX_DATAERR: there is nothing to keep
        try:
            stored = message_store(raw=raw, source="pipe", size=size)
        except Exception as exc:  # any failure to store: the MTA must keep the message
            self.stderr.write(
                f"mail_receive: could not store the message ({type(exc).__name__}); "
                "exit 75 so that the MTA delivers it again later"
            )
            sys.exit(EX_TEMPFAIL)
        message = stored.message
        if not stored.created:
            self.stdout.write(f"message {message.pk}: already stored ({message.state})")
            return
        try:
            state = message_process(message_id=message.pk)
        except Exception as exc:  # stored is what the MTA needs to know; the sweep reads it again
            # Its type only: an error's words may quote the message.
            logger.error(
                "inbound message %s stored but not read (%s)", message.pk, type(exc).__name__
            )
            state = "stored"
        self.stdout.write(f"message {message.pk}: stored, {state}")
