"""`python manage.py takedown submit|show|list|approve|reject|restore`: the staff door to intake,
a look at cases, and decisions on them.

Every subcommand prints JSON on stdout (datetimes as ISO 8601 in UTC, or null), so that scripts
and demos can read it. A request the service refuses exits with status 2 and names each field at
fault on stderr; nothing is written. An unknown case reference exits with status 1.
"""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rights import selectors
from rights.errors import DomainError
from rights.models import Channel, TakedownRequest, Target
from rights.presenters import Viewer, case_present, iso
from rights.services import review
from rights.services.intake import IntakeResult, InvalidRequest, Submission, takedown_submit
from rights.statements import STATEMENTS, Basis

# The service names its inputs; the person at the terminal typed options.
OPTION_OF_FIELD = {
    "email": "--email",
    "name": "--name",
    "organisation": "--organisation",
    "basis": "--basis",
    "explanation": "--explanation",
    "urls": "--url",
    "whole_domain": "--domain",
    "statements": "--statement",
}
# The command is run by staff on the server: it sees every case.
STAFF = Viewer.staff()
EXIT_INVALID = 2
EXIT_NOT_FOUND = 1
DECISIONS = {
    "approve": "approve a case: its content is removed",
    "reject": "reject a case, with reasons: content the fail-safe disabled comes back",
    "restore": "restore content removed in error, with reasons",
}


def _shown(
    viewer_case: tuple[TakedownRequest, list[Target]] | None, reference: str
) -> dict[str, Any]:
    if viewer_case is None:
        raise CommandError(f"no case with reference {reference!r}", returncode=EXIT_NOT_FOUND)
    case, targets = viewer_case
    return case_present(case, targets=targets, viewer=STAFF).as_dict()


def _field_label(field: str, urls: list[str]) -> str:
    """`urls[1]` -> `--url 'https://…'`: the option and the value the person typed."""
    if field.startswith("urls[") and field.endswith("]"):
        try:
            return f"--url {urls[int(field[5:-1])]!r}"
        except (ValueError, IndexError):
            return "--url"
    return OPTION_OF_FIELD.get(field, field)


def error_message(exc: DomainError, urls: list[str]) -> str:
    if isinstance(exc, InvalidRequest):
        lines = [
            f"  {_field_label(field, urls)}: {message}" for field, message in exc.errors.items()
        ]
        return "the request was not accepted:\n" + "\n".join(lines)
    if exc.field:
        return f"the request was not accepted: {_field_label(exc.field, urls)}: {exc.message}"
    return f"the request was not accepted: {exc.message}"


