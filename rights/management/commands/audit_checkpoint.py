"""`python manage.py audit_checkpoint`: sign the heads of the streams written since the last one,
and write the checkpoint to the witness (AUDIT_WITNESS).

Beat and the standby sweeper run this periodically; by hand it is useful before exporting
evidence, so that the export is covered by a signature. `--start-witness` begins a new witness
for a database that already holds checkpoints (an upgrade from a version without one).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rights import audit

SHOWN_HEADS = 20


class Command(BaseCommand):
    help = (
        "Create a signed checkpoint of the audit stream heads written since the previous one, "
        "and write it to the witness."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--start-witness",
            action="store_true",
            help=(
                "begin the witness with every checkpoint the database holds, after checking "
                "them; refused when the witness exists"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["start_witness"]:
                self.start_witness()
            else:
                self.checkpoint(options["verbosity"])
        except audit.WitnessError as exc:
            self.stderr.write(f"audit checkpoint FAILED: {exc}")
            raise SystemExit(1) from exc
        except audit.AuditBroken as exc:
            self.stderr.write(f"audit trail BROKEN: {exc}")
            raise SystemExit(1) from exc

    def start_witness(self) -> None:
        count = audit.witness_start()
        self.stdout.write(
            f"began the witness {audit.witness_from_settings().location} with {count} "
            f"checkpoint{'s' if count != 1 else ''}: it vouches for the trail as the database "
            "holds it now"
        )

    def checkpoint(self, verbosity: int) -> None:
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
        if verbosity < 2:
            shown = shown[:SHOWN_HEADS]
        for name, (seq, head_hash) in shown:
            self.stdout.write(f"  {name} up to #{seq}: {head_hash}")
        if len(shown) < len(heads):
            self.stdout.write(f"  ... and {len(heads) - len(shown)} more (-v 2 lists them all)")
