"""`python manage.py sor_export [--since DATE] [--out FILE] [--submit]`: statements of reasons
in the EU DSA transparency database's schema, one JSON object a line (rights.services.transparency).

Without `--out` the lines go to standard output; with it, to FILE, written whole or not at all
(a temporary file beside it, renamed once complete). `--submit` also sends them to
SOR_SUBMIT_URL in batches of 100 every statement not yet recorded as held (SorSubmission),
whatever `--since` says (`--since` limits what is written only), and prints a summary on
standard error. Exit codes: 0 done; 1 refused (the database said what was wrong, or
nothing is configured); 2 bad arguments; 75 the database is unavailable: run it again later,
nothing will be sent twice.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rights.errors import DomainError
from rights.services.transparency import (
    Exported,
    SubmitUnavailable,
    statements_export,
    statements_submit,
)

EX_TEMPFAIL = 75


DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _since(raw: str) -> date:
    """A calendar day written YYYY-MM-DD, nothing else (not empty, not 20261130, not a week)."""
    try:
        if not DAY.fullmatch(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise CommandError(
            f"--since must be a date written YYYY-MM-DD, such as 2026-01-31, not {raw!r}",
            returncode=2,
        ) from exc


class Command(BaseCommand):
    help = "Export statements of reasons in the EU DSA transparency database's schema (JSON lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", help="write only decisions on or after this day (UTC, YYYY-MM-DD)"
        )
        parser.add_argument("--out", help="write to this file instead of standard output")
        parser.add_argument(
            "--submit",
            action="store_true",
            help=(
                "also send to SOR_SUBMIT_URL every statement it does not hold yet, "
                "whatever --since says"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since = _since(options["since"]) if options["since"] is not None else None
        out = Path(options["out"]) if options["out"] else None
        if out is not None and not out.parent.is_dir():
            raise CommandError(f"--out: no such directory: {out.parent}", returncode=2)
        written = self._write(statements_export(since=since), out)
        if not options["submit"]:
            self.stderr.write(f"{written} statements exported")
            return
        try:
            # Every statement the database does not hold yet, whatever --since says: a daily
            # run after an outage of more than a day still sends what the outage held back.
            report = statements_submit(statements=statements_export())
        except SubmitUnavailable as exc:
            self.stderr.write(f"sor_export: {exc}")
            raise SystemExit(EX_TEMPFAIL) from exc
        except DomainError as exc:
            self.stderr.write(f"sor_export: {exc}")
            raise SystemExit(1) from exc
        self.stderr.write(json.dumps({"exported": written, **report.as_dict()}))

    def _write(self, statements: Iterator[Exported], out: Path | None) -> int:
        count = 0
        if out is None:
            for one in statements:
                self.stdout.write(json.dumps(one.body, ensure_ascii=False))
                count += 1
            return count
        handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                for one in statements:
                    stream.write(json.dumps(one.body, ensure_ascii=False) + "\n")
                    count += 1
            os.replace(name, out)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return count
