"""Statements of reasons in the EU DSA transparency database's schema (DSA Art. 24(5)), and
their submission to it.

One exported statement per restricted URL: each removal and each fail-safe disabling in a
statement of reasons' scope (`StatementOfReasons.scope`) becomes one statement, since the
database describes one item of content per statement. Refusals and restorations restrict
nothing and are not exported; a restoration leaves the removal's statement as it was.

**No personal data.** Every text exported is generated here from structured fields (the basis,
the door, the measure, who decided, counts and dates), never taken from a free text that a
requester or a reviewer wrote: the explanation, the reasons, the facts as drafted (they hold the
case's reference) and a typed ground may all name people. No URL is exported either (an
article's address can name a person), nor the case's reference.

**puid.** `sor<statement id>-t<target id>`: unique (one statement per restricted URL per
decision), stable (both ids are fixed once written), never reused (database sequences never
hand an id out twice), and within `^[a-zA-Z0-9_-]+$`. It is deliberately not the case's
reference: the reference is printed in the requester's mail and on their status page, so a
public record carrying it would tie that person's correspondence to the public database.

The enumerations and limits below are those of the database's API documentation
(https://transparency.dsa.ec.europa.eu/page/api-documentation).
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.conf import settings
from django.db import transaction

from rights import audit, clock, sor_templates
from rights.deadlines import duration_words
from rights.errors import DomainError
from rights.models import (
    Channel,
    Measure,
    SorSubmission,
    StatementOfReasons,
    SubmissionOutcome,
    Target,
)
from rights.statements import Basis
from rights.states import TargetState

logger = logging.getLogger(__name__)

# --- The database's schema ---------------------------------------------------------------------

VISIBILITY_REMOVED = "DECISION_VISIBILITY_CONTENT_REMOVED"
VISIBILITY_DISABLED = "DECISION_VISIBILITY_CONTENT_DISABLED"
GROUND_ILLEGAL = "DECISION_GROUND_ILLEGAL_CONTENT"
GROUND_INCOMPATIBLE = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
CONTENT_TYPE_TEXT = "CONTENT_TYPE_TEXT"
# Every request reaches us as a notice (DSA Art. 16), by whichever door; none is our own
# initiative, and a partner outlet is not a trusted flagger (that status is awarded under Art.
# 22 by a Digital Services Coordinator).
SOURCE_ARTICLE_16 = "SOURCE_ARTICLE_16"
AUTOMATED_DETECTION_NO = "No"
AUTOMATED_DECISION_FULLY = "AUTOMATED_DECISION_FULLY"
AUTOMATED_DECISION_NOT_AUTOMATED = "AUTOMATED_DECISION_NOT_AUTOMATED"
# Our copies are taken down everywhere: the whole European Economic Area.
TERRITORIAL_SCOPE = [
    *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"),
    *("IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE"),
    *("SI", "SK"),
]
# Length limits (characters).
LIMITS = {
    "decision_facts": 5000,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "puid": 500,
}
PUID_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
BATCH = 100  # statements per call to the database's "multiple" endpoint

# The category of each basis the requester states, and its keyword (category_specification).
CATEGORIES: dict[str, tuple[str, str | None]] = {
    Basis.COPYRIGHT: (
        "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
        "KEYWORD_COPYRIGHT_INFRINGEMENT",
    ),
    Basis.PRIVACY: (
        "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
        "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    ),
    Basis.DEFAMATION: ("STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", "KEYWORD_DEFAMATION"),
}
CATEGORY_TERMS = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

# Grounds that are a law (illegal content): the law, in the database's words. The explanation
# is put together from what the case records (`_legal_explanation`): who asked, what they
# claimed, whether they swore to it, and whether a person decided.
LEGAL_GROUNDS: dict[str, str] = {
    Basis.COPYRIGHT: (
        "Copyright: the right holder's exclusive right to make the work available to the public "
        "(Directive 2001/29/EC, Article 3, as implemented in national law)."
    ),
    Basis.PRIVACY: "Data protection: the right to erasure (Regulation (EU) 2016/679, Article 17).",
    Basis.DEFAMATION: "Defamation: the protection of a person's reputation under national law.",
}
# Who asked, and what they claimed: (a requester, the content's own publisher).
LEGAL_CLAIMS: dict[str, tuple[str, str]] = {
    Basis.COPYRIGHT: (
        "Someone who said they hold the rights in the work, or act for the right holder, "
        "notified us that our republication of it is not authorised",
        "The content's own publisher notified us that our republication of its work is not "
        "authorised",
    ),
    Basis.PRIVACY: (
        "Someone who said the content is about them, or that they act for the person it is "
        "about, asked us to end our republication of it to protect that person's privacy",
        "The content's own publisher asked us to end our republication of it to protect the "
        "privacy of a person it is about",
    ),
    Basis.DEFAMATION: (
        "Someone who said the content is about them, or that they act for the person it is "
        "about, notified us that it makes false statements of fact about that person",
        "The content's own publisher notified us that it makes false statements of fact about "
        "a person",
    ),
}
# How a reviewer weighed each basis.
LEGAL_REVIEWS: dict[str, str] = {
    Basis.COPYRIGHT: "A reviewer examined the claim and decided to act on it.",
    Basis.PRIVACY: (
        "A reviewer weighed that person's privacy against the public interest in the report "
        "and decided to act on the request."
    ),
    Basis.DEFAMATION: "A reviewer examined the claim and decided to act on it.",
}
TERMS_GROUNDS: dict[str, tuple[str, str]] = {
    Basis.OTHER: (
        "Our terms: we republish articles from their primary sources and delete our copy when "
        "the owner of the content asks.",
        "The owner of the content, or someone acting for them, asked us to stop republishing it.",
    ),
    sor_templates.TERMS: (
        "Our terms: we republish articles from their primary sources and delete our copy when "
        "the owner of the content asks.",
        "The owner of the content, or someone acting for them, asked us to stop republishing it.",
    ),
    sor_templates.WHOLE_DOMAIN: (
        "Our terms: we delete our copies of a whole site's articles when the site's owner asks.",
        "The owner of the site the content comes from asked us to stop republishing its articles.",
    ),
    sor_templates.FAILSAFE: (
        "Our terms: content named in a removal request that nobody has decided shortly before "
        "the deadline we promise is disabled until a reviewer decides.",
        "A removal request named this content and no decision had been made shortly before "
        "the deadline, so access to our copy was disabled pending review. The request itself "
        "was not assessed; the decision that follows has a statement of its own.",
    ),
}

# How the notice reached us, as the subject of a sentence.
DOOR_WORDS: dict[str, str] = {
    Channel.WEB: "A notice received through our web form",
    Channel.EMAIL: "A notice received by email",
    Channel.API: "A notice received through a partner outlet's API",
    Channel.STAFF: "A notice received elsewhere and entered by our staff",
}


def puid_of(statement_id: int, target_id: int) -> str:
    return f"sor{statement_id}-t{target_id}"


def _ground(sor: StatementOfReasons) -> str:
    """The ground's key: as recorded when it is one of ours, else the case's own (a ground the
    reviewer typed is free text, never exported)."""
    if sor.ground in sor_templates.GROUND_WORDS:
        return sor.ground
    return sor_templates.ground_of(sor.case)


def _facts(sor: StatementOfReasons, measure_words: str, urls: int) -> str:
    case = sor.case
    door = DOOR_WORDS.get(case.channel, "A notice")
    promise = duration_words(case.deadline_seconds) if case.deadline_seconds else "the deadline"
    parts = [
        f"{door} asked us to stop republishing "
        f"{urls} article{'s' if urls != 1 else ''} that we republish from other publishers, "
        "each with a link to its primary source; we promise to act within "
        f"{promise}.",
    ]
    if case.statements:
        parts.append("The requester made the sworn statements our form asks for on this basis.")
    else:
        parts.append("The requester made no sworn statement.")
    if sor.ground == sor_templates.FAILSAFE:
        parts.append(
            "Nobody had decided the request shortly before its deadline, so our deadline rule "
            "disabled access to our copy automatically, with no person deciding, until a "
            "reviewer decides."
        )
    elif sor.automated_decision:
        parts.append(
            "The notice came from the content's own publisher (its systems, or an address it "
            "declared as its own), which our trust rules recognise for this content, so it was "
            f"approved automatically, with no person deciding, and {measure_words}."
        )
    else:
        parts.append(f"A reviewer examined the notice and {measure_words}.")
    if sor.round:
        parts.append("This decision was made on the requester's appeal.")
    return " ".join(parts)


def _from_publisher(sor: StatementOfReasons) -> bool:
    """Whether the notice came from the content's own publisher: a partner outlet's API, or a
    source our trust rules recognise (whose request was then approved with no person deciding;
    the fail-safe's decision is automatic too, but says nothing about who asked)."""
    if sor.case.channel == Channel.API:
        return True
    return sor.automated_decision and sor.ground != sor_templates.FAILSAFE


def _legal_explanation(sor: StatementOfReasons, basis: str) -> str:
    """Who asked and what they claimed, whether they swore to it, and who decided: each from
    the case's record, so that nothing is said that did not happen."""
    publisher = _from_publisher(sor)
    claim = LEGAL_CLAIMS[basis][1 if publisher else 0]
    who = "it" if publisher else "they"
    if sor.case.statements:
        oath = f"{claim}, and {who} declared so under oath."
    else:
        oath = f"{claim}; {who} made no sworn statement."
    if sor.automated_decision:
        decided = (
            "Our trust rules recognise that publisher for this content, so the request was "
            "approved automatically, with no person deciding."
        )
    else:
        decided = LEGAL_REVIEWS[basis]
    return f"{oath} {decided}"


def _measure_words(sor: StatementOfReasons) -> str:
    if sor.measure == Measure.PARTIAL:
        return "our copy of this article was removed, while other articles named were not"
    if sor.measure == Measure.DISABLING:
        return "access to our copy was disabled"
    return "our copy of this article was removed"


def _restricted(sor: StatementOfReasons) -> list[int]:
    """The targets a statement restricts: removed, or disabled by the fail-safe."""
    wanted = TargetState.DISABLED if sor.measure == Measure.DISABLING else TargetState.REMOVED
    return [int(tid) for tid, outcome in sor.scope if outcome == wanted]


def statement_of(sor: StatementOfReasons, target: Target) -> dict[str, Any]:
    """One statement in the database's schema: one restricted URL of one decision."""
    ground = _ground(sor)
    basis = sor.case.basis
    category, keyword = CATEGORIES.get(basis, (CATEGORY_TERMS, None))
    urls = len(sor.scope)
    body: dict[str, Any] = {
        "decision_visibility": [
            VISIBILITY_DISABLED if sor.measure == Measure.DISABLING else VISIBILITY_REMOVED
        ],
    }
    if ground in LEGAL_GROUNDS:
        body |= {
            "decision_ground": GROUND_ILLEGAL,
            "illegal_content_legal_ground": LEGAL_GROUNDS[ground],
            "illegal_content_explanation": _legal_explanation(sor, ground),
        }
    else:
        terms, explanation = TERMS_GROUNDS.get(ground, TERMS_GROUNDS[sor_templates.TERMS])
        body |= {
            "decision_ground": GROUND_INCOMPATIBLE,
            "incompatible_content_ground": terms,
            "incompatible_content_explanation": explanation,
        }
    body["category"] = category
    if keyword is not None:
        body["category_specification"] = [keyword]
    item = target.content_item
    published = item.published_at if item is not None else sor.decided_at
    body |= {
        "content_type": [CONTENT_TYPE_TEXT],
        "content_date": _day(max(published, _EARLIEST_CONTENT)),
        "application_date": _day(sor.decided_at),
        "decision_facts": _facts(sor, _measure_words(sor), urls),
        "source_type": SOURCE_ARTICLE_16,
        "automated_detection": AUTOMATED_DETECTION_NO,
        "automated_decision": (
            AUTOMATED_DECISION_FULLY if sor.automated_decision else AUTOMATED_DECISION_NOT_AUTOMATED
        ),
        "territorial_scope": TERRITORIAL_SCOPE,
        "puid": puid_of(sor.pk, target.pk),
    }
    for name, limit in LIMITS.items():
        if name in body and len(body[name]) > limit:
            body[name] = body[name][: limit - 1] + "…"
    return body


_EARLIEST_CONTENT = datetime(2000, 1, 1, tzinfo=UTC)


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


@dataclass(frozen=True)
class Exported:
    statement_id: int
    target_id: int
    body: dict[str, Any]

    @property
    def puid(self) -> str:
        return str(self.body["puid"])


def statements_export(*, since: date | None = None, chunk: int = 500) -> Iterator[Exported]:
    """Every restriction's statement in the database's schema, oldest decision first; those
    decided on or after `since` (UTC) only, when given. Three queries a chunk of statements."""
    restricting = StatementOfReasons.objects.filter(
        measure__in=[Measure.REMOVAL, Measure.PARTIAL, Measure.DISABLING]
    )
    if since is not None:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        restricting = restricting.filter(decided_at__gte=start)
    ordered = restricting.select_related("case").order_by("decided_at", "pk")
    last: tuple[datetime, int] | None = None
    while True:
        page = ordered
        if last is not None:
            page = page.filter(decided_at__gte=last[0]).exclude(decided_at=last[0], pk__lte=last[1])
        sors = list(page[:chunk])
        if not sors:
            return
        wanted = {sor.pk: _restricted(sor) for sor in sors}
        ids = {tid for tids in wanted.values() for tid in tids}
        targets = {
            t.pk: t
            for t in Target.objects.filter(pk__in=ids, content_item__isnull=False).select_related(
                "content_item"
            )
        }
        for sor in sors:
            for tid in wanted[sor.pk]:
                target = targets.get(tid)
                if target is not None:
                    yield Exported(sor.pk, tid, statement_of(sor, target))
        last = (sors[-1].decided_at, sors[-1].pk)


# --- Submission ----------------------------------------------------------------------------------


class SubmitUnavailable(DomainError):
    """The database could not be reached, or answered with a temporary failure: try later."""


@dataclass
class SubmitReport:
    created: int = 0
    existing: int = 0
    skipped: int = 0  # already recorded before this run

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "existing": self.existing, "skipped": self.skipped}