class Command(BaseCommand):
    help = "Submit a takedown request as staff, show one case, or list cases (JSON output)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="subcommand", required=True, metavar="{submit,show,list,approve,reject,restore}"
        )

        submit = sub.add_parser(
            "submit",
            help="enter a request on the requester's behalf (staff vouch for the address)",
        )
        # Required inputs are checked by the intake service, not by argparse, so that every
        # mistake is reported the same way (each field named, exit status 2), however it is run.
        submit.add_argument(
            "--url",
            action="append",
            dest="urls",
            default=[],
            metavar="URL",
            help="a URL to take down: our copy or its primary source (repeatable)",
        )
        submit.add_argument(
            "--domain", default="", help="ask for everything republished from this domain"
        )
        submit.add_argument("--email", default="", help="the requester's email address (required)")
        submit.add_argument("--name", default="", help="the requester's name (required)")
        submit.add_argument("--organisation", default="", help="the requester's organisation")
        submit.add_argument(
            "--basis",
            default="",
            help=f"legal basis the requester gave: {', '.join(Basis.values)} (default: none)",
        )
        submit.add_argument(
            "--statement",
            action="append",
            dest="statements",
            default=[],
            metavar="KEY",
            help=(
                "a statement the requester swore to, in its current wording (repeatable; none "
                f"by default, and none is ever assumed): {', '.join(sorted(STATEMENTS))}"
            ),
        )
        submit.add_argument("--explanation", default="", help="why the content should go")
        submit.add_argument(
            "--staff",
            default="",
            metavar="USERNAME",
            help="the staff member entering it (default: the operating-system login)",
        )

        show = sub.add_parser("show", help="show one case and its targets")
        show.add_argument("reference", help="the case reference, e.g. TD-7K3M9QX")

        listing = sub.add_parser("list", help="list cases, newest first")
        listing.add_argument("--open", action="store_true", help="leave out closed cases")

        for name, help_text in DECISIONS.items():
            decide = sub.add_parser(name, help=help_text)
            decide.add_argument("reference", help="the case reference")
            decide.add_argument(
                "--staff", required=True, help="username of the staff member deciding"
            )
            if name != "approve":
                decide.add_argument("--reasons", default="", help="why (required)")

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        if subcommand == "submit":
            output: Any = self.submit(options)
        elif subcommand in DECISIONS:
            output = self.decide(subcommand, options)
        elif subcommand == "show":
            output = self.show(options["reference"])
        else:
            output = self.list_cases(open_only=options["open"])
        self.stdout.write(json.dumps(output, indent=2, ensure_ascii=False))

    def submit(self, options: dict[str, Any]) -> dict[str, Any]:
        urls: list[str] = options["urls"]
        if options["staff"]:
            user = selectors.staff_user(options["staff"])
            if user is None:
                raise CommandError(
                    f"no active staff user named {options['staff']!r}", returncode=EXIT_INVALID
                )
            actor = f"staff:{user.pk}"
        else:
            actor = f"os:{getpass.getuser()}"
        submission = Submission(
            channel=Channel.STAFF,
            email=options["email"],
            name=options["name"],
            organisation=options["organisation"],
            basis=options["basis"],
            explanation=options["explanation"],
            statements=options["statements"],
            urls=urls,
            whole_domain=options["domain"],
            email_verified=True,
            actor=actor,
        )
        try:
            result: IntakeResult = takedown_submit(submission=submission)
        except DomainError as exc:
            raise CommandError(error_message(exc, urls), returncode=EXIT_INVALID) from exc
        body = _shown(selectors.case_for(viewer=STAFF, reference=result.case.reference), "")
        body["created"] = result.created
        body["merged"] = [{"url": url, "reference": ref} for url, ref in result.merged]
        return body

    def decide(self, decision: str, options: dict[str, Any]) -> dict[str, Any]:
        found = selectors.case_for(viewer=STAFF, reference=options["reference"])
        if found is None:
            raise CommandError(
                f"no case with reference {options['reference']!r}", returncode=EXIT_NOT_FOUND
            )
        case = found[0]
        user = selectors.staff_user(options["staff"])
        if user is None:
            raise CommandError(
                f"no active staff user named {options['staff']!r}", returncode=EXIT_INVALID
            )
        try:
            if decision == "approve":
                review.case_approve(case=case, user_id=user.pk)
            elif decision == "reject":
                review.case_reject(case=case, user_id=user.pk, reasons=options["reasons"])
            else:
                review.case_restore(case=case, user_id=user.pk, reasons=options["reasons"])
        except DomainError as exc:
            raise CommandError(
                f"the decision was not recorded: {exc}", returncode=EXIT_INVALID
            ) from exc
        return self.show(case.reference)

    def show(self, reference: str) -> dict[str, Any]:
        return _shown(selectors.case_for(viewer=STAFF, reference=reference), reference)

    def list_cases(self, *, open_only: bool) -> list[dict[str, Any]]:
        return [
            {
                "reference": case.reference,
                "state": case.state,
                "channel": case.channel,
                "trusted": case.trusted,
                "received_at": iso(case.received_at),
                "deadline_at": iso(case.deadline_at),
                "closed_at": iso(case.closed_at),
                "target_count": case.target_count,
            }
            for case in selectors.case_summaries(viewer=STAFF, open_only=open_only)
        ]
