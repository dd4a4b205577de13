"""`python manage.py audit_verify`: walk every hash chain and every signed checkpoint.

Exit status 0 when the trail is intact; 1, naming the first bad event, when anything was
modified, deleted, inserted or reordered.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rights import audit


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Command(BaseCommand):
    help = "Verify the audit trail: every chain, every stream head, every signed checkpoint."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = audit.verify()
        except audit.AuditBroken as exc:
            self.stderr.write(f"audit trail BROKEN: {exc}")
            # Not CommandError: its "CommandError:" prefix would bury the line people grep for.
            raise SystemExit(1) from exc
        self.stdout.write(
            f"audit trail intact: {plural(result.events, 'event')} in "
            f"{plural(result.streams, 'stream')} verified "
            f"({plural(result.checkpoints, 'signed checkpoint')})"
        )
