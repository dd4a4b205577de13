"""Intake's checks: what a door hands over (`Submission`), and the validated request that comes
out (`CleanRequest`), or `InvalidRequest` naming every field at fault. Nothing here writes.

What each channel must carry is explicit (`SWORN_CHANNELS`): the web form and the partner API
require a legal basis and the statements it needs, sworn by the requester. Email and staff
entries may arrive without them; the case then records that nothing was sworn, because no door
swears on the requester's behalf.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from rights.errors import DomainError
from rights.models import Channel
from rights.normalise import (
    NormaliseError,
    base_host,
    has_forbidden_characters,
    normalise_domain,
    normalise_url,
)
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS, Basis

if TYPE_CHECKING:
    from rights.models import Outlet

MAX_NAME = 200
MAX_EXTERNAL_ID = 255
# Channels whose requester swears, at the door, to the statements their basis needs.
SWORN_CHANNELS = frozenset({Channel.WEB, Channel.API})


class InvalidRequest(DomainError):
    """One or more fields are at fault; `errors` maps each to a message for a person."""

    code = "invalid_request"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)

    def as_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {"code": self.code, "message": str(self), "errors": self.errors}


@dataclass(frozen=True)
class Submission:
    """A request as a door received it, and where it came from.

    `external_id` is the door's own id for this submission (the API's Idempotency-Key, the
    email's Message-ID, the web form's submission token): a retry with the same id returns the
    first case. `outlet` is the partner whose API key sent it. `email_verified` is for staff, who
    vouch for the address they enter, for the web form's confirmation, and for the mailbox when
    our own receiving server proved the sender's domain: never inferred from the request itself.
    `actor` names who entered it for the trail (staff: `staff:<id>`).
    The fields are typed for the doors; the checks still refuse anything else, since a door
    may hand over whatever arrived.
    """

    channel: str
    email: str
    name: str
    basis: str = ""
    urls: Sequence[str] = ()
    whole_domain: str = ""
    explanation: str = ""
    statements: Sequence[str] = ()
    organisation: str = ""
    external_id: str = ""
    outlet: Outlet | None = None
    email_verified: bool = False
    actor: str = ""
    # When the door received it, if that was before intake (the mailbox stores a message before
    # reading it): the clock starts then. Never later than intake's own now.
    received_at: datetime | None = None


@dataclass(frozen=True)
class CleanRequest:
    channel: str
    email: str
    name: str
    organisation: str
    basis: str
    explanation: str
    statements: tuple[str, ...]
    urls: tuple[str, ...]
    whole_domain: str
    external_id: str

    def digest(self, outlet: Outlet | None) -> str:
        """What a retry must repeat: the whole request and who sent it, but not its id."""
        body = {
            "channel": self.channel,
            "outlet": outlet.pk if outlet is not None else None,
            "email": self.email,
            "name": self.name,
            "organisation": self.organisation,
            "basis": self.basis,
            "explanation": self.explanation,
            "statements": sorted(self.statements),
            "urls": sorted(self.urls),
            "whole_domain": self.whole_domain,
        }
        encoded = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()


def _clean_text(
    value: object,
    *,
    name: str,
    limit: int,
    required: bool,
    errors: dict[str, str],
    multiline: bool = False,
) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors[name] = "contains characters that are not valid Unicode text"
        return ""
    text = unicodedata.normalize("NFC", value.strip())
    if has_forbidden_characters(text) or (not multiline and any(c in text for c in "\n\r\t")):
        errors[name] = "contains control or invisible formatting characters"
    elif required and not text:
        errors[name] = "is required"
    elif len(text) > limit:
        errors[name] = f"is too long: {len(text):,} characters, at most {limit:,} are accepted"
    return text


def canonical_email(value: object) -> str | None:
    """An address as intake stores it (trimmed, the domain in its ASCII form, lower-case), or
    None when it is not a valid address: one spelling for every lookup and every limit."""
    errors: dict[str, str] = {}
    text = _clean_email(value, errors)
    return None if errors else text


def _clean_email(value: object, errors: dict[str, str]) -> str:
    text = _clean_text(value, name="email", limit=254, required=True, errors=errors)
    if "email" in errors:
        return ""
    local, _, domain = text.rpartition("@")
    try:
        validate_email(text)
        text = f"{local}@{normalise_domain(domain, public_suffix_ok=True)}".lower()
    except (ValidationError, NormaliseError):
        errors["email"] = "is not a valid email address"
    return text


def _is_list_like(value: object) -> TypeGuard[Iterable[Any]]:
    """A list of items. Strings, bytes and mappings are iterable too, but iterating them yields
    characters, integers or keys, which would pass for a list of something else."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray | Mapping)


