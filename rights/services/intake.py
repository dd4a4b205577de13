"""Intake: the one way a case comes into being, shared by every door.

A door builds a `Submission` and calls `takedown_submit`, which checks it (`intake_checks`),
resolves its URLs and decides trust (`trust`), then writes the requester, the case, its targets
and the audit events in one transaction, starts the clock (or waits for the web requester to
confirm their address), and routes the case: trusted requests are approved at once, the rest go
to the review queue, and a request naming nothing of ours is told so and closed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from rights import audit, clock, deadlines, sor_templates
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, Channel, ContentItem, Outlet, Requester, TakedownRequest, Target
from rights.normalise import normalise_url
from rights.services.decisions import SorRecord, sor_draft, sor_record_many
from rights.services.intake_checks import CleanRequest, InvalidRequest, Submission, check_takedown
from rights.services.notifications import notify, notify_many
from rights.services.scheduling import case_schedule_expiry, cases_kick
from rights.services.trust import (
    Trust,
    decide_trust,
    items_of_domain,
    resolve_url_groups,
    verified_domains,
)
from rights.statements import STATEMENTS_VERSION
from rights.states import CLOSED_CASE_STATES, OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import Move, transition, transitions

__all__ = [
    "IntakeResult",
    "InvalidRequest",
    "Submission",
    "takedown_confirm",
    "takedown_submit",
    "takedowns_submit",
]

REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read out over a phone
REFERENCE_PREFIX = "TD-"
REFERENCE_LENGTH = 7
# Doors anyone can knock on: they never reveal whether an address is known or suspended.
PUBLIC_CHANNELS = frozenset({Channel.WEB, Channel.EMAIL})
SUSPENDED_REASONS = (
    "Requests from this address are suspended after repeated manifestly unfounded requests. "
    "If you believe this is wrong, write to the takedown mailbox."
)


@dataclass
class IntakeResult:
    case: TakedownRequest
    created: bool
    # (normalised URL, reference of the requester's open case that already holds it); only
    # ever for a verified sender.
    merged: list[tuple[str, str]] = field(default_factory=list)


def _new_reference() -> str:
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{REFERENCE_PREFIX}{body}"


def _channel_actor(channel: str, requester: Requester, outlet: Outlet | None, actor: str) -> str:
    if actor:
        return actor
    if channel == Channel.API and outlet is not None:
        return f"partner:{outlet.slug}"
    return requester.actor


def _check_not_suspended(clean: CleanRequest, requester: Requester) -> None:
    """At a door other than the public ones, a suspended requester's request is refused (the
    public doors answer it as anyone's, and only the email says why)."""
    if requester.suspended_at is not None and clean.channel not in PUBLIC_CHANNELS:
        raise DomainError(
            "requests from this address are suspended after repeated unfounded requests",
            field="email",
            code="requester_suspended",
        )


def _requester_contact(
    clean: CleanRequest, requester: Requester, *, verified: bool, now: datetime
) -> Requester:
    """The locked requester, with the name and organisation this submission gives. Only a
    verified submission may change a verified requester's name or organisation: anyone can
    type someone else's address into a form."""
    changed = []
    contact = (clean.name, clean.organisation)
    if (verified or requester.email_verified_at is None) and (
        requester.name,
        requester.organisation,
    ) != contact:
        requester.name, requester.organisation = contact
        changed += ["name", "organisation"]
    if verified and requester.email_verified_at is None:
        requester.email_verified_at = now
        changed.append("email_verified_at")
    if changed:
        requester.save(update_fields=changed)
    return requester


def _lock_requesters(emails: Iterable[str]) -> dict[str, Requester]:
    """The requesters of these addresses that exist, locked in address order: intake
    serialises per requester, so two identical submissions cannot both open a case, and two
    batches naming the same requesters never deadlock. FOR NO KEY UPDATE: the row's key never
    changes, so the foreign-key checks of other transactions writing rows that point at this
    requester (FOR KEY SHARE) do not wait on it, nor deadlock with it."""
    return {
        requester.email: requester
        for requester in Requester.objects.select_for_update(no_key=True)
        .filter(email__in=sorted(set(emails)))
        .order_by("email")
    }


