"""`python manage.py mail_fetch [--once]`: read the mailbox at MAILBOX_URL.

Each message is stored, then moved to MAIL_PROCESSED_FOLDER, then read (as `mail_receive`
reads it). Without --once it reads again every MAIL_POLL_INTERVAL seconds until stopped; with
--once it reads until the inbox is empty (batch by batch) and exits: 0 when all went well, 1
when the mailbox or the database could not be reached (nothing left the inbox unstored).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, close_old_connections

from rights.mail.fetch import MailboxError, mailbox_read
from rights.mail.receive import message_process, messages_pending

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Read the mailbox at MAILBOX_URL: store, move, then read each message."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="read until empty, then exit")

    def _pass(self) -> int:
        total = 0
        while True:
            result = mailbox_read()
            for message_id in result.stored:
                state = message_process(message_id=message_id)
                self.stdout.write(f"message {message_id}: stored, {state}")
            total += len(result.stored)
            if not result.left or not result.stored:
                break
        # Any message an earlier reader stored but did not get to read.
        for message_id in messages_pending():
            message_process(message_id=message_id)
        return total

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.MAILBOX_URL:
            raise CommandError("MAILBOX_URL is not set: there is no mailbox to read")
        while True:
            try:
                count = self._pass()
                self.stdout.write(f"read {count} message(s)")
            except (MailboxError, DatabaseError) as exc:
                # A database error's words may quote a value of the message: its type only.
                said = str(exc) if isinstance(exc, MailboxError) else type(exc).__name__
                if options["once"]:
                    raise CommandError(f"mail_fetch: {said}") from None
                logger.warning("mail_fetch: %s; trying again later", said)
                close_old_connections()
            if options["once"]:
                return
            time.sleep(settings.MAIL_POLL_INTERVAL)
