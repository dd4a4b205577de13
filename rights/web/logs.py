"""Keeping secret links out of the logs.

Django logs the path of every answer in the 4xx and 5xx ranges ("Gone: /confirm/<token>/"), and
the development server logs every request line. A status or confirmation link is a key to a
requester's case, so the token in it is replaced before any handler writes the line. Imported by
the logging configuration before the apps load: it imports nothing of the project.
"""

from __future__ import annotations

import logging
import re

SECRET_PATH = re.compile(r"/(status|confirm)/[^/\s?#\"']{16,}")


def redact(text: str) -> str:
    return SECRET_PATH.sub(r"/\1/[redacted]", text)


class RedactSecretLinks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