def _post(body: bytes) -> tuple[int, Any]:
    # SOR_SUBMIT_URL is http(s) only: config/settings.py refuses any other scheme.
    request = urllib.request.Request(  # noqa: S310
        settings.SOR_SUBMIT_URL,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {settings.SOR_SUBMIT_TOKEN}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SOR_SUBMIT_TIMEOUT) as answer:  # noqa: S310
            status, raw = answer.status, answer.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read(4 * 1024 * 1024)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed


def _held(answer: Any, pending: Sequence[Exported]) -> set[str]:
    """The puids of `pending` that a 422 answer says the database already holds.

    The multiple endpoint checks every puid of the call against those it holds after validating
    the call, and names the ones it holds in `errors.existing_puids` (its
    PuidNotUniqueMultipleException); the whole call is then refused. A batch never repeats a
    puid (`_send` sends each once), so every puid listed is one the database holds. The
    per-statement form (`errors.statement_N.puid`, a validation message) and the single
    endpoint's (`errors.puid` alone) are recognised too, when a puid not unique is all they say."""
    if not isinstance(answer, dict):
        return set()
    errors = answer.get("errors")
    if not isinstance(errors, dict):
        return set()
    mine = {s.puid for s in pending}
    listed = errors.get("existing_puids")
    if isinstance(listed, list):
        return {str(puid) for puid in listed if str(puid) in mine}
    if len(pending) == 1 and set(errors) == {"puid"}:
        not_unique = any("unique" in str(m) for m in errors["puid"])
        return {pending[0].puid} if not_unique else set()
    found: set[str] = set()
    for key, fields in errors.items():
        match = re.fullmatch(r"statement_(\d+)", str(key))
        if (
            match
            and int(match.group(1)) < len(pending)
            and isinstance(fields, dict)
            and set(fields) == {"puid"}
            and any("unique" in str(message) for message in fields["puid"])
        ):
            found.add(pending[int(match.group(1))].puid)
    return found


