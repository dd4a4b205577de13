"""Templates of statements of reasons (DSA Art. 17), per legal basis and per kind of decision.

A draft is prefilled with the case's own facts (basis, number of URLs, dates) and the words
that usually fit; the reviewer edits every text on the case page before deciding. Drafts of
refusals hold an `[edit: ...]` marker where only the reviewer can say why, and a statement
that still holds one is refused (`rights.services.decisions.sor_check`), so the template's
placeholder never reaches a requester.

Pure text: no queries beyond the case and the targets handed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from rights.models import Channel, Measure, TakedownRequest, Target
from rights.statements import Basis
from rights.states import TargetState

# The kinds of decision a statement is drafted for.
REMOVAL = "removal"
REFUSAL = "refusal"
PARTIAL = "partial"
RESTORATION = "restoration"
KINDS = (REMOVAL, REFUSAL, PARTIAL, RESTORATION)
# Not a reviewer's: the deadline rule's own decision to disable what nobody decided in time.
FAILSAFE = "failsafe"

# What a reviewer must replace before a statement may be recorded.
EDIT_MARKER = "[edit:"

# The ground of a case that states no basis: our terms (the promise under every copy).
TERMS = "terms"
WHOLE_DOMAIN = "whole_domain"

GROUND_WORDS: dict[str, str] = {
    Basis.COPYRIGHT: "copyright (the owner's exclusive rights in the content)",
    Basis.PRIVACY: "privacy and data protection (GDPR Art. 17, the right to erasure)",
    Basis.DEFAMATION: "defamation (the protection of a person's reputation)",
    Basis.OTHER: "our terms: the owner of the content does not want it republished",
    TERMS: "our terms: the promise under every copy to delete it when its owner asks",
    WHOLE_DOMAIN: "our terms: the owner of a whole domain does not want it republished",
    FAILSAFE: (
        "our terms: content named in a request nobody has decided shortly before its deadline "
        "is disabled until a reviewer decides"
    ),
}

_REASONS: dict[str, dict[str, str]] = {
    Basis.COPYRIGHT: {
        REMOVAL: (
            "The requester {declared} that they own the content, or act for its "
            "owner, and that our republication of it is not authorised. We republish it from "
            "its primary source, and we remove it when its owner asks, so we removed our copy "
            "and will not republish it."
        ),
        REFUSAL: (
            "We could not establish that the requester owns the content or acts for its "
            "owner: [edit: say what was missing or what contradicts the claim]. The content "
            "stays published, with its link to the primary source."
        ),
        PARTIAL: (
            "We removed the URLs whose content the requester showed they own or act for. "
            "The others stay published because [edit: say why, URL by URL]."
        ),
        RESTORATION: (
            "On review, the removal was not justified: [edit: say why, e.g. the requester "
            "did not own the content]. The content is published again, with its link to the "
            "primary source."
        ),
    },
    Basis.PRIVACY: {
        REMOVAL: (
            "The requester {declared} that the content is about them. Weighing "
            "their privacy against the public interest in the report, we found that our "
            "republication should end, so we removed our copy and will not republish it."
        ),
        REFUSAL: (
            "We weighed the requester's privacy against the public interest in the report and "
            "found that the public interest prevails: [edit: say why]. The content stays "
            "published, with its link to the primary source, where a request may also be made."
        ),
        PARTIAL: (
            "We removed the URLs where the requester's privacy outweighs the public interest. "
            "The others stay published because [edit: say why, URL by URL]."
        ),
        RESTORATION: (
            "On review, the public interest in the report outweighs the requester's privacy: "
            "[edit: say why]. The content is published again."
        ),
    },
    Basis.DEFAMATION: {
        REMOVAL: (
            "The requester {declared} that the content makes false claims about "
            "them. We removed our copy and will not republish it; the primary source decides "
            "about its own publication."
        ),
        REFUSAL: (
            "We could not find that the content makes a false statement of fact about the "
            "requester: [edit: say why]. The content stays published, with its link to the "
            "primary source, where a correction may also be asked for."
        ),
        PARTIAL: (
            "We removed the URLs that make the claims the requester contests. The others "
            "stay published because [edit: say why, URL by URL]."
        ),
        RESTORATION: (
            "On review, the content does not make a false statement of fact about the "
            "requester: [edit: say why]. The content is published again."
        ),
    },
    Basis.OTHER: {
        REMOVAL: (
            "The owner of the content does not want us to republish it. We promise under "
            "every copy to delete it when its owner asks, so we removed our copy and will not "
            "republish it."
        ),
        REFUSAL: (
            "We could not establish that the requester owns the content or acts for its "
            "owner: [edit: say what was missing]. The content stays published, with its link "
            "to the primary source."
        ),
        PARTIAL: (
            "We removed the URLs whose content the requester showed they own or act for. "
            "The others stay published because [edit: say why, URL by URL]."
        ),
        RESTORATION: (
            "On review, the removal was not justified: [edit: say why]. The content is "
            "published again."
        ),
    },
}

AUTOMATED_REASONS = (
    " The request came from a source our trust rules recognise for this content (its "
    "outlet's own systems or staff), so it was approved automatically, with no person deciding."
)


FAILSAFE_REASONS = (
    "Nobody had decided this request shortly before its deadline, so, as our terms promise, "
    "access to the content it names was disabled until a reviewer decides. This was done "
    "automatically by our deadline rule, with no person deciding and without an assessment of "
    "the request; the decision that follows has a statement of its own."
)


@dataclass(frozen=True)
class Draft:
    """A statement's texts before the reviewer edits them."""

    ground: str
    facts: str
    reasons: str
    redress: str


