"""What a requester may still do about their case: withdraw it while it is open, appeal a
decision that did not grant it (DSA Art. 20) for APPEAL_WINDOW after that decision.

Pure checks on a case and its targets, read by the status page (which offers only what is
possible) and by the services that carry each one out (which check again, under the case's lock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from rights.models import TakedownRequest, Target
from rights.states import CaseState, TargetState

# Still open and not yet decided for removal: the requester may call it off.
WITHDRAWABLE = frozenset(
    {
        CaseState.AWAITING_CONFIRMATION,
        CaseState.OPEN,
        CaseState.IN_REVIEW,
        CaseState.DISABLED_PENDING_REVIEW,
    }
)
APPEALABLE = frozenset({CaseState.REJECTED, CaseState.REMOVED})
# One appeal per case; after it, the out-of-court dispute settlement bodies and the courts.
MAX_APPEALS = 1


def may_withdraw(case: TakedownRequest) -> bool:
    return case.state in WITHDRAWABLE


def appeal_until(
    case: TakedownRequest, targets: Iterable[Target], now: datetime
) -> datetime | None:
    """Until when this case's decision may be appealed; None when it cannot be (nothing was
    refused, it was appealed already, the window has passed, or the requester's details were
    erased: an appeal would be new personal text from someone we can no longer answer)."""
    if case.appeal_round >= MAX_APPEALS or case.decided_at is None:
        return None
    if case.requester.erased_at is not None:
        return None
    # Rejected outright, or in part (a removed case some of whose URLs were refused). A case
    # refused before anything was looked at (a suspended address) has no refused URL.
    refused = case.state in APPEALABLE and any(
        target.state == TargetState.REJECTED for target in targets
    )
    if not refused:
        return None
    until = case.decided_at + timedelta(seconds=settings.APPEAL_WINDOW)
    return until if now < until else None
