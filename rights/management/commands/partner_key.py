"""`python manage.py partner_key create|list|revoke`: partner outlets' API keys.

`create --outlet SLUG [--scope takedowns|clearance] [--name TEXT] [--expires-in-days N]` prints
the new key on stdout, alone on its line, once (it is never stored or shown again); what it is
goes to stderr. `list [--outlet SLUG]` prints JSON (prefixes, never secrets). `revoke PREFIX`
refuses the key from then on. Creating and revoking are audited on the outlet's stream, with the
operating-system login that ran the command as the actor. Exit status 2 for a bad argument, 1 for
an unknown outlet or key.
"""

from __future__ import annotations

import getpass
import json
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from rights.errors import DomainError
from rights.models import KeyScope, Outlet, PartnerKey
from rights.presenters import iso
from rights.services.partner_keys import partner_key_create, partner_key_revoke

EXIT_INVALID = 2
EXIT_NOT_FOUND = 1


class Command(BaseCommand):
    help = "Create, list and revoke partner API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        create = sub.add_parser("create", help="create a key and print it once")
        create.add_argument("--outlet", required=True, help="the outlet's slug")
        create.add_argument("--scope", choices=KeyScope.values, default=KeyScope.TAKEDOWNS)
        create.add_argument("--name", default="", help="what the key is for")
        create.add_argument("--expires-in-days", type=int, default=None)
        listing = sub.add_parser("list", help="list keys (prefixes only) as JSON")
        listing.add_argument("--outlet", default=None)
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = f"os:{getpass.getuser()}"
        if options["subcommand"] == "create":
            self.create(options, actor)
        elif options["subcommand"] == "list":
            self.list_keys(options["outlet"])
        else:
            key = PartnerKey.objects.filter(prefix=options["prefix"].strip()).first()
            if key is None:
                raise CommandError(f"no key {options['prefix']!r}", returncode=EXIT_NOT_FOUND)
            key = partner_key_revoke(key=key, actor=actor)
            self.stdout.write(json.dumps(_shown(key)))

    def create(self, options: dict[str, Any], actor: str) -> None:
        outlet = Outlet.objects.filter(slug=options["outlet"]).first()
        if outlet is None:
            partners = Outlet.objects.filter(is_partner=True).order_by("slug")
            known = ", ".join(partners.values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(
                f"no outlet {options['outlet']!r} (partner outlets: {known})",
                returncode=EXIT_NOT_FOUND,
            )
        days = options["expires_in_days"]
        if days is not None and not 1 <= days <= 3650:
            raise CommandError("--expires-in-days must be 1 to 3650", returncode=EXIT_INVALID)
        try:
            new = partner_key_create(
                outlet=outlet,
                scope=options["scope"],
                name=options["name"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                actor=actor,
            )
        except DomainError as exc:
            raise CommandError(str(exc), returncode=EXIT_INVALID) from exc
        self.stderr.write(
            f"A {new.key.scope} key for {outlet.slug} (prefix {new.key.prefix}); it is shown "
            "this once and cannot be shown again."
        )
        self.stdout.write(new.plaintext)

    def list_keys(self, outlet: str | None) -> None:
        keys = PartnerKey.objects.select_related("outlet").order_by("outlet__slug", "created_at")
        if outlet is not None:
            keys = keys.filter(outlet__slug=outlet)
        self.stdout.write(json.dumps([_shown(key) for key in keys], indent=2))


def _shown(key: PartnerKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "outlet": key.outlet.slug,
        "scope": key.scope,
        "name": key.name,
        "created_at": iso(key.created_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
    }
