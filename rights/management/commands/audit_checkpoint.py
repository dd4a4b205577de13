"""`python manage.py audit_checkpoint`: sign the heads of the streams written since the last one.

Beat runs this periodically; by hand it is useful before exporting evidence, so that the export
is covered by a signature.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rights import audit

SHOWN_HEADS = 20


class Command(BaseCommand):
    help = "Create a signed checkpoint of the audit stream heads written since the previous one."

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = audit.checkpoint_create()
        if checkpoint is None:
            self.stdout.write("nothing to sign: no audit events since the previous checkpoint")
            return
        heads: dict[str, list[Any]] = checkpoint.heads
        self.stdout.write(
            f"signed checkpoint {checkpoint.pk} at {audit.format_time(checkpoint.created_at)}: "
            f"{len(heads)} stream head{'s' if len(heads) != 1 else ''}, "
            f"digest {checkpoint.digest}, signature {checkpoint.signature}"
        )
        shown = sorted(heads.items())
        if options["verbosity"] < 2:
            shown = shown[:SHOWN_HEADS]
        for name, (seq, head_hash) in shown:
            self.stdout.write(f"  {name} up to #{seq}: {head_hash}")
        if len(shown) < len(heads):
            self.stdout.write(f"  ... and {len(heads) - len(shown)} more (-v 2 lists them all)")