def _already_open(
    requester: Requester, resolved: dict[str, ContentItem | None], *, clock_starts: bool
) -> dict[str, str]:
    """URLs (or their items) already held by an open target of the requester's open cases.

    A request whose clock starts at receipt is never merged into a case still awaiting
    confirmation: that case has no clock, and may never get one.
    """
    item_ids = {item.pk: url for url, item in resolved.items() if item is not None}
    not_holding = set(CLOSED_CASE_STATES)
    if clock_starts:
        not_holding.add(CaseState.AWAITING_CONFIRMATION)
    held = Target.objects.filter(
        case__requester=requester,
        state__in=OPEN_TARGET_STATES,
    ).exclude(case__state__in=not_holding)
    held = held.filter(Q(url__in=list(resolved)) | Q(content_item_id__in=list(item_ids)))
    merged: dict[str, str] = {}
    for url, item_id, reference in held.values_list("url", "content_item_id", "case__reference"):
        if url in resolved:
            merged.setdefault(url, reference)
        if item_id in item_ids:
            merged.setdefault(item_ids[item_id], reference)
    return merged


@dataclass(frozen=True)
class _Routing:
    """A case whose clock has just started, and what its routing needs to know."""

    case: TakedownRequest
    outlet: Outlet | None
    email_verified: bool


def _route(routings: Sequence[_Routing]) -> list[TakedownRequest]:
    """Cases whose clock has started go to approval (trusted) or to the review queue; one that
    names nothing of ours, under any spelling, is told so and closed. Constant queries for any
    number of cases (the routed cases, in order)."""
    if not routings:
        return []
    held: dict[int, list[Target]] = {}
    case_ids = [r.case.pk for r in routings]
    for target in (
        Target.objects.filter(case_id__in=case_ids).select_related("content_item").order_by("pk")
    ):
        held.setdefault(target.case_id, []).append(target)
    items_of = {
        r.case.pk: [t.content_item for t in held.get(r.case.pk, []) if t.content_item is not None]
        for r in routings
    }
    domains = verified_domains(
        {item.outlet_id for items in items_of.values() for item in items if item.outlet_id}
    )
    moves: list[Move[TakedownRequest]] = []
    trusted: dict[int, Trust] = {}
    now = clock.now()
    for routing in routings:
        case, items = routing.case, items_of[routing.case.pk]
        if not items and not case.whole_domain:
            data: dict[str, object] = {"not_found": len(held.get(case.pk, []))}
            moves.append(Move(case, CaseState.NOT_FOUND, actor="system:intake", data=data))
            continue
        trust = decide_trust(
            items=items,
            outlet=routing.outlet,
            email=case.requester.email,
            email_verified=routing.email_verified,
            whole_domain=case.whole_domain,
            domains=domains,
        )
        if trust is None:
            moves.append(Move(case, CaseState.IN_REVIEW, actor="system:intake"))
            continue
        trusted[case.pk] = trust
        moves.append(
            Move(
                case,
                CaseState.APPROVED,
                actor="system:trust",
                data=trust.as_data(),
                update={"trusted": True, "decided_at": now},
            )
        )
    routed = transitions(moves)
    # A decision by rule, with no person deciding: its statement of reasons says so.
    sor_record_many(
        [
            SorRecord(
                case=case,
                scope={
                    t.pk: TargetState.REMOVED if t.state in OPEN_TARGET_STATES else t.state
                    for t in held.get(case.pk, [])
                },
                statement=sor_draft(
                    case,
                    sor_templates.REMOVAL,
                    now=now,
                    targets=held.get(case.pk, []),
                    automated=True,
                ),
                decided_at=now,
                user_id=None,
                actor="system:trust",
                automated_decision=True,
                whole_domain_removal=bool(case.whole_domain),
            )
            for case in routed
            if case.pk in trusted
        ]
    )
    not_found = [case for case in routed if case.state == CaseState.NOT_FOUND]
    running = [case for case in routed if case.state != CaseState.NOT_FOUND]
    notify_many(cases=not_found, kind="not_found", audience=Audience.REQUESTER)
    # The clock is running: the requester hears so, and the deadline engine takes over.
    notify_many(cases=running, kind="received", audience=Audience.REQUESTER)
    cases_kick(running)
    return routed


