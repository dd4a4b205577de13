"""`python manage.py staff_user create USERNAME --role reviewer|lead|admin [--email E]
[--password-stdin]`: a staff account for the console, in one role.

`createsuperuser` makes accounts that may do everything; staff accounts should hold only their
role's permissions (the groups that migration 0008 creates). Without `--password-stdin` a
random password is printed once, for the operator to hand over; with it, the first line of
standard input is the password, checked by the password validators.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from rights.permissions import ROLES


class Command(BaseCommand):
    help = "Create a staff account for the console in one role (reviewer, lead or admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{create}")
        create = sub.add_parser("create", help="create a staff account in a role")
        create.add_argument("username")
        create.add_argument("--role", required=True, choices=ROLES)
        create.add_argument("--email", default="")
        create.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"].strip()
        role: str = options["role"]
        model = get_user_model()
        if not username:
            raise CommandError("the username must not be empty")
        if model.objects.filter(username=username).exists():
            raise CommandError(f"a user named {username!r} already exists")
        group = Group.objects.filter(name=role).first()
        if group is None:
            raise CommandError(f"the {role!r} group is missing: run `manage.py migrate` first")
        generated = not options["password_stdin"]
        if generated:
            password = secrets.token_urlsafe(18)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on standard input")
        user = model(username=username, email=options["email"], is_staff=True)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("the password is refused: " + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user.set_password(password)
            user.save()
            user.groups.add(group)
        self.stdout.write(f"Created staff user {username} ({role}).")
        if generated:
            self.stdout.write(f"Password (shown once; ask them to change it): {password}")
