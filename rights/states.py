"""States and the one transition table per state machine, with the sets of states the rest of
the service asks about. Pure data: the models import it, and `rights.workflow.transition` is the
one function that moves a row from one state to another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import models


class CaseState(models.TextChoices):
    AWAITING_CONFIRMATION = "awaiting_confirmation", "Awaiting confirmation"
    OPEN = "open", "Open"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REMOVING = "removing", "Removing"
    REMOVED = "removed", "Closed: removed"
    REJECTED = "rejected", "Closed: rejected"
    WITHDRAWN = "withdrawn", "Closed: withdrawn"
    EXPIRED = "expired", "Closed: expired (never confirmed)"
    DISABLED_PENDING_REVIEW = "disabled_pending_review", "Disabled pending review"
    APPEALED = "appealed", "Appealed"
    RESTORED = "restored", "Closed: restored"
    # Nothing the case names is ours under any spelling: said so, and closed.
    NOT_FOUND = "not_found", "Closed: not found on our site"


class TargetState(models.TextChoices):
    PENDING = "pending", "Pending"
    REMOVED = "removed", "Removed"
    DISABLED = "disabled", "Disabled pending review"
    REJECTED = "rejected", "Rejected"
    NOT_FOUND = "not_found", "Not found"
    RESTORED = "restored", "Restored"
    # The requester called the case off before this URL had its final outcome.
    WITHDRAWN = "withdrawn", "Withdrawn"


class ContentStatus(models.TextChoices):
    LIVE = "live", "Live"
    DISABLED = "disabled", "Disabled"
    REMOVED = "removed", "Removed"
    RESTORED = "restored", "Restored"


C, T, S = CaseState, TargetState, ContentStatus

CASE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    C.AWAITING_CONFIRMATION: frozenset({C.OPEN, C.EXPIRED, C.WITHDRAWN}),
    C.OPEN: frozenset(
        {C.IN_REVIEW, C.APPROVED, C.REJECTED, C.WITHDRAWN, C.DISABLED_PENDING_REVIEW, C.NOT_FOUND}
    ),
    C.IN_REVIEW: frozenset({C.APPROVED, C.REJECTED, C.WITHDRAWN, C.DISABLED_PENDING_REVIEW}),
    C.DISABLED_PENDING_REVIEW: frozenset({C.APPROVED, C.REJECTED, C.WITHDRAWN}),
    C.APPROVED: frozenset({C.REMOVING}),
    # Closed removed when something was removed; when every URL turned out not to be ours (or
    # was rejected on its own), "removed" would be untrue.
    C.REMOVING: frozenset({C.REMOVED, C.NOT_FOUND}),
    C.REMOVED: frozenset({C.APPEALED}),
    C.REJECTED: frozenset({C.APPEALED}),
    # An appeal is decided either way: upheld (back to removed/rejected) or overturned.
    # The appeal's fail-safe disables what is still pending, as in the first round.
    C.APPEALED: frozenset(
        {C.APPROVED, C.REJECTED, C.REMOVED, C.RESTORED, C.DISABLED_PENDING_REVIEW}
    ),
    C.WITHDRAWN: frozenset(),
    C.EXPIRED: frozenset(),
    C.RESTORED: frozenset(),
    C.NOT_FOUND: frozenset(),
}

TARGET_TRANSITIONS: Mapping[str, frozenset[str]] = {
    T.PENDING: frozenset({T.REMOVED, T.DISABLED, T.REJECTED, T.NOT_FOUND, T.WITHDRAWN}),
    T.DISABLED: frozenset({T.REMOVED, T.REJECTED, T.WITHDRAWN}),
    T.REMOVED: frozenset({T.RESTORED}),
    # An appeal puts a refused URL back before staff (PENDING).
    T.REJECTED: frozenset({T.REMOVED, T.PENDING}),
    T.WITHDRAWN: frozenset(),
    T.NOT_FOUND: frozenset(),
    T.RESTORED: frozenset({T.REMOVED}),
}

CONTENT_TRANSITIONS: Mapping[str, frozenset[str]] = {
    S.LIVE: frozenset({S.DISABLED, S.REMOVED}),
    S.DISABLED: frozenset({S.REMOVED, S.RESTORED}),
    S.REMOVED: frozenset({S.RESTORED}),
    S.RESTORED: frozenset({S.DISABLED, S.REMOVED}),
}

# A case in one of these states is finished; `closed_at` is set on entry.
CLOSED_CASE_STATES = frozenset(
    {C.REMOVED, C.REJECTED, C.WITHDRAWN, C.EXPIRED, C.RESTORED, C.NOT_FOUND}
)
# The clock is running and work is outstanding: the deadline engine watches these.
CLOCK_RUNNING_STATES = frozenset({C.OPEN, C.IN_REVIEW, C.APPROVED, C.REMOVING, C.APPEALED})
# A target with one of these has met the deadline.
TARGET_OUTCOMES = frozenset({T.REMOVED, T.DISABLED, T.REJECTED, T.NOT_FOUND})
# A target in one of these is still held open by its case: waiting for its outcome, or
# disabled by the fail-safe pending the decision.
OPEN_TARGET_STATES = (T.PENDING, T.DISABLED)
# Content in these states may be shown to readers.
VISIBLE_CONTENT = frozenset({S.LIVE, S.RESTORED})


@dataclass(frozen=True)
class Machine:
    name: str
    field: str
    table: Mapping[str, frozenset[str]]


MACHINES: dict[str, Machine] = {
    "rights.TakedownRequest": Machine("case", "state", CASE_TRANSITIONS),
    "rights.Target": Machine("target", "state", TARGET_TRANSITIONS),
    "rights.ContentItem": Machine("content", "status", CONTENT_TRANSITIONS),
}


def is_allowed(model_label: str, current: str, to_state: str) -> bool:
    return to_state in MACHINES[model_label].table.get(current, frozenset())
