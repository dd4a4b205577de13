"""`python manage.py evidence_verify FILE`: verify a case's evidence bundle (rights.evidence).

Exit status 0 when the bundle is intact; 1, naming the first event or checkpoint at fault, when
an event was modified, removed, inserted or reordered, the tail was cut, or a checkpoint or its
witness line does not agree, or the bundle's signature is not this service's evidence key's;
2 when the file cannot be read. The checkpoints' signatures are checked with this service's
AUDIT_SIGNING_KEY unless `--without-key` asks for the checks a third party without the key can
make (the same as rights/evidence_verify.py with --public-key).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from rights.evidence import BundleBroken, bundle_verify, evidence_public_key


class Command(BaseCommand):
    help = (
        "Verify an evidence bundle offline: every event's hash and link, the stream's head, and "
        "the signed checkpoints and witness lines that cover them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the bundle (JSON), as downloaded from the console")
        parser.add_argument(
            "--without-key",
            action="store_true",
            help="do not check the checkpoints' signatures (what a third party can verify)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], encoding="utf-8") as file:
                bundle = json.load(file)
        except (OSError, ValueError) as exc:
            self.stderr.write(f"cannot read {options['file']}: {exc}")
            raise SystemExit(2) from exc
        key = None if options["without_key"] else settings.AUDIT_SIGNING_KEY
        try:
            lines = bundle_verify(bundle, key=key, public_key=evidence_public_key())
        except BundleBroken as exc:
            # As audit_verify: one line people can grep for, not a CommandError traceback.
            self.stderr.write(f"evidence bundle BROKEN: {exc}")
            raise SystemExit(1) from exc
        for line in lines:
            self.stdout.write(line)
