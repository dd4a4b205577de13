"""The one function that changes state.

Nothing else writes a state field. `transition()` locks the row, checks the table
(`rights.states`), saves, and appends the AuditEvent in the same transaction; a forbidden move
raises `TransitionNotAllowed` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import models

from rights import audit, clock
from rights.db import joined_atomic
from rights.errors import TransitionNotAllowed
from rights.states import CLOSED_CASE_STATES, MACHINES, is_allowed

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
    label = instance._meta.label
    machine = MACHINES[label]
    with joined_atomic():
        locked = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
        current = getattr(locked, machine.field)
        if not is_allowed(label, current, to_state):
            raise TransitionNotAllowed(
                f"a {machine.name} cannot go from {str(current)!r} to {str(to_state)!r}",
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
            now = clock.now()
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
