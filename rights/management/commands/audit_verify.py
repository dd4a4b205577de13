"""`python manage.py audit_verify`: walk every hash chain, every signed checkpoint, and the
witness outside the database.

Exit status 0 when the trail is intact; 1, naming the first thing wrong, when anything was
modified, deleted, inserted or reordered, when the database no longer holds a checkpoint the
witness (AUDIT_WITNESS) recorded, and when events or checkpoints older than
AUDIT_CHECKPOINT_GRACE are not covered by a checkpoint in the witness.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rights import audit, clock


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every chain, every stream head, every signed checkpoint, and "
        "the witness of the checkpoints (AUDIT_WITNESS)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = audit.verify(now=clock.now())
        except audit.AuditBroken as exc:
            self.stderr.write(f"audit trail BROKEN: {exc}")
            # Not CommandError: its "CommandError:" prefix would bury the line people grep for.
            raise SystemExit(1) from exc
        line = (
            f"audit trail intact: {plural(result.events, 'event')} in "
            f"{plural(result.streams, 'stream')} verified "
            f"({plural(result.checkpoints, 'signed checkpoint')})"
        )
        if result.checkpoints:
            line += f", {result.witnessed} of them in the witness {result.witness}"
        self.stdout.write(line)
