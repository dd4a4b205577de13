"""`python manage.py evidence_key`: print the public half of the service's evidence key (hex).

Evidence bundles are signed with it; a third party checks a bundle with
`python3 evidence_verify.py BUNDLE.json --public-key HEX`. The service also publishes it at
/.well-known/rights-evidence-key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from rights.evidence import evidence_public_key


class Command(BaseCommand):
    help = "Print the public key (hex) that evidence bundles are signed with."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(evidence_public_key())
