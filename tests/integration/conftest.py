from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from rights.models import ContentItem


@dataclass
class CommandRun:
    """What a command wrote, and the exit status it would have had on the command line."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run_command(db: None):  # type: ignore[no-untyped-def]
    """Run a management command in-process, as `manage.py` would (exit status included).

    `CommandError` becomes its `returncode` and its message on stderr, as in
    `BaseCommand.run_from_argv`; `SystemExit` becomes its code.
    """

    def _run(*args: str, **options: Any) -> CommandRun:
        out, err = StringIO(), StringIO()
        try:
            call_command(*args, stdout=out, stderr=err, **options)
        except CommandError as exc:
            err.write(f"CommandError: {exc}\n")
            return CommandRun(exc.returncode, out.getvalue(), err.getvalue())
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            return CommandRun(code, out.getvalue(), err.getvalue())
        return CommandRun(0, out.getvalue(), err.getvalue())

    return _run


@pytest.fixture
def demo_catalogue(db: None) -> ContentItem:
    """The demo catalogue, seeded; returns its memorable telegraph.co.uk item."""
    from rights.management.commands.seed_demo import EXAMPLE_SLUG

    call_command("seed_demo", verbosity=0)
    return ContentItem.objects.get(slug=EXAMPLE_SLUG)
