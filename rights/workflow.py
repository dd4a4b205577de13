"""States, the one transition table per state machine, and the one function that changes state.

Nothing else writes a state field. `transition()` locks the row, checks the table, saves, and
appends the AuditEvent in the same transaction; a forbidden move raises `TransitionNotAllowed`
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from rights.errors import TransitionNotAllowed


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
    C.APPEALED: frozenset({C.APPROVED, C.REJECTED, C.REMOVED, C.RESTORED}),
    C.WITHDRAWN: frozenset(),
    C.EXPIRED: frozenset(),
    C.RESTORED: frozenset(),
    C.NOT_FOUND: frozenset(),
}

TARGET_TRANSITIONS: Mapping[str, frozenset[str]] = {
    T.PENDING: frozenset({T.REMOVED, T.DISABLED, T.REJECTED, T.NOT_FOUND}),
    T.DISABLED: frozenset({T.REMOVED, T.REJECTED}),
    T.REMOVED: frozenset({T.RESTORED}),
    T.REJECTED: frozenset({T.REMOVED}),
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
CLOCK_RUNNING_STATES = frozenset({C.OPEN, C.IN_REVIEW, C.APPROVED, C.REMOVING})
# A target with one of these has met the deadline.
TARGET_OUTCOMES = frozenset({T.REMOVED, T.DISABLED, T.REJECTED, T.NOT_FOUND})
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


M = TypeVar("M", bound=models.Model)


def transition(
    instance: M,
    to_state: str,
    *,
    actor: str,
    data: Mapping[str, Any] | None = None,
    update: Mapping[str, Any] | None = None,
    stream: str | None = None,
) -> M:
    """Move `instance` to `to_state`, or raise `TransitionNotAllowed` and write nothing.

    `update` sets other fields in the same save (a decision's reasons, say); `data` is added to
    the audit event and must hold no personal data. Returns the freshly locked and saved row;
    the caller's instance is left as it was.
    """
    from rights import audit
    from rights.db import joined_atomic

    label = instance._meta.label
    machine = MACHINES[label]
    with joined_atomic():
        locked = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
        current = getattr(locked, machine.field)
        if not is_allowed(label, current, to_state):
            raise TransitionNotAllowed(
                f"a {machine.name} cannot go from {current!r} to {to_state!r}",
                field=machine.field,
            )
        event_data: dict[str, Any] = {"id": locked.pk, "from": current, "to": to_state}
        event_data.update(data or {})
        audit.check_data(event_data)  # refuse bad audit data before the first write
        setattr(locked, machine.field, to_state)
        fields = {machine.field}
        for name, value in (update or {}).items():
            setattr(locked, name, value)
            fields.add(name)
        if machine.name == "case":
            now = timezone.now()
            locked.closed_at = now if to_state in CLOSED_CASE_STATES else None  # type: ignore[attr-defined]
            fields.add("closed_at")
        if any(f.name == "updated_at" for f in locked._meta.fields):
            fields.add("updated_at")  # auto_now fields are only saved when named
        locked.save(update_fields=sorted(fields))
        audit.append(
            stream=stream or locked.audit_stream(),  # type: ignore[attr-defined]
            actor=actor,
            action=f"{machine.name}.{to_state}",
            data=event_data,
        )
    return locked