def _clock_fields(now: datetime) -> dict[str, object]:
    length = settings.TAKEDOWN_DEADLINE
    return {
        "clock_started_at": now,
        "deadline_seconds": length,
        "deadline_at": deadlines.deadline_at(now, length),
    }


def _source_key(clean: CleanRequest, outlet: Outlet | None) -> str | None:
    """Channel, the door's scope and its id: partners each have their own key space."""
    if not clean.external_id:
        return None
    scope = outlet.slug if clean.channel == Channel.API and outlet is not None else ""
    return f"{clean.channel}:{scope}:{clean.external_id}"


def _earlier_submissions(keys: Sequence[str | None]) -> dict[str, TakedownRequest]:
    """The cases earlier submissions with these source keys made (one query)."""
    wanted = {key for key in keys if key is not None}
    if not wanted:
        return {}
    return {
        case.source_key: case
        for case in TakedownRequest.objects.filter(source_key__in=wanted)
        if case.source_key is not None
    }


def _retry_of(earlier: TakedownRequest | None, digest: str) -> TakedownRequest | None:
    """The case a retry of this submission already made; refused if the id was used for
    another request (saying nothing of that request)."""
    if earlier is not None and earlier.request_digest != digest:
        raise IdempotencyConflict()
    return earlier


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__(
            "this submission id was already used for a different request; send a new id "
            "for a new request, or repeat the first request exactly to retry it",
            field="external_id",
        )


def takedown_submit(*, submission: Submission) -> IntakeResult:
    """Take a request in from any door. Raises `DomainError`; on error nothing is written.

    A retry (the same channel, scope and external id, with the same request) returns the first
    case, `created` False. An unverified submission never merges into, appends to or reveals
    another case, and on a public door a suspended requester is answered as anyone else is:
    the case is refused at once and only the email to that address says why.
    """
    outcome = takedowns_submit([submission])[0]
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


@dataclass(frozen=True)
class _Checked:
    """A submission that passed the checks, with what intake works out before writing."""

    index: int
    submission: Submission
    clean: CleanRequest
    source_key: str | None
    digest: str

    @classmethod
    def of(cls, index: int, submission: Submission) -> _Checked:
        clean = check_takedown(submission)
        outlet = submission.outlet
        if clean.channel == Channel.API and outlet is None:
            raise DomainError(
                "an API request needs the partner outlet it came from", field="outlet"
            )
        return cls(
            index=index,
            submission=submission,
            clean=clean,
            source_key=_source_key(clean, outlet),
            digest=clean.digest(outlet),
        )

    @property
    def email_verified(self) -> bool:
        return self.submission.email_verified

    def started(self, now: datetime) -> datetime:
        """When the clock starts: now, or when the door received it if that was earlier."""
        received = self.submission.received_at
        return received if received is not None and received < now else now


@dataclass
class _Plan:
    """A new case to write: everything decided, nothing written yet."""

    checked: _Checked
    requester: Requester
    now: datetime
    awaiting: bool
    fresh: dict[str, ContentItem | None]
    merged: dict[str, str]
    case: TakedownRequest | None = None
    targets: list[Target] = field(default_factory=list)


Outcome = IntakeResult | DomainError


