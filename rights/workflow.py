"""The one function that changes state.

Nothing else writes a state field. `transition()` locks the row, checks the table
(`rights.states`), saves, and appends the AuditEvent in the same transaction; a forbidden move
raises `TransitionNotAllowed` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
    move = Move(instance, to_state, actor=actor, data=data, update=update, stream=stream)
    return transitions([move])[0]


@dataclass(frozen=True)
class Move(Generic[M]):
    """One row's move, for `transitions`: the arguments `transition` takes."""

    instance: M
    to_state: str
    actor: str
    data: Mapping[str, Any] | None = None
    update: Mapping[str, Any] | None = None
    stream: str | None = None


def transitions(moves: Sequence[Move[M]]) -> list[M]:
    """`transition` for many rows of one model at once, in constant queries: all move, or
    `TransitionNotAllowed` (naming the first row that may not) and nothing is written.

    Rows are locked in key order, so two callers moving overlapping rows never deadlock; each
    row's event is appended in the order of `moves`. Returns the saved rows in that order.
    """
    if not moves:
        return []
    model = type(moves[0].instance)
    if any(type(move.instance) is not model for move in moves):
        raise ValueError("transitions moves rows of one model at a time")
    ids = [move.instance.pk for move in moves]
    if len(set(ids)) != len(ids):
        raise ValueError("transitions moves each row once")
    label = model._meta.label
    machine = MACHINES[label]
    with joined_atomic():
        locked = {
            row.pk: row
            for row in model._default_manager.select_for_update().filter(pk__in=ids).order_by("pk")
        }
        now = clock.now() if machine.name == "case" else None
        fields = {machine.field}
        entries = []
        rows = []
        for move in moves:
            row = locked[move.instance.pk]
            current = getattr(row, machine.field)
            if not is_allowed(label, current, move.to_state):
                raise TransitionNotAllowed(
                    f"a {machine.name} cannot go from {str(current)!r} to {str(move.to_state)!r}",
                    field=machine.field,
                )
            event_data: dict[str, Any] = {"id": row.pk, "from": current, "to": move.to_state}
            event_data.update(move.data or {})
            entries.append(
                audit.Entry(
                    stream=move.stream or row.audit_stream(),  # type: ignore[attr-defined]
                    actor=move.actor,
                    action=f"{machine.name}.{move.to_state}",
                    data=event_data,
                )
            )
            setattr(row, machine.field, move.to_state)
            for name, value in (move.update or {}).items():
                setattr(row, name, value)
                fields.add(name)
            if now is not None:
                row.closed_at = now if move.to_state in CLOSED_CASE_STATES else None  # type: ignore[attr-defined]
                fields.add("closed_at")
            rows.append(row)
        for entry in entries:
            audit.check_data(entry.data)  # refuse bad audit data before the first write
        touched = sorted(fields)
        auto_now = [f for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
        # Rows given the same values are saved together: a batch's moves are a few such groups.
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            groups.setdefault(tuple(getattr(row, name) for name in touched), []).append(row)
        for values, group in groups.items():
            changes = dict(zip(touched, values, strict=True))
            for model_field in auto_now:
                # auto_now fields are only set by save(): set here as save() would.
                moment = model_field.pre_save(group[0], add=False)
                for row in group:
                    setattr(row, model_field.attname, moment)
                changes[model_field.name] = moment
            model._default_manager.filter(pk__in=[row.pk for row in group]).update(**changes)
        audit.append_many(entries)
    return rows