def ground_of(case: TakedownRequest) -> str:
    """The legal or contractual ground relied on: the case's basis, or our terms."""
    if case.basis in _REASONS:
        return case.basis
    return WHOLE_DOMAIN if case.whole_domain else TERMS


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "not yet"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def facts_of(case: TakedownRequest, targets: Sequence[Target]) -> str:
    """The facts and circumstances: what was asked, by which door, when, and what we hold."""
    ours = sum(1 for t in targets if t.content_item_id is not None)
    not_found = sum(1 for t in targets if t.state == TargetState.NOT_FOUND)
    basis = Basis(case.basis).label if case.basis in Basis.values else "none stated"
    lines = [
        f"Request {case.reference}, received {_when(case.received_at)} by "
        f"{Channel(case.channel).label.lower()}; basis: {basis}.",
        f"It names {_plural(len(targets), 'URL')}, {ours} of them republished by us"
        + (f" ({not_found} not ours under any spelling)." if not_found else "."),
    ]
    if case.whole_domain:
        lines.append(f"It asks for everything republished from the domain {case.whole_domain}.")
    if case.statements:
        lines.append(
            f"The requester swore {_plural(len(case.statements), 'statement')} "
            f"(wording {case.statements_version})."
        )
    else:
        lines.append("The requester swore no statement.")
    lines.append(
        f"The clock started {_when(case.clock_started_at)}; the deadline is "
        f"{_when(case.deadline_at)}."
    )
    if case.appeal_round:
        lines.append(f"The requester appealed the first decision on {_when(case.appealed_at)}.")
    return " ".join(lines)


def redress_text(case: TakedownRequest, measure: str, decided_at: datetime) -> str:
    """The options for redress, as told to the requester (DSA Art. 17(3)(f))."""
    refused = measure in (Measure.NO_ACTION, Measure.PARTIAL)
    parts: list[str] = []
    if refused and case.appeal_round == 0:
        until = decided_at + timedelta(seconds=settings.APPEAL_WINDOW)
        parts.append(
            "You may appeal this decision on your request's status page (the link in our "
            f"emails) until {until:%Y-%m-%d}, saying why you disagree; someone other than the "
            "first decider reviews it, with a deadline of its own."
        )
    elif refused:
        parts.append("This decision was made on appeal, so it cannot be appealed here again.")
    else:
        parts.append(
            "Anyone affected by this decision, the publisher of the content included, may ask "
            f"us to review it by writing to {settings.TAKEDOWN_MAILBOX}."
        )
    parts.append(
        "You may also take the matter to a certified out-of-court dispute settlement body "
        "(Digital Services Act, Article 21), or to the courts; this decision does not affect "
        "those rights."
    )
    return " ".join(parts)


MEASURE_OF_KIND: dict[str, str] = {
    REMOVAL: Measure.REMOVAL,
    REFUSAL: Measure.NO_ACTION,
    PARTIAL: Measure.PARTIAL,
    RESTORATION: Measure.RESTORATION,
    FAILSAFE: Measure.DISABLING,
}


def draft(
    case: TakedownRequest,
    kind: str,
    *,
    targets: Sequence[Target],
    now: datetime,
    automated: bool = False,
) -> Draft:
    """The statement a decision of `kind` on `case` starts from."""
    if kind == FAILSAFE:
        return Draft(
            ground=FAILSAFE,
            facts=facts_of(case, targets),
            reasons=FAILSAFE_REASONS,
            redress=redress_text(case, Measure.DISABLING, now),
        )
    ground = ground_of(case)
    templates = _REASONS.get(ground, _REASONS[Basis.OTHER])
    # What the requester did declare: under oath only where they swore the basis's statements
    # (the web form and the API require them; mail and staff entry record none).
    declared = "declared under oath" if case.statements else "told us, without a sworn statement,"
    reasons = templates[kind].replace("{declared}", declared)
    reasons += AUTOMATED_REASONS if automated else ""
    return Draft(
        ground=ground,
        facts=facts_of(case, targets),
        reasons=reasons,
        redress=redress_text(case, MEASURE_OF_KIND[kind], now),
    )