def takedowns_submit(submissions: Sequence[Submission]) -> list[Outcome]:
    """Take many requests in at once (a partner's batch): for each, in order, its
    `IntakeResult` or the `DomainError` that refused it. Each is handled on its own: one that is
    refused writes nothing and sinks nothing. The rest are written in one transaction, in a
    constant number of queries for all their new cases (a few more per requester).

    Submissions of one batch are not merged with each other; two with the same external id
    are one case, as a retry is.
    """
    outcomes: list[Outcome | None] = [None] * len(submissions)
    checked: list[_Checked] = []
    for index, submission in enumerate(submissions):
        try:
            checked.append(_Checked.of(index, submission))
        except DomainError as error:
            outcomes[index] = error
    if checked:
        with transaction.atomic():
            _take_in(checked, outcomes)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _take_in(checked: list[_Checked], outcomes: list[Outcome | None]) -> None:
    """Plan each submission (its requester locked), then write the new cases together.

    Every check that can refuse an item is made before anything is written for it, so one
    refused writes nothing (not even its requester) and the others go on."""
    now = clock.now()
    first: list[_Checked] = []
    again: list[_Checked] = []
    keys: set[str] = set()
    for item in checked:
        # The same id twice in one batch: the second is the first's retry, taken in after it.
        (again if item.source_key in keys else first).append(item)
        if item.source_key is not None:
            keys.add(item.source_key)
    requesters = _lock_requesters(item.clean.email for item in first)
    # Read after the locks: a retry that waited on its first copy's requester sees its case.
    earlier = _earlier_submissions([item.source_key for item in first])
    going: list[tuple[_Checked, list[ContentItem]]] = []
    for item in first:
        try:
            domain_items = _checked_item(item, earlier, requesters.get(item.clean.email))
        except (DomainError, _Retry) as exc:
            outcomes[item.index] = _settled(item, exc)
            continue
        going.append((item, domain_items))
    # New requesters, made in address order. One that a concurrent first copy of a submission
    # made meanwhile may mean that copy's case is there now: those items are checked again.
    late: set[str] = set()
    made: set[int] = set()
    for item, _ in sorted(going, key=lambda pair: pair[0].clean.email):
        email = item.clean.email
        if email in requesters:
            continue
        found, created = Requester.objects.get_or_create(
            email=email, defaults={"name": item.clean.name, "organisation": item.clean.organisation}
        )
        requesters[email] = Requester.objects.select_for_update(no_key=True).get(pk=found.pk)
        if created:
            made.add(found.pk)
        else:
            late.add(email)
    if late:
        earlier.update(
            _earlier_submissions([i.source_key for i, _ in going if i.clean.email in late])
        )
    resolved = resolve_url_groups([item.clean.urls for item, _ in going])
    plans: list[_Plan] = []
    for (item, domain_items), urls in zip(going, resolved, strict=True):
        requester = requesters[item.clean.email]
        try:
            if item.clean.email in late:
                _checked_item(item, earlier, requester)
            plan = _plan(item, requester, urls, domain_items, now=item.started(now))
        except (DomainError, _Retry, _SourceTaken) as exc:
            outcomes[item.index] = _settled(item, exc)
            continue
        if isinstance(plan, IntakeResult):
            outcomes[item.index] = plan
            _requester_contact(
                item.clean, requester, verified=item.email_verified, now=item.started(now)
            )
        else:
            plans.append(plan)
    for plan in _open_cases(plans, outcomes):
        assert plan.case is not None
        outcomes[plan.checked.index] = IntakeResult(
            case=plan.case, created=True, merged=sorted(plan.merged.items())
        )
        # The contact's name as this submission gives it, once its case is written.
        _requester_contact(
            plan.checked.clean, plan.requester, verified=plan.checked.email_verified, now=plan.now
        )
    if made and any(isinstance(outcome, DomainError) for outcome in outcomes):
        # A requester made for items that were all refused late (their id was taken by a
        # concurrent first copy of another request) is not left behind.
        held = TakedownRequest.objects.filter(requester_id__in=made).values("requester_id")
        Requester.objects.filter(pk__in=made).exclude(pk__in=held).delete()
    if again:
        _take_in(again, outcomes)


def _settled(item: _Checked, exc: Exception) -> Outcome:
    """The outcome of an item its checks or its plan settled: refused, or a retry's case."""
    if isinstance(exc, _Retry):
        return IntakeResult(case=exc.case, created=False)
    if isinstance(exc, _SourceTaken):
        return _taken(item)
    assert isinstance(exc, DomainError)
    return exc


class _Retry(Exception):
    """The submission was taken in before: its case is the answer."""

    def __init__(self, case: TakedownRequest) -> None:
        super().__init__(case.reference)
        self.case = case