def _clean_urls(value: object, errors: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not _is_list_like(value):
        errors["urls"] = "must be a list of URLs"
        return ()
    raw = list(value)
    limit = settings.TAKEDOWN_MAX_URLS
    if len(raw) > limit:
        errors["urls"] = (
            f"names {len(raw):,} URLs; at most {limit} are accepted in one request "
            "(ask for a whole domain instead, or send several requests)"
        )
        return ()
    seen: dict[str, None] = {}
    for index, item in enumerate(raw):
        try:
            seen.setdefault(normalise_url(item), None)
        except NormaliseError as exc:
            errors[f"urls[{index}]"] = f"{exc}"
    return tuple(seen)


def _clean_statements(
    statements: object, basis: str, *, sworn_required: bool, errors: dict[str, str]
) -> tuple[str, ...]:
    if not _is_list_like(statements):
        errors["statements"] = "must be a list of statement keys"
        return ()
    # Read once: a generator would be empty by the second pass, hiding unknown statements.
    given = list(statements)
    sworn = tuple(dict.fromkeys(s for s in given if isinstance(s, str)))
    unknown = [s for s in given if not isinstance(s, str) or s not in STATEMENTS]
    missing = [s for s in REQUIRED_STATEMENTS.get(basis, ()) if s not in sworn]
    if unknown:
        errors["statements"] = f"unknown statements: {', '.join(map(str, unknown))}"
    elif missing and sworn_required and "basis" not in errors:
        errors["statements"] = f"a {basis} request needs these statements: {', '.join(missing)}"
    return sworn


def check_takedown(submission: Submission) -> CleanRequest:
    """Validate and normalise a submission; raise `InvalidRequest` naming every field at fault."""
    s = submission
    errors: dict[str, str] = {}
    if s.channel not in Channel.values:
        errors["channel"] = f"must be one of {', '.join(Channel.values)}"
    sworn_required = s.channel in SWORN_CHANNELS
    clean_email = _clean_email(s.email, errors)
    clean_name = _clean_text(s.name, name="name", limit=MAX_NAME, required=True, errors=errors)
    clean_org = _clean_text(
        s.organisation, name="organisation", limit=MAX_NAME, required=False, errors=errors
    )
    clean_explanation = _clean_text(
        s.explanation,
        name="explanation",
        limit=settings.TAKEDOWN_MAX_EXPLANATION,
        required=False,
        errors=errors,
        multiline=True,
    )
    clean_basis = s.basis if isinstance(s.basis, str) else None
    if clean_basis is None or (clean_basis and clean_basis not in Basis.values):
        errors["basis"] = f"must be one of {', '.join(Basis.values)}"
    elif not clean_basis and sworn_required:
        errors["basis"] = f"is required: one of {', '.join(Basis.values)}"
    clean_basis = clean_basis or ""
    clean_urls = _clean_urls(s.urls, errors)
    clean_domain = ""
    if s.whole_domain:
        try:
            # The site, not one of its everyday hosts: a request for www.example.com covers
            # m.example.com and example.com as well.
            clean_domain = base_host(normalise_domain(s.whole_domain))
        except NormaliseError as exc:
            errors["whole_domain"] = str(exc)
    if (
        not clean_urls
        and not clean_domain
        and not any(
            key == "urls" or key.startswith("urls[") or key == "whole_domain" for key in errors
        )
    ):
        errors["urls"] = "name at least one URL (or a whole domain)"
    sworn = _clean_statements(
        s.statements, clean_basis, sworn_required=sworn_required, errors=errors
    )
    external_id = _clean_text(
        s.external_id, name="external_id", limit=MAX_EXTERNAL_ID, required=False, errors=errors
    )
    if errors:
        raise InvalidRequest(errors)
    return CleanRequest(
        channel=s.channel,
        email=clean_email,
        name=clean_name,
        organisation=clean_org,
        basis=clean_basis,
        explanation=clean_explanation,
        statements=sworn,
        urls=clean_urls,
        whole_domain=clean_domain,
        external_id=external_id,
    )
