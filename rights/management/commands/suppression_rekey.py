"""`python manage.py suppression_rekey [--all]`: compute the suppression rules' lookup keys again.

`migrate` does this for the rules whose keys an older version of the key functions or of the
Public Suffix List computed, on every release. Run it by hand after writing rules some other way
than the service does (SQL, a restored dump): `--all` computes every rule's key, not only the
stale ones. Prints how many keys changed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rights.models import Suppression


class Command(BaseCommand):
    help = "Compute the suppression rules' lookup keys again (the stale ones, or --all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="every rule, not only those with stale keys"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rules = Suppression.objects.all() if options["all"] else Suppression.objects.stale()
        changed = rules.rekey()
        self.stdout.write(f"{changed} rule key{'s' if changed != 1 else ''} changed")