def _checked_item(
    item: _Checked, earlier: dict[str, TakedownRequest], requester: Requester | None
) -> list[ContentItem]:
    """The checks that refuse an item, in order, before anything is written for it: a retry
    (`_Retry`), an id used for another request, a whole domain that cannot be asked for, a
    suspended requester at a door that refuses them. Every check before the suspension is
    made, so that a public door refuses a suspended address's request exactly when it would
    refuse anyone's. The articles of a whole-domain request."""
    retry = _retry_of(earlier.get(item.source_key or ""), item.digest)
    if retry is not None:
        raise _Retry(retry)
    domain_items = _domain_items(item.clean)
    if requester is not None:
        _check_not_suspended(item.clean, requester)
    return domain_items


def _domain_items(clean: CleanRequest) -> list[ContentItem]:
    """The articles a whole-domain request covers, or `InvalidRequest` saying why it cannot."""
    if not clean.whole_domain:
        return []
    items = items_of_domain(clean.whole_domain)
    if not items:
        raise InvalidRequest(
            {"whole_domain": f"nothing republished here comes from {clean.whole_domain}"}
        )
    if len(items) > settings.TAKEDOWN_MAX_DOMAIN_ITEMS:
        raise InvalidRequest(
            {
                "whole_domain": (
                    f"{clean.whole_domain} covers {len(items):,} articles; at most "
                    f"{settings.TAKEDOWN_MAX_DOMAIN_ITEMS:,} are accepted in one request (name a "
                    "narrower domain, or write to the takedown mailbox)"
                )
            }
        )
    return items


def _plan(
    item: _Checked,
    requester: Requester,
    resolved: dict[str, ContentItem | None],
    domain_items: list[ContentItem],
    *,
    now: datetime,
) -> _Plan | IntakeResult:
    """What to write for one submission, or its result when it opens no new case (a
    suspended requester's refusal, a repeat of open cases). Refuses nothing: the checks that
    refuse have been made."""
    clean, submission = item.clean, item.submission
    if requester.suspended_at is not None:
        return IntakeResult(case=_refuse_suspended(item, requester, now), created=True)
    resolved = dict(resolved)
    if domain_items:
        known = {found.pk for found in resolved.values() if found is not None}
        for domain_item in domain_items:
            if domain_item.pk not in known:
                resolved.setdefault(normalise_url(domain_item.source_url), domain_item)
                known.add(domain_item.pk)
    # Two URLs for one article (our copy and its source) make one target.
    unique: dict[str, ContentItem | None] = {}
    claimed: set[int] = set()
    for url, found in resolved.items():
        if found is not None and found.pk in claimed:
            continue
        unique[url] = found
        if found is not None:
            claimed.add(found.pk)
    verified = submission.email_verified
    awaiting = clean.channel == Channel.WEB and not verified
    # Only a verified sender's request is folded into their open cases (and told their
    # references): anyone can type someone else's address. A whole-domain request is never
    # folded in: even when earlier cases hold every article there today, only this case
    # closes with the rule that covers tomorrow's.
    merged = (
        _already_open(requester, unique, clock_starts=not awaiting)
        if verified and not clean.whole_domain
        else {}
    )
    fresh = {url: found for url, found in unique.items() if url not in merged}
    if not fresh:
        # Requester, then case, then its stream: the order takedown_confirm takes them in.
        held = TakedownRequest.objects.get(reference=next(iter(merged.values())))
        case = case_lock(held.pk)
        audit.append(
            stream=case.audit_stream(),
            actor=_channel_actor(clean.channel, requester, submission.outlet, submission.actor),
            action="case.repeat_received",
            data={"channel": clean.channel, "urls": len(merged)},
        )
        return IntakeResult(case=case, created=False, merged=sorted(merged.items()))
    return _Plan(
        checked=item, requester=requester, now=now, awaiting=awaiting, fresh=fresh, merged=merged
    )


