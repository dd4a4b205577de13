"""What a requester does after submitting: confirm their address, withdraw the case, appeal a
decision, and ask for their status links again; and staff's correction of their details.

The public pages call these; each raises `DomainError` (a `ConfirmationRefused` for links that
cannot be used) with words fit to show the requester, and writes nothing when it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from rights import audit, clock, deadlines, links, redress
from rights.db import case_lock
from rights.errors import DomainError
from rights.models import Audience, Requester, TakedownRequest
from rights.normalise import visible_text
from rights.services.intake import takedown_confirm
from rights.services.intake_checks import canonical_email
from rights.services.notifications import notify
from rights.services.scheduling import case_kick
from rights.states import OPEN_TARGET_STATES, CaseState, TargetState
from rights.workflow import transition

__all__ = [
    "ConfirmationRefused",
    "case_appeal",
    "case_withdraw",
    "confirmation_check",
    "confirmation_use",
    "requester_edit",
    "status_links_send",
]

# Longest appeal text kept.
APPEAL_MAX_CHARS = 10_000
# The status links are mailed at most once an hour per address, however often they are asked for.
LINKS_RESEND_EVERY = timedelta(hours=1)


class ConfirmationRefused(DomainError):
    """A confirmation link that cannot be used: `code` is `invalid`, `expired`, `used` or
    `withdrawn`."""


_REFUSALS = {
    "invalid": "This confirmation link is not valid. Copy the whole link from the email, or "
    "send your request again.",
    "expired": "This confirmation link has expired: requests not confirmed in time are "
    "discarded. Please send your request again.",
    "used": "This request has already been confirmed. Follow it from the status link in the "
    "emails we sent you.",
    "withdrawn": "This request was withdrawn before it was confirmed. Send a new request if you "
    "still want the content removed.",
}


def _refuse(code: str) -> ConfirmationRefused:
    return ConfirmationRefused(_REFUSALS[code], code=code)


def confirmation_check(*, token: str) -> TakedownRequest:
    """The case a confirmation link may confirm, without changing anything (a GET, which mail
    scanners make); `ConfirmationRefused` says why not."""
    reference, expired = links.reference_from_confirmation_token(token)
    case = (
        TakedownRequest.objects.filter(reference=reference).first()
        if reference is not None
        else None
    )
    if case is None:
        raise _refuse("invalid")
    if case.state == CaseState.EXPIRED or (
        case.state == CaseState.AWAITING_CONFIRMATION
        and (expired or (case.confirm_by is not None and clock.now() > case.confirm_by))
    ):
        raise _refuse("expired")
    if case.state == CaseState.WITHDRAWN and case.clock_started_at is None:
        raise _refuse("withdrawn")
    if case.state != CaseState.AWAITING_CONFIRMATION:
        raise _refuse("used")
    return case


def confirmation_use(*, token: str) -> TakedownRequest:
    """The requester pressed the button: the clock starts and the case is routed. Refused (and
    nothing written) for a link that is forged, expired or used already."""
    case = confirmation_check(token=token)
    with transaction.atomic():
        case = case_lock(case.pk)
        if case.state != CaseState.AWAITING_CONFIRMATION:
            # A double press (the first one confirmed it), or a withdrawal meanwhile.
            raise _refuse("withdrawn" if case.state == CaseState.WITHDRAWN else "used")
        try:
            return takedown_confirm(case=case)
        except DomainError as error:
            if error.code == "confirmation_expired":
                raise _refuse("expired") from None
            raise


def case_withdraw(*, case: TakedownRequest, actor: str) -> TakedownRequest:
    """The requester calls the case off. URLs still waiting get no outcome, and content the
    fail-safe disabled comes back, unless another case still holds it (the engine decides)."""
    with transaction.atomic():
        case = case_lock(case.pk)
        if not redress.may_withdraw(case):
            raise DomainError(
                "this request was already withdrawn"
                if case.state == CaseState.WITHDRAWN
                else "this request can no longer be withdrawn: it has been decided",
                code="not_withdrawable",
            )
        case = transition(case, CaseState.WITHDRAWN, actor=actor)
        for target in case.targets.filter(state__in=OPEN_TARGET_STATES).order_by("pk"):
            transition(target, TargetState.WITHDRAWN, actor=actor, stream=case.audit_stream())
        notify(case=case, kind="withdrawn", audience=Audience.REQUESTER)
        case_kick(case)
    return case


def case_appeal(*, case: TakedownRequest, reasons: str, actor: str) -> TakedownRequest:
    """The requester disagrees with a decision that refused (some of) what they asked.

    The case reopens for staff with a deadline of its own on the same ladder (the rungs of the
    appeal are counted apart from the first round's), and someone other than the first decider
    decides it (`rights.services.review`).
    """
    reasons = visible_text(reasons)
    if not reasons:
        raise DomainError("say why you disagree with the decision", field="reasons")
    if len(reasons) > APPEAL_MAX_CHARS:
        raise DomainError(
            f"keep the reasons under {APPEAL_MAX_CHARS:,} characters", field="reasons"
        )
    with transaction.atomic():
        case = case_lock(case.pk)
        now = clock.now()
        targets = list(case.targets.order_by("pk"))
        if redress.appeal_until(case, targets, now) is None:
            raise DomainError("this decision can no longer be appealed here", code="not_appealable")
        length = settings.TAKEDOWN_DEADLINE
        case = transition(
            case,
            CaseState.APPEALED,
            actor=actor,
            data={"reasons_digest": audit.text_digest(reasons), "round": case.appeal_round + 1},
            update={
                "appeal_round": case.appeal_round + 1,
                "appeal_reasons": reasons,
                "appealed_at": now,
                "first_decided_by_id": case.decided_by_id,
                "clock_started_at": now,
                "deadline_seconds": length,
                "deadline_at": deadlines.deadline_at(now, length),
            },
        )
        for target in targets:
            if target.state == TargetState.REJECTED:
                transition(
                    target,
                    TargetState.PENDING,
                    actor=actor,
                    update={"outcome_at": None},
                    stream=case.audit_stream(),
                )
        notify(case=case, kind="appealed", audience=Audience.REQUESTER)
        notify(case=case, kind="appealed_staff", audience=Audience.REVIEWERS)
        case_kick(case)
    return case


# What staff may correct of a requester's details by hand (the address is proved, not typed).
EDITABLE_FIELDS = frozenset({"name", "organisation"})


def requester_edit(*, requester: Requester, fields: Iterable[str], actor: str) -> Requester:
    """Save staff's correction of a requester's name or organisation, audited on the
    requester's stream by the fields' names only (their values are personal data)."""
    names = sorted(set(fields))
    if not names:
        return requester
    if set(names) - EDITABLE_FIELDS:
        raise DomainError(f"only {', '.join(sorted(EDITABLE_FIELDS))} can be corrected by hand")
    with transaction.atomic():
        if Requester.objects.filter(pk=requester.pk, erased_at__isnull=False).exists():
            raise DomainError("an erased requester's details stay erased", code="erased")
        requester.save(update_fields=names)
        audit.append(
            stream=requester.actor, actor=actor, action="requester.edited", data={"fields": names}
        )
    return requester


def status_links_send(*, email: str) -> None:
    """Mail the status links of an address's requests to that address, and only there.

    Says nothing either way: the page that asks shows the same words whether or not the
    address is known, and at most one message an hour goes out, however often it is asked.
    """
    address = canonical_email(email)
    requester = Requester.objects.filter(email=address).first() if address else None
    if requester is None:
        return
    newest = requester.cases.order_by("-received_at", "-pk").first()
    if newest is None:
        return
    now = clock.now()
    bucket = int(now.timestamp() // LINKS_RESEND_EVERY.total_seconds())
    with transaction.atomic():
        notify(
            case=newest,
            kind="status_links",
            audience=Audience.REQUESTER,
            key_suffix=f"links-{bucket}",
        )
