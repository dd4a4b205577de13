"""One place that presents a case: what a requester, a partner or staff may see of it.

The CLI, the requester's status page and the partner API all show a case through `case_present`,
so that the state in plain words, the deadline, each URL's state and the decision read the same
everywhere, and a field meant for staff (trust, the requester's identity, the channel's internals)
can only reach staff. Who is asking is a `Viewer`; the selectors that find cases take the same
viewer, so a partner or a requester can only ever be shown their own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rights import clock, redress
from rights.models import Outlet, Requester, TakedownRequest, Target
from rights.states import CaseState, TargetState


class ViewerKind(StrEnum):
    STAFF = "staff"
    PARTNER = "partner"
    REQUESTER = "requester"


@dataclass(frozen=True)
class Viewer:
    """Who is asking. A partner sees its outlet's cases, a requester their own, staff all."""

    kind: ViewerKind
    outlet_id: int | None = None
    requester_id: int | None = None

    @classmethod
    def staff(cls) -> Viewer:
        return cls(ViewerKind.STAFF)

    @classmethod
    def partner(cls, outlet: Outlet) -> Viewer:
        return cls(ViewerKind.PARTNER, outlet_id=outlet.pk)

    @classmethod
    def requester(cls, requester: Requester) -> Viewer:
        return cls(ViewerKind.REQUESTER, requester_id=requester.pk)


# The state of a case, in plain words, for the person who asked.
CASE_WORDS: dict[str, str] = {
    CaseState.AWAITING_CONFIRMATION: "Waiting for you to confirm your email address",
    CaseState.OPEN: "Received; the clock is running",
    CaseState.IN_REVIEW: "Being reviewed by our team",
    CaseState.APPROVED: "Approved; the content is being removed",
    CaseState.REMOVING: "Approved; the content is being removed",
    CaseState.REMOVED: "Done: the content has been removed and will not be republished",
    CaseState.REJECTED: "Decided: not granted (see the reasons)",
    CaseState.WITHDRAWN: "Withdrawn",
    CaseState.EXPIRED: "Expired: the email address was never confirmed",
    CaseState.DISABLED_PENDING_REVIEW: (
        "The content has been taken offline while our team finishes the review"
    ),
    CaseState.APPEALED: "Appeal received; being reviewed again",
    CaseState.RESTORED: "Closed: the content was restored after review",
    CaseState.NOT_FOUND: "Closed: we do not publish what the request names",
}
# A case closed removed, some of whose URLs were refused (decided URL by URL).
PARTLY_REMOVED_WORDS = (
    "Decided: some of the content has been removed; the rest was not (see the reasons)"
)
# The state of one URL, in plain words.
TARGET_WORDS: dict[str, str] = {
    TargetState.PENDING: "Waiting for a decision",
    TargetState.REMOVED: "Removed, and will not be republished",
    TargetState.DISABLED: "Taken offline pending review",
    TargetState.REJECTED: "Not removed (see the reasons)",
    TargetState.NOT_FOUND: "Not on our site under any spelling: nothing to remove",
    TargetState.RESTORED: "Restored after review",
    TargetState.WITHDRAWN: "Withdrawn: nothing more will be done",
}


# A pending URL of a case decided for removal is on its way out, not waiting for a decision.
BEING_REMOVED = frozenset({CaseState.APPROVED, CaseState.REMOVING})
REMOVING_WORDS = "Approved: being removed now"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


@dataclass(frozen=True)
class TargetView:
    url: str
    state: str
    meaning: str
    outcome_at: str | None
    # Our copy's slug: for staff and partners, who know the catalogue.
    content_item: str | None = None


@dataclass(frozen=True)
class DecisionView:
    decided_at: str | None
    reasons: str


@dataclass(frozen=True)
class CaseView:
    reference: str
    state: str
    meaning: str
    basis: str | None
    statements: list[str]
    whole_domain: str | None
    received_at: str | None
    clock_started_at: str | None
    deadline_at: str | None
    closed_at: str | None
    targets: list[TargetView]
    decision: DecisionView | None
    # What the requester may still do: withdraw while it is open, appeal a refusal until then.
    may_withdraw: bool
    appeal_until: str | None
    appealed_at: str | None
    # Staff only.
    staff: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        extra = body.pop("staff")
        body.update(extra)
        return body


def _target(target: Target, case_state: str, viewer: Viewer) -> TargetView:
    shows_catalogue = viewer.kind != ViewerKind.REQUESTER
    removing = target.state == TargetState.PENDING and case_state in BEING_REMOVED
    return TargetView(
        url=target.url,
        state=target.state,
        meaning=REMOVING_WORDS if removing else TARGET_WORDS[target.state],
        outcome_at=iso(target.outcome_at),
        content_item=(
            target.content_item.slug
            if shows_catalogue and target.content_item is not None
            else None
        ),
    )


def case_present(
    case: TakedownRequest,
    *,
    targets: list[Target],
    viewer: Viewer,
    now: datetime | None = None,
) -> CaseView:
    """The case as `viewer` may see it. `targets` are the case's, with their items loaded;
    `now` (the service's clock) may be read once for a whole page of cases."""
    if viewer.kind == ViewerKind.PARTNER and case.outlet_id != viewer.outlet_id:
        raise PermissionError("a partner is shown its own outlet's cases only")
    if viewer.kind == ViewerKind.REQUESTER and case.requester_id != viewer.requester_id:
        raise PermissionError("a requester is shown their own cases only")
    # Reasons are written with a decision that refused or reversed something; during an appeal
    # they are the reasons of the decision appealed.
    decided = bool(case.decision_reasons)
    staff: dict[str, Any] = {}
    if viewer.kind == ViewerKind.STAFF:
        staff = {
            "channel": case.channel,
            "trusted": case.trusted,
            "requester": f"requester:{case.requester_id}",
            # The partner outlet whose API key filed the case (none for the other doors).
            "partner": case.outlet.slug if case.outlet is not None else None,
        }
    return CaseView(
        reference=case.reference,
        state=case.state,
        meaning=(
            PARTLY_REMOVED_WORDS
            if case.state == CaseState.REMOVED
            and any(t.state == TargetState.REJECTED for t in targets)
            else CASE_WORDS[case.state]
        ),
        basis=case.basis or None,
        statements=list(case.statements),
        whole_domain=case.whole_domain or None,
        received_at=iso(case.received_at),
        clock_started_at=iso(case.clock_started_at),
        deadline_at=iso(case.deadline_at),
        closed_at=iso(case.closed_at),
        targets=[_target(t, case.state, viewer) for t in targets],
        decision=(
            DecisionView(decided_at=iso(case.decided_at), reasons=case.decision_reasons)
            if decided
            else None
        ),
        may_withdraw=redress.may_withdraw(case),
        appeal_until=iso(redress.appeal_until(case, targets, now or clock.now())),
        appealed_at=iso(case.appealed_at),
        staff=staff,
    )