def _open_cases(plans: list[_Plan], outcomes: list[Outcome | None]) -> list[_Plan]:
    """Write the planned cases, their targets and events, and route them; the plans whose case
    was written (another's may turn out to be a retry after all: its outcome is set)."""
    opened = _create_cases(plans, outcomes)
    if not opened:
        return []
    made = Target.objects.bulk_create(
        Target(
            case=plan.case,
            url=url,
            content_item=found,
            state=TargetState.PENDING if found is not None else TargetState.NOT_FOUND,
            outcome_at=None if found is not None else plan.now,
        )
        for plan in opened
        for url, found in plan.fresh.items()
    )
    position = 0
    for plan in opened:
        plan.targets = made[position : position + len(plan.fresh)]
        position += len(plan.fresh)
    audit.append_many([_received(plan) for plan in opened])
    # The clock waits for the address to be proved: the mail holds the confirmation link.
    awaiting = [plan.case for plan in opened if plan.awaiting and plan.case is not None]
    notify_many(cases=awaiting, kind="confirm", audience=Audience.REQUESTER)
    for case in awaiting:
        case_schedule_expiry(case)
    routed = iter(
        _route(
            [
                _Routing(plan.case, plan.checked.submission.outlet, plan.checked.email_verified)
                for plan in opened
                if not plan.awaiting and plan.case is not None
            ]
        )
    )
    for plan in opened:
        if not plan.awaiting:
            plan.case = next(routed)
    return opened


def _received(plan: _Plan) -> audit.Entry:
    """The case's first event: how it came in, and what it names."""
    case, clean = plan.case, plan.checked.clean
    assert case is not None
    return _received_entry(
        case,
        clean,
        plan.requester,
        plan.checked.submission,
        targets=plan.targets,
        merged=plan.merged,
    )


def _received_entry(
    case: TakedownRequest,
    clean: CleanRequest,
    requester: Requester,
    submission: Submission,
    *,
    targets: list[Target],
    merged: dict[str, str],
) -> audit.Entry:
    outlet = submission.outlet
    return audit.Entry(
        stream=case.audit_stream(),
        actor=_channel_actor(clean.channel, requester, outlet, submission.actor),
        action="case.received",
        data={
            "id": case.pk,
            "channel": clean.channel,
            "requester": requester.actor,
            "outlet": outlet.slug if outlet is not None else None,
            "basis": clean.basis or None,
            "statements": list(clean.statements),
            "statements_version": case.statements_version or None,
            "sworn": bool(clean.statements),
            "explanation_digest": audit.text_digest(clean.explanation),
            "whole_domain": clean.whole_domain or None,
            "state": case.state,
            "deadline_seconds": case.deadline_seconds,
            "deadline_at": audit.format_time(case.deadline_at) if case.deadline_at else None,
            # Items by id only: an article's URL can itself name a person.
            "targets": [[t.pk, t.content_item_id, t.state] for t in targets],
            "merged_into": sorted(set(merged.values())),
        },
    )


def _refuse_suspended(item: _Checked, requester: Requester, now: datetime) -> TakedownRequest:
    """A suspended requester at a public door: the case is recorded and refused at once, and
    only the email to that address says why (the door shows what it shows everyone)."""
    case = _create_case(item, requester, state=CaseState.OPEN, now=now, extra={})
    received = _received_entry(case, item.clean, requester, item.submission, targets=[], merged={})
    audit.append_many([replace(received, actor=requester.actor)])
    case = transition(
        case,
        CaseState.REJECTED,
        actor="system:intake",
        data={"refused": "requester_suspended"},
        update={"decided_at": now, "decision_reasons": SUSPENDED_REASONS},
    )
    notify(case=case, kind="suspended", audience=Audience.REQUESTER)
    return case


def _new_case(
    item: _Checked, requester: Requester, *, state: str, now: datetime, extra: dict[str, object]
) -> TakedownRequest:
    clean = item.clean
    return TakedownRequest(
        reference=_new_reference(),
        channel=clean.channel,
        source_key=item.source_key,
        request_digest=item.digest,
        requester=requester,
        outlet=item.submission.outlet,
        basis=clean.basis,
        explanation=clean.explanation,
        statements=list(clean.statements),
        statements_version=STATEMENTS_VERSION if clean.statements else "",
        whole_domain=clean.whole_domain,
        state=state,
        received_at=now,
        **extra,
    )