def _faults(answer: Any) -> str:
    """What the database said was wrong, field names only (statements hold no personal data,
    but its messages are not ours to log in full)."""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, dict):
        return "no details"
    words = []
    for key, fields in list(errors.items())[:10]:
        names = ", ".join(sorted(fields)) if isinstance(fields, dict) else str(key)
        words.append(f"{key}: {names}" if isinstance(fields, dict) else names)
    return "; ".join(words)


def _record(batch: Sequence[Exported], outcome: str, uuids: dict[str, str]) -> int:
    """Record statements the database holds, each once, and audit the batch."""
    now = clock.now()
    with transaction.atomic():
        rows = SorSubmission.objects.bulk_create(
            [
                SorSubmission(
                    puid=one.puid,
                    statement_id=one.statement_id,
                    target_id=one.target_id,
                    outcome=outcome,
                    database_uuid=uuids.get(one.puid, "")[:64],
                    submitted_at=now,
                )
                for one in batch
            ],
            ignore_conflicts=True,
        )
        audit.append(
            stream="system",
            actor="system:transparency",
            action=f"sor.{outcome}",
            data={"count": len(batch), "first": batch[0].puid if batch else None},
        )
    return len(rows)


def _send(batch: list[Exported], attempts: int, backoff: float) -> tuple[int, int]:
    """Send one batch until the database holds every statement in it; (created, existing)."""
    created = existing = 0
    pending = list({s.puid: s for s in batch}.values())  # each puid once in a call
    tries = 0
    while pending:
        tries += 1
        try:
            status, answer = _post(json.dumps({"statements": [s.body for s in pending]}).encode())
        except (OSError, ValueError) as exc:
            status, answer = 0, {"error": type(exc).__name__}
        if status == 201:  # the documentation: anything else, and nothing was created
            listed = answer.get("statements", []) if isinstance(answer, dict) else []
            uuids = {
                str(s.get("puid")): str(s.get("uuid", ""))
                for s in listed
                if isinstance(s, dict) and s.get("puid")
            }
            _record(pending, SubmissionOutcome.CREATED, uuids)
            return created + len(pending), existing
        if status == 422:
            known = _held(answer, pending)
            if known:
                # The database refused the whole batch for puids it already holds (a run cut off
                # after it had created them): they are recorded as held, the rest sent again.
                held = [s for s in pending if s.puid in known]
                _record(held, SubmissionOutcome.EXISTING, {})
                existing += len(held)
                pending = [s for s in pending if s.puid not in known]
                tries = 0
                continue
            raise DomainError(
                f"the transparency database refused a batch (HTTP 422): {_faults(answer)}",
                code="sor_refused",
            )
        if status in (401, 403):
            raise DomainError(
                f"the transparency database refused our token (HTTP {status}): check "
                "SOR_SUBMIT_TOKEN",
                code="sor_unauthorised",
            )
        if 400 <= status < 500 and status not in (408, 429):
            raise DomainError(
                f"the transparency database refused a batch (HTTP {status})", code="sor_refused"
            )
        if tries >= attempts:
            raise SubmitUnavailable(
                f"the transparency database did not take a batch after {attempts} attempts "
                f"(last: {'HTTP ' + str(status) if status else 'no answer'}); "
                f"{created + existing} of it recorded, run again later",
                code="sor_unavailable",
            )
        time.sleep(backoff * 2 ** (tries - 1))
    return created, existing


def statements_submit(
    *, statements: Iterable[Exported], attempts: int = 3, backoff: float = 0.5
) -> SubmitReport:
    """Send every statement the database does not hold yet, in batches of BATCH.

    A statement already recorded (created, or refused by the database as an existing puid) is
    never sent again, so a run cut off anywhere is safely run again. Batches that were taken are
    recorded before the next is sent. Raises SubmitUnavailable (try later) or DomainError.
    """
    if not settings.SOR_SUBMIT_URL or not settings.SOR_SUBMIT_TOKEN:
        raise DomainError(
            "set SOR_SUBMIT_URL and SOR_SUBMIT_TOKEN to submit statements", code="sor_unset"
        )
    report = SubmitReport()
    batch: list[Exported] = []

    def flush() -> None:
        known = set(
            SorSubmission.objects.filter(puid__in=[s.puid for s in batch]).values_list(
                "puid", flat=True
            )
        )
        report.skipped += len(known)
        fresh = [s for s in batch if s.puid not in known]
        if fresh:
            created, existing = _send(fresh, attempts, backoff)
            report.created += created
            report.existing += existing
        batch.clear()

    for one in statements:
        batch.append(one)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return report
