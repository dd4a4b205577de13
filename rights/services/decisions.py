"""Statements of reasons (DSA Art. 17): one for every decision, written in the decision's own
transaction by the service that makes it (rights.services.review for staff, the intake for a
trusted request's automatic approval, rights.services.ladder for each chunk of targets the
fail-safe disables).

`sor_check` validates what a reviewer wrote before anything is written; `sor_record` writes the
statement and its audit event, inside the caller's transaction. The measure follows from the
decision's scope: what each URL's outcome is once the decision is carried out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from rights import audit, sor_templates
from rights.db import joined_atomic
from rights.errors import DomainError
from rights.models import Measure, StatementOfReasons, TakedownRequest, Target
from rights.normalise import visible_text
from rights.states import TargetState

GROUND_MAX = StatementOfReasons._meta.get_field("ground").max_length or 32
TEXT_MAX = 10_000


@dataclass(frozen=True)
class SorInput:
    """A statement's texts as the reviewer leaves them (every one editable)."""

    ground: str
    facts: str
    reasons: str
    redress: str

    @classmethod
    def of(cls, draft: sor_templates.Draft) -> SorInput:
        return cls(
            ground=draft.ground, facts=draft.facts, reasons=draft.reasons, redress=draft.redress
        )


_FIELD_WORDS = {
    "ground": "the legal or contractual ground",
    "facts": "the facts relied on",
    "reasons": "the reasons the requester reads",
    "redress": "the options for redress",
}


def sor_check(statement: SorInput) -> SorInput:
    """The statement, trimmed, or DomainError naming the field at fault. Writes nothing."""
    cleaned: dict[str, str] = {}
    for name, words in _FIELD_WORDS.items():
        value = visible_text(getattr(statement, name))
        if not value:
            raise DomainError(f"write {words}: a decision needs its statement", field=name)
        if sor_templates.EDIT_MARKER in value:
            raise DomainError(
                f"replace the template's {sor_templates.EDIT_MARKER} …] part of {words} "
                "with what applies to this case",
                field=name,
            )
        if "\x00" in value:
            raise DomainError("text with NUL characters cannot be stored", field=name)
        limit = GROUND_MAX if name == "ground" else TEXT_MAX
        if len(value) > limit:
            raise DomainError(f"keep {words} under {limit:,} characters", field=name)
        cleaned[name] = value
    return replace(statement, **cleaned)


def sor_draft(
    case: TakedownRequest,
    kind: str,
    *,
    now: datetime,
    targets: Iterable[Target] | None = None,
    automated: bool = False,
) -> SorInput:
    """The template's statement for a decision of `kind` on `case`."""
    listed = list(targets) if targets is not None else list(case.targets.order_by("pk"))
    return SorInput.of(
        sor_templates.draft(case, kind, targets=listed, now=now, automated=automated)
    )


def measure_of(scope: Mapping[int, str], *, restoring: bool = False) -> str:
    """What the decision does, from each URL's outcome once it is carried out."""
    if restoring:
        return Measure.RESTORATION
    removed = any(outcome == TargetState.REMOVED for outcome in scope.values())
    refused = any(outcome == TargetState.REJECTED for outcome in scope.values())
    if removed and refused:
        return Measure.PARTIAL
    if removed:
        return Measure.REMOVAL
    if any(outcome == TargetState.DISABLED for outcome in scope.values()):
        return Measure.DISABLING  # the fail-safe's, pending a decision
    return Measure.NO_ACTION


def sor_record(
    *,
    case: TakedownRequest,
    scope: Mapping[int, str],
    statement: SorInput,
    decided_at: datetime,
    user_id: int | None,
    actor: str,
    automated_decision: bool = False,
    restoring: bool = False,
    whole_domain_removal: bool = False,
) -> StatementOfReasons:
    """Write the decision's statement of reasons (checked by `sor_check` first) and audit it,
    inside the caller's transaction. `scope` is each target's id and its outcome."""
    record = SorRecord(
        case=case,
        scope=scope,
        statement=statement,
        decided_at=decided_at,
        user_id=user_id,
        actor=actor,
        automated_decision=automated_decision,
        restoring=restoring,
        whole_domain_removal=whole_domain_removal,
    )
    return sor_record_many([record])[0]


@dataclass(frozen=True)
class SorRecord:
    """One decision's statement of reasons to write: the arguments `sor_record` takes."""

    case: TakedownRequest
    scope: Mapping[int, str]
    statement: SorInput
    decided_at: datetime
    user_id: int | None
    actor: str
    automated_decision: bool = False
    restoring: bool = False
    whole_domain_removal: bool = False


def sor_record_many(records: Sequence[SorRecord]) -> list[StatementOfReasons]:
    """`sor_record` for many decisions (a batch's trusted approvals), in constant queries: every
    statement is checked before the first is written."""
    checked = [replace(record, statement=sor_check(record.statement)) for record in records]
    if not checked:
        return []
    rows = []
    for record in checked:
        measure = measure_of(record.scope, restoring=record.restoring)
        if record.whole_domain_removal and measure == Measure.NO_ACTION:
            measure = Measure.REMOVAL  # the domain's rule removes what the case names, or will
        statement = record.statement
        rows.append(
            StatementOfReasons(
                case=record.case,
                round=record.case.appeal_round,
                measure=measure,
                scope=[
                    [target_id, str(outcome)] for target_id, outcome in sorted(record.scope.items())
                ],
                ground=statement.ground,
                facts=statement.facts,
                reasons=statement.reasons,
                automated_detection=False,
                automated_decision=record.automated_decision,
                redress=statement.redress,
                decided_by_id=record.user_id,
                decided_at=record.decided_at,
            )
        )
    with joined_atomic():
        StatementOfReasons.objects.bulk_create(rows)
        audit.append_many(
            [
                audit.Entry(
                    stream=record.case.audit_stream(),
                    actor=record.actor,
                    # Not a transition: no "to" key, so audit_verify's state check passes it by.
                    action="case.statement_of_reasons",
                    data={
                        "statement": sor.pk,
                        "round": record.case.appeal_round,
                        "measure": sor.measure,
                        "scope": sor.scope,
                        # A ground of our own words is named; one the reviewer typed is digested.
                        "ground": (
                            sor.ground if sor.ground in sor_templates.GROUND_WORDS else None
                        ),
                        "ground_digest": audit.text_digest(sor.ground),
                        "automated_decision": record.automated_decision,
                        # Texts that may name people are kept as keyed digests only.
                        "facts_digest": audit.text_digest(sor.facts),
                        "reasons_digest": audit.text_digest(sor.reasons),
                        "redress_digest": audit.text_digest(sor.redress),
                    },
                )
                for record, sor in zip(checked, rows, strict=True)
            ]
        )
    return rows