def _opening(plan: _Plan) -> dict[str, Any]:
    """How a planned case starts: waiting for its requester's confirmation, or with its clock
    running."""
    if plan.awaiting:
        return {
            "state": CaseState.AWAITING_CONFIRMATION,
            "extra": {"confirm_by": plan.now + timedelta(seconds=settings.CONFIRMATION_WINDOW)},
        }
    return {"state": CaseState.OPEN, "extra": _clock_fields(plan.now)}


def _create_cases(plans: list[_Plan], outcomes: list[Outcome | None]) -> list[_Plan]:
    """Insert the plans' cases, all in one statement; should one collide (a concurrent first
    submission with the same id committed meanwhile, or, about one in 10^10, a reference drawn
    twice), one at a time, each collision handled as it must be. The plans whose case was
    written; the others' outcomes are set."""
    if not plans:
        return []
    cases = [_new_case(p.checked, p.requester, now=p.now, **_opening(p)) for p in plans]
    try:
        with transaction.atomic():
            # In id order: two batches sharing ids take their unique entries in the same order,
            # so one waits for the other rather than deadlocking with it.
            TakedownRequest.objects.bulk_create(sorted(cases, key=lambda c: c.source_key or ""))
    except IntegrityError:
        pass
    else:
        for plan, case in zip(plans, cases, strict=True):
            plan.case = case
        return plans
    opened = []
    for plan in plans:
        try:
            plan.case = _create_case(plan.checked, plan.requester, now=plan.now, **_opening(plan))
        except _SourceTaken:
            outcomes[plan.checked.index] = _taken(plan.checked)
        except DomainError as error:
            outcomes[plan.checked.index] = error
        else:
            opened.append(plan)
    return opened


def _taken(item: _Checked) -> Outcome:
    """A concurrent first submission with the same id committed while this one was being
    written: it is the case to return, if it is the same request."""
    try:
        taken = _earlier_submissions([item.source_key]).get(item.source_key or "")
        earlier = _retry_of(taken, item.digest)
    except DomainError as error:
        return error
    assert earlier is not None
    return IntakeResult(case=earlier, created=False)


class _SourceTaken(Exception):
    """Another transaction committed a case with this submission's source key first."""


def _create_case(
    item: _Checked, requester: Requester, *, state: str, now: datetime, extra: dict[str, object]
) -> TakedownRequest:
    source_key = item.source_key
    for _attempt in range(5):
        case = _new_case(item, requester, state=state, now=now, extra=extra)
        try:
            with transaction.atomic():
                case.save(force_insert=True)
                return case
        except IntegrityError:
            if source_key is not None and (
                TakedownRequest.objects.filter(source_key=source_key).exists()
            ):
                raise _SourceTaken() from None
            # A reference collision (about one in 10^10 per pair): draw another.
            continue
    raise DomainError("could not allocate a case reference; try again", code="busy")


def takedown_confirm(*, case: TakedownRequest) -> TakedownRequest:
    """The web requester proved their address: the clock starts now, then the case is routed.

    A confirmation that comes after `confirm_by` is refused even if the sweeper has not yet
    expired the case: unconfirmed requests expire, they never hold a clock.
    """
    with transaction.atomic():
        now = clock.now()
        if case.confirm_by is not None and now > case.confirm_by:
            raise DomainError(
                "the time to confirm this request has passed; please send it again",
                code="confirmation_expired",
            )
        # The requester before the case, as intake takes them: no deadlock with a resubmission.
        requester = Requester.objects.select_for_update().get(pk=case.requester_id)
        case = transition(
            case,
            CaseState.OPEN,
            actor=requester.actor,
            update=_clock_fields(now),
        )
        if requester.email_verified_at is None:
            requester.email_verified_at = now
            requester.save(update_fields=["email_verified_at"])
        return _route([_Routing(case, case.outlet, email_verified=True)])[0]
