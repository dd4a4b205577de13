"""The public forms: the removal request, the appeal, and "lost your link?".

The request form parses what the browser sent into the intake service's `Submission` and runs
the service's own checks (`check_takedown`, which writes nothing), so the page and every other
door refuse exactly the same requests; this module only puts each message, in a person's words,
next to the field it is about.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django import forms
from django.http import QueryDict
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from rights.models import Channel
from rights.services.intake_checks import InvalidRequest, Submission, check_takedown
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS, STATEMENTS_VERSION, Basis

# Bounds on what a field may carry before any check looks at it (the service's own limits are
# far lower and say so in their own words): a bound on work, not a rule for people.
FIELD_MAX = 2_000
TEXT_MAX = 100_000
URLS_MAX = 400_000
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{32,64}")
HONEYPOT = "leave_empty"

BASIS_NAMES: dict[str, Promise] = {
    Basis.COPYRIGHT: _("Copyright"),
    Basis.PRIVACY: _("Privacy"),
    Basis.DEFAMATION: _("Defamation"),
    Basis.OTHER: _("Other"),
}
BASIS_HINTS: dict[str, Promise] = {
    Basis.COPYRIGHT: _(
        "You own the copyright in the article (you published or wrote it, for example), or you "
        "act for whoever does."
    ),
    Basis.PRIVACY: _("The article is about you, and publishing it here intrudes on your privacy."),
    Basis.DEFAMATION: _("The article makes false claims about you that harm your reputation."),
    Basis.OTHER: _("You own the content and, for any other reason, do not want it republished."),
}

LABELS: dict[str, Promise] = {
    "urls": _("Web addresses"),
    "whole_domain": _("Whole domain"),
    "basis": _("Legal basis"),
    "statements": _("Statements"),
    "explanation": _("Explanation"),
    "name": _("Your name"),
    "email": _("Your email address"),
    "organisation": _("Organisation"),
}
# The order fields appear in, for the error summary.
FIELD_ORDER = (
    "urls",
    "whole_domain",
    "basis",
    "statements",
    "explanation",
    "name",
    "email",
    "organisation",
)

TOO_LONG = _("This is far too long: shorten it")
NUL = _("This contains characters that cannot be typed, such as a null character: remove them")


def new_token() -> str:
    """A fresh submission token: the form's id for one request (intake's `external_id`)."""
    return secrets.token_urlsafe(32)


def _text(max_length: int, *, strip: bool = True) -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=strip,
        max_length=max_length,
        error_messages={"max_length": TOO_LONG, "null_characters_not_allowed": NUL},
    )


def _verb_first(message: str) -> bool:
    return message.split(" ", 1)[0] in {"is", "must", "contains", "names", "has", "needs"}


def person_message(field: str, message: str) -> str:
    """A message from the intake checks, as the form shows it next to `field`."""
    if field == "name" and message == "is required":
        return gettext("Enter your name")
    if field == "email":
        if message == "is required":
            return gettext("Enter your email address")
        if message == "is not a valid email address":
            return gettext("Enter an email address in the correct format, like name@example.com")
    if field == "basis":
        return gettext("Choose the legal basis for your request")
    if field == "urls" and message.startswith("name at least one URL"):
        return gettext("Enter the web address of at least one article, or a whole domain")
    if field == "statements":
        if message.startswith("unknown statements"):
            return gettext("Tick only the statements shown for the legal basis you chose")
        return gettext("To ask on this basis, tick every one of its statements")
    if field == "urls" and message.startswith("names "):
        return gettext("Your list %(problem)s") % {"problem": message}
    label = LABELS.get(field)
    if label is not None and _verb_first(message):
        return f"{label} {message}"
    first = message.split(" ", 1)[0]
    if any(c in first for c in ".:/@"):
        return message  # begins with a domain or an address: its spelling stays
    return message[:1].upper() + message[1:]


@dataclass(frozen=True)
class StatementChoice:
    key: str
    text: str
    id: str
    checked: bool


@dataclass(frozen=True)
class StatementGroup:
    basis: str
    label: str
    id: str
    statements: list[StatementChoice]
    chosen: bool


@dataclass(frozen=True)
class BasisChoice:
    value: str
    label: str
    hint: str
    id: str
    checked: bool


@dataclass(frozen=True)
class SummaryError:
    """One line of the error summary: the message, and the control it is about (if any)."""

    message: str
    anchor: str


class RequestForm(forms.Form):
    """The removal request. Each field is kept as typed; only the intake service decides what is
    acceptable. Statements are sent per basis (`statements_<basis>`), so that a page showing
    every basis's statements (no JavaScript) takes only those of the basis chosen."""

    urls = _text(URLS_MAX, strip=False)
    whole_domain = _text(FIELD_MAX)
    basis = _text(FIELD_MAX)
    explanation = _text(TEXT_MAX, strip=False)
    name = _text(FIELD_MAX)
    email = _text(FIELD_MAX)
    organisation = _text(FIELD_MAX)
    token = _text(FIELD_MAX)
    statements_version = _text(FIELD_MAX)
    leave_empty = _text(TEXT_MAX)
    # Never sent as such (each basis has its own `statements_<basis>` boxes): holds their errors.
    statements = _text(FIELD_MAX)

    submission: Submission | None = None

    @property
    def is_bot(self) -> bool:
        """The honeypot: a field no person sees (hidden from view, from screen readers and from
        the keyboard) and that only form-filling robots fill in."""
        return bool(str(self.data.get(HONEYPOT, "")).strip())

    @property
    def chosen_basis(self) -> str:
        value = self.data.get("basis", "")
        return value if isinstance(value, str) and value in Basis.values else ""

    def _posted_list(self, name: str) -> list[str]:
        return self.data.getlist(name) if isinstance(self.data, QueryDict) else []

    def url_lines(self) -> list[tuple[int, str]]:
        """(line number, text) for each non-blank line of the URLs field."""
        raw = self.cleaned_data.get("urls", "") if hasattr(self, "cleaned_data") else ""
        return [(n, line.strip()) for n, line in enumerate(raw.splitlines(), 1) if line.strip()]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        token = str(data.get("token") or "")
        if not TOKEN_PATTERN.fullmatch(token):
            self.add_error(
                None,
                gettext(
                    "This form was incomplete when it reached us (it may have been open for "
                    "a long time). Check your details below and send it again."
                ),
            )
        version = str(data.get("statements_version") or "")
        chosen = self.chosen_basis
        statements = self._posted_list(f"statements_{chosen}") if chosen else []
        if statements and version != STATEMENTS_VERSION:
            self.add_error(
                "statements",
                gettext(
                    "The wording of the statements changed after you opened this form. Read "
                    "them again, and tick the ones you agree to."
                ),
            )
        submission = Submission(
            channel=Channel.WEB,
            urls=[line for _n, line in self.url_lines()],
            whole_domain=str(data.get("whole_domain") or ""),
            basis=str(self.data.get("basis", "") or ""),
            statements=statements,
            explanation=str(data.get("explanation") or ""),
            name=str(data.get("name") or ""),
            email=str(data.get("email") or ""),
            organisation=str(data.get("organisation") or ""),
            external_id=token,
        )
        try:
            check_takedown(submission)
        except InvalidRequest as invalid:
            self.add_service_errors(invalid.errors)
        self.submission = submission
        return data

    def add_service_errors(self, errors: dict[str, str]) -> None:
        """Put the intake service's messages next to their fields (a field the form already
        found fault with keeps its own message only)."""
        already = set(self.errors)
        lines = self.url_lines()
        for key, message in errors.items():
            if key.startswith("urls["):
                if "urls" in already:
                    continue
                index = int(key[5:-1])
                number, text = lines[index] if index < len(lines) else (index + 1, "")
                shown = "".join(c for c in text[:60] if c.isprintable())
                shown += "…" if len(text) > 60 else ""
                self.add_error(
                    "urls",
                    gettext("The address on line %(n)d (%(url)s) %(problem)s")
                    % {"n": number, "url": shown, "problem": message},
                )
            elif key in self.fields and key not in {"token", "statements_version", HONEYPOT}:
                if key not in already:
                    self.add_error(key, person_message(key, message))
            else:
                # The channel or the submission token: nothing the requester typed.
                self.add_error(None, person_message(key, message))

    # --- for the template ---------------------------------------------------------------

    def statement_errors(self) -> list[str]:
        return [str(m) for m in self.errors.get("statements", [])]

    def basis_choices(self) -> list[BasisChoice]:
        chosen = self.chosen_basis
        return [
            BasisChoice(
                value=value,
                label=str(BASIS_NAMES[value]),
                hint=str(BASIS_HINTS[value]),
                id=f"id_basis_{n}",
                checked=value == chosen,
            )
            for n, value in enumerate(Basis.values)
        ]

    def statement_groups(self) -> list[StatementGroup]:
        chosen = self.chosen_basis
        groups = []
        for value in Basis.values:
            ticked = set(self._posted_list(f"statements_{value}")) if self.is_bound else set()
            groups.append(
                StatementGroup(
                    basis=value,
                    label=str(BASIS_NAMES[value]),
                    id=f"statements-{value}",
                    chosen=value == chosen,
                    statements=[
                        StatementChoice(
                            key=key,
                            text=STATEMENTS[key],
                            id=f"id_statements_{value}_{n}",
                            checked=key in ticked,
                        )
                        for n, key in enumerate(REQUIRED_STATEMENTS[value])
                    ],
                )
            )
        return groups

    def summary(self) -> list[SummaryError]:
        """Every error, in the order of the page, each linking to its control."""
        found: list[SummaryError] = [
            SummaryError(message=str(m), anchor="") for m in self.non_field_errors() if str(m)
        ]
        chosen = self.chosen_basis
        for field in FIELD_ORDER:
            if field == "statements":
                anchor = f"id_statements_{chosen}_0" if chosen else "id_basis_0"
                found += [SummaryError(m, anchor) for m in self.statement_errors()]
                continue
            anchor = "id_basis_0" if field == "basis" else f"id_{field}"
            found += [SummaryError(str(m), anchor) for m in self.errors.get(field, [])]
        return found

    def has_problems(self) -> bool:
        return bool(self.summary())


class AppealForm(forms.Form):
    reasons = forms.CharField(
        required=False,
        strip=False,
        max_length=TEXT_MAX,
        error_messages={"max_length": TOO_LONG, "null_characters_not_allowed": NUL},
    )


class LostLinkForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        error_messages={
            "required": _("Enter your email address"),
            "invalid": _("Enter an email address in the correct format, like name@example.com"),
            "max_length": _("Enter an email address in the correct format, like name@example.com"),
            "null_characters_not_allowed": NUL,
        },
    )
