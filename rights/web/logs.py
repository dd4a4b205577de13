"""Keeping secret links out of the logs, and a client's unreadable request to one line.

Django logs the path of every answer in the 4xx and 5xx ranges ("Gone: /confirm/<token>/"), and
the development server logs every request line. A status or confirmation link is a key to a
requester's case, so the token in it is replaced before any handler writes the line.

Django also logs a request it could not read (a form body in another encoding than UTF-8, such
as `charset=utf-16`, or a broken multipart body) with the traceback of its own request parser:
the client's doing, answered with our 400 page (rights.web.errors), whose one line says what and
where; the traceback tells an operator nothing more, so it is dropped.

Imported by the logging configuration before the apps load: it imports nothing of the project.
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import BadRequest
from django.http.multipartparser import MultiPartParserError

SECRET_PATH = re.compile(r"/(status|confirm)/[^/\s?#\"']{16,}")
# What Django raises for a request body it cannot read; it answers HTTP 400.
UNREADABLE_REQUEST = (BadRequest, MultiPartParserError)


# An address typed into a search (the console's `?q=someone@example.org`) lands in request lines.
EMAIL = re.compile(r"[^\s/?&=#\"'<>]+(?:@|%40)[^\s/?&=#\"'<>]+")


def redact(text: str) -> str:
    return EMAIL.sub("[address]", SECRET_PATH.sub(r"/\1/[redacted]", text))


def unreadable_request(record: logging.LogRecord) -> bool:
    """Django's line for a 400 answered to a request it could not read."""
    exc = record.exc_info[1] if record.exc_info else None
    return (
        record.name == "django.request"
        and getattr(record, "status_code", None) == 400
        and isinstance(exc, UNREADABLE_REQUEST)
    )


class RedactSecretLinks(logging.Filter):
    """On every handler: secret links redacted, and an unreadable request in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if unreadable_request(record):
            record.exc_info = None
            record.exc_text = None
        return True
