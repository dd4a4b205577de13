"""Reads for the case page: everything a reviewer needs to decide one case, in a fixed number
of queries however many URLs the case names, earlier cases its requester has, or events its
trail holds."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.urls import reverse

from rights import audit
from rights.models import (
    AuditEvent,
    AuditStream,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.statements import STATEMENTS
from rights.states import OPEN_TARGET_STATES, CaseState

# Earlier cases listed on the page; the counts by outcome cover all of them.
HISTORY_SHOWN = 10


@dataclass(frozen=True)
class Sworn:
    key: str
    wording: str


@dataclass(frozen=True)
class TargetRow:
    target: Target
    our_url: str | None  # our copy, /a/<slug>/
    source_url: str | None  # the primary source
    content_status: str | None
    open: bool


@dataclass(frozen=True)
class TimelineRow:
    event: AuditEvent
    actor: str  # the staff member's username where the actor is staff


@dataclass(frozen=True)
class History:
    earlier: list[TakedownRequest]
    total: int
    by_outcome: list[tuple[str, int]]


@dataclass(frozen=True)
class CasePage:
    case: TakedownRequest
    sworn: list[Sworn]
    targets: list[TargetRow]
    history: History
    timeline: list[TimelineRow]
    chain_problem: str | None
    statements_of_reasons: list[StatementOfReasons]

    @property
    def open_targets(self) -> list[TargetRow]:
        return [row for row in self.targets if row.open]

    @property
    def chain_verified(self) -> bool:
        return self.chain_problem is None


def _target_rows(case: TakedownRequest) -> list[TargetRow]:
    rows = []
    for target in case.targets.select_related("content_item").order_by("pk"):
        item = target.content_item
        rows.append(
            TargetRow(
                target=target,
                our_url=reverse("rights:content", args=[item.slug]) if item else None,
                source_url=item.source_url if item else None,
                content_status=item.get_status_display() if item else None,
                open=target.state in OPEN_TARGET_STATES,
            )
        )
    return rows


def _history(case: TakedownRequest) -> History:
    others = TakedownRequest.objects.filter(requester_id=case.requester_id).exclude(pk=case.pk)
    counts = list(others.order_by().values("state").annotate(n=Count("pk")).order_by("state"))
    earlier = list(others.order_by("-received_at", "-pk")[:HISTORY_SHOWN])
    by_outcome = [(CaseState(row["state"]).label, int(row["n"])) for row in counts]
    return History(earlier=earlier, total=sum(n for _, n in by_outcome), by_outcome=by_outcome)


def _timeline(case: TakedownRequest) -> tuple[list[TimelineRow], str | None]:
    stream = case.audit_stream()
    events = list(AuditEvent.objects.filter(stream=stream).order_by("seq"))
    head = AuditStream.objects.filter(name=stream).values_list("seq", "head_hash").first()
    problem = None
    try:
        audit.verify_stream(stream, events, (int(head[0]), str(head[1])) if head else None)
    except audit.AuditBroken as exc:
        problem = str(exc)
    staff_ids = {
        int(e.actor.removeprefix("staff:"))
        for e in events
        if e.actor.startswith("staff:") and e.actor.removeprefix("staff:").isdigit()
    }
    names = dict(get_user_model().objects.filter(pk__in=staff_ids).values_list("pk", "username"))
    rows = []
    for event in events:
        actor = event.actor
        if actor.startswith("staff:") and actor.removeprefix("staff:").isdigit():
            actor = f"{names.get(int(actor.removeprefix('staff:')), actor)} (staff)"
        rows.append(TimelineRow(event=event, actor=actor))
    return rows, problem


def case_page(case_id: int) -> CasePage | None:
    """The case page's reads, or None when there is no such case."""
    case = (
        TakedownRequest.objects.select_related(
            "requester", "outlet", "decided_by", "first_decided_by", "assignee"
        )
        .filter(pk=case_id)
        .first()
    )
    if case is None:
        return None
    timeline, problem = _timeline(case)
    return CasePage(
        case=case,
        sworn=[Sworn(key, STATEMENTS.get(key, "(wording unknown)")) for key in case.statements],
        targets=_target_rows(case),
        history=_history(case),
        timeline=timeline,
        chain_problem=problem,
        statements_of_reasons=list(
            StatementOfReasons.objects.filter(case=case)
            .select_related("decided_by")
            .order_by("round", "decided_at", "pk")
        ),
    )
