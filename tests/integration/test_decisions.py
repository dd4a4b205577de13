"""Statements of reasons (DSA Art. 17): one for every decision, written with it (staff approval,
rejection, per-URL decision, restoration, the trusted automatic approval, appeal decisions);
per-URL decisions carried out by the engine; refusals that write nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.utils import timezone

from rights import clock, redress, sor_templates
from rights.errors import DomainError
from rights.models import (
    AuditEvent,
    ContentItem,
    Measure,
    Notification,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.presenters import Viewer, case_present
from rights.services import enforcement, requester, review
from rights.services.decisions import SorInput, sor_draft
from rights.services.notifications import render_message
from rights.states import CaseState, ContentStatus, TargetState
from tests.engine import drive, trusted, untrusted
from tests.factories import ContentItemFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def rita(db: None) -> User:
    return staff_in("reviewer", "rita")


@pytest.fixture
def colin(db: None) -> User:
    return staff_in("reviewer", "colin")


def statement(case: TakedownRequest, kind: str, reasons: str) -> SorInput:
    draft = sor_draft(case, kind, now=clock.now())
    return SorInput(ground=draft.ground, facts=draft.facts, reasons=reasons, redress=draft.redress)


def only_sor(case: TakedownRequest) -> StatementOfReasons:
    return StatementOfReasons.objects.get(case=case)


def items(outlet: Any, count: int) -> list[ContentItem]:
    return ContentItemFactory.create_batch(count, outlet=outlet)


def several(submit: Any, outlet: Any, count: int) -> TakedownRequest:
    """An untrusted request naming `count` of our articles: it goes to review."""
    case: TakedownRequest = submit(urls=[i.source_url for i in items(outlet, count)]).case
    assert case.state == CaseState.IN_REVIEW
    return case


def targets_of(case: TakedownRequest) -> list[Target]:
    return list(Target.objects.filter(case=case).select_related("content_item").order_by("pk"))


def sor_events(case: TakedownRequest) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            stream=case.audit_stream(), action="case.statement_of_reasons"
        ).order_by("seq")
    )


# --- One statement per decision -----------------------------------------------------------------


def test_a_rejection_records_its_statement(submit: Any, item: ContentItem, rita: User) -> None:
    case = untrusted(submit, item)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner: the byline is ours.")
    case.refresh_from_db()
    sor = only_sor(case)
    target = Target.objects.get(case=case)
    assert sor.measure == Measure.NO_ACTION
    assert sor.scope == [[target.pk, "rejected"]]
    assert sor.ground == "copyright"
    assert sor.reasons == "Not the owner: the byline is ours." == case.decision_reasons
    assert "1 URL" in sor.facts
    assert case.reference in sor.facts
    until = case.decided_at + timedelta(seconds=183 * 86400)  # type: ignore[operator]
    assert f"until {until:%Y-%m-%d}" in sor.redress
    assert "Article 21" in sor.redress
    assert "courts" in sor.redress
    assert sor.decided_by_id == rita.pk
    assert sor.decided_at == case.decided_at
    assert (sor.round, sor.automated_decision, sor.automated_detection) == (0, False, False)
    # The trail proves the statement without holding its words.
    (event,) = sor_events(case)
    assert event.data["statement"] == sor.pk
    assert event.data["measure"] == "no_action"
    assert not AuditEvent.objects.filter(data__icontains="byline").exists()


def test_an_approval_records_its_statement(submit: Any, item: ContentItem, rita: User) -> None:
    case = untrusted(submit, item)
    review.case_approve(case=case, user_id=rita.pk)
    sor = only_sor(case)
    assert sor.measure == Measure.REMOVAL
    assert sor.scope == [[Target.objects.get(case=case).pk, "removed"]]
    assert sor.reasons
    assert sor.decided_by_id == rita.pk
    assert not sor.automated_decision
    # The requester got what they asked: no refusal's reasons stand as the decision.
    assert TakedownRequest.objects.get(pk=case.pk).decision_reasons == ""


@pytest.mark.parametrize("sworn", [True, False])
def test_the_removal_template_says_what_the_requester_declared(
    submit: Any, item: ContentItem, sworn: bool
) -> None:
    """Under oath only where they swore: mail and staff entry record no statement."""
    statements = ["subject_or_agent", "good_faith", "accurate"] if sworn else []
    case = submit(
        channel="staff", basis="privacy", statements=statements, urls=[item.source_url]
    ).case
    reasons = sor_draft(case, sor_templates.REMOVAL, now=clock.now()).reasons
    if sworn:
        assert reasons.startswith("The requester declared under oath that the content is about")
    else:
        assert reasons.startswith("The requester told us, without a sworn statement, that")
    assert "{declared}" not in reasons


def test_the_trusted_automatic_approval_records_its_statement(
    submit: Any, item: ContentItem
) -> None:
    case = trusted(submit, item)
    assert case.state == CaseState.APPROVED
    sor = only_sor(case)
    assert sor.automated_decision is True
    assert sor.decided_by_id is None
    assert sor.measure == Measure.REMOVAL
    assert sor.round == 0
    assert "approved automatically" in sor.reasons
    assert sor_events(case)[0].actor == "system:trust"


def test_a_restoration_records_its_statement(
    submit: Any, item: ContentItem, rita: User, colin: User
) -> None:
    lead = staff_in("lead", "lena")
    case = trusted(submit, item)
    drive(case)
    review.case_restore(case=case, user_id=lead.pk, reasons="Removed in error: not theirs.")
    sor = StatementOfReasons.objects.get(case=case, measure=Measure.RESTORATION)
    assert sor.scope == [[Target.objects.get(case=case).pk, "restored"]]
    assert sor.reasons == "Removed in error: not theirs."
    assert sor.round == TakedownRequest.objects.get(pk=case.pk).appeal_round


def test_appeal_decisions_have_their_own_statement_and_decider(
    submit: Any, item: ContentItem, rita: User, colin: User
) -> None:
    case = untrusted(submit, item)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner.")
    requester.case_appeal(case=case, reasons="I am the owner.", actor="requester:1")
    case.refresh_from_db()
    assert case.appeal_round == 1
    before = StatementOfReasons.objects.count()
    with pytest.raises(DomainError) as refused:
        review.case_approve(case=case, user_id=rita.pk)
    assert refused.value.code == "same_decider"
    assert StatementOfReasons.objects.count() == before

    review.case_approve(case=case, user_id=colin.pk)
    first, appeal = StatementOfReasons.objects.filter(case=case).order_by("round")
    assert (first.round, first.measure, first.decided_by_id) == (0, "no_action", rita.pk)
    assert (appeal.round, appeal.measure, appeal.decided_by_id) == (1, "removal", colin.pk)
    assert "appealed" in appeal.facts


def test_an_appeal_turned_down_cannot_be_appealed_again(
    submit: Any, item: ContentItem, rita: User, colin: User
) -> None:
    case = untrusted(submit, item)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner.")
    requester.case_appeal(case=case, reasons="I am.", actor="requester:1")
    review.case_reject(case=case, user_id=colin.pk, reasons="Still not the owner.")
    appeal = StatementOfReasons.objects.get(case=case, round=1)
    assert appeal.measure == Measure.NO_ACTION
    assert "cannot be appealed here again" in appeal.redress


# --- Per-URL decisions --------------------------------------------------------------------------


def test_per_url_decision_end_to_end(submit: Any, outlet: Any, rita: User) -> None:
    """Two URLs removed and one refused, in one decision; the one the fail-safe had disabled and
    that is refused comes back; the case closes removed, and the refusal can be appealed."""
    case = several(submit, outlet, 3)
    keep, *gone = targets_of(case)
    assert case.clock_started_at is not None
    with time_machine.travel(case.clock_started_at + timedelta(hours=22), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    assert {t.state for t in targets_of(case)} == {TargetState.DISABLED}
    assert keep.content_item is not None
    assert ContentItem.objects.get(pk=keep.content_item.pk).status == ContentStatus.DISABLED

    reasons = "The first article is the requester's own; the others are not."
    review.case_decide(
        case=case,
        user_id=rita.pk,
        remove=[t.pk for t in gone],
        reject=[keep.pk],
        statement=statement(case, sor_templates.PARTIAL, reasons),
    )
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED
    assert Target.objects.get(pk=keep.pk).state == TargetState.REJECTED
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    states = {t.pk: t.state for t in targets_of(case)}
    assert states == {keep.pk: "rejected", gone[0].pk: "removed", gone[1].pk: "removed"}
    # The requester is told what was removed and what was not, and why: not "removed".
    assert not Notification.objects.filter(case=case, kind="removed").exists()
    mail = render_message(Notification.objects.get(case=case, kind="partly_removed"))
    assert mail.subject == f"Your request {case.reference}: some content removed, the rest refused"
    assert "the content of 2 of them has been removed" in mail.body
    assert "the other 1 we decided not to remove" in mail.body
    assert reasons in mail.body
    assert "Appeal: open your request's page" in mail.body
    # And the status page's headline says so too.
    view = case_present(case, targets=targets_of(case), viewer=Viewer.staff())
    assert view.meaning.startswith("Decided: some of the content has been removed")
    statuses = {t.pk: t.content_item.status for t in targets_of(case) if t.content_item}
    assert statuses[keep.pk] == ContentStatus.RESTORED
    assert statuses[gone[0].pk] == statuses[gone[1].pk] == ContentStatus.REMOVED

    # The fail-safe's disabling had a statement of its own (tests/integration/test_transparency.py).
    sor = StatementOfReasons.objects.get(case=case, automated_decision=False)
    assert sor.measure == Measure.PARTIAL
    assert sorted(sor.scope) == sorted(
        [[keep.pk, "rejected"], [gone[0].pk, "removed"], [gone[1].pk, "removed"]]
    )
    assert case.decision_reasons == reasons == sor.reasons
    assert "appeal" in sor.redress
    # The partial refusal can be appealed, and the appeal is about the refused URL only.
    assert redress.appeal_until(case, targets_of(case), clock.now()) is not None
    requester.case_appeal(case=case, reasons="The first is mine too.", actor="requester:1")
    assert [t.state for t in targets_of(case)] == ["pending", "removed", "removed"]


def test_per_url_decision_removing_nothing_is_a_rejection(
    submit: Any, outlet: Any, rita: User
) -> None:
    case = several(submit, outlet, 2)
    ids = [t.pk for t in targets_of(case)]
    review.case_decide(
        case=case,
        user_id=rita.pk,
        remove=[],
        reject=ids,
        statement=statement(case, sor_templates.REFUSAL, "Neither is theirs."),
    )
    case.refresh_from_db()
    assert case.state == CaseState.REJECTED
    assert only_sor(case).measure == Measure.NO_ACTION


def test_per_url_decision_removing_all_is_a_removal(submit: Any, outlet: Any, rita: User) -> None:
    case = several(submit, outlet, 2)
    review.case_decide(
        case=case,
        user_id=rita.pk,
        remove=[t.pk for t in targets_of(case)],
        reject=[],
        statement=statement(case, sor_templates.REMOVAL, "Both are theirs."),
    )
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    assert only_sor(case).measure == Measure.REMOVAL
    assert redress.appeal_until(case, targets_of(case), clock.now()) is None


# --- Refusals write nothing ---------------------------------------------------------------------


def _nothing_written(case: TakedownRequest, events: int) -> None:
    fresh = TakedownRequest.objects.get(pk=case.pk)
    assert fresh.state == CaseState.IN_REVIEW
    assert fresh.decided_at is None
    assert not StatementOfReasons.objects.filter(case=case).exists()
    assert AuditEvent.objects.count() == events
    assert {t.state for t in targets_of(case)} == {TargetState.PENDING}


@pytest.mark.parametrize(
    ("field", "empty"),
    [
        ("reasons", "   "),
        ("facts", "\u200b"),  # a zero-width space shows nothing
        ("ground", "\ufeff\u200d "),
        ("redress", "\u0301"),  # a combining accent with nothing under it
    ],
)
def test_an_empty_text_is_refused_and_nothing_written(
    submit: Any, outlet: Any, rita: User, field: str, empty: str
) -> None:
    case = several(submit, outlet, 2)
    first, second = targets_of(case)
    events = AuditEvent.objects.count()
    good = statement(case, sor_templates.PARTIAL, "Only the first is theirs.")
    blank = SorInput(**{**good.__dict__, field: empty})
    with pytest.raises(DomainError) as refused:
        review.case_decide(
            case=case, user_id=rita.pk, remove=[first.pk], reject=[second.pk], statement=blank
        )
    assert refused.value.field == field
    for decide in (review.case_approve, review.case_reject):
        with pytest.raises(DomainError):
            decide(case=case, user_id=rita.pk, statement=blank)
    _nothing_written(case, events)


def test_the_templates_placeholder_must_be_replaced(submit: Any, outlet: Any, rita: User) -> None:
    case = several(submit, outlet, 1)
    events = AuditEvent.objects.count()
    draft = sor_draft(case, sor_templates.REFUSAL, now=clock.now())
    assert sor_templates.EDIT_MARKER in draft.reasons
    with pytest.raises(DomainError, match="replace the template") as refused:
        review.case_reject(case=case, user_id=rita.pk, statement=draft)
    assert refused.value.field == "reasons"
    _nothing_written(case, events)


def test_every_open_url_is_decided_once(submit: Any, outlet: Any, rita: User) -> None:
    case = several(submit, outlet, 3)
    a, b, c = (t.pk for t in targets_of(case))
    other = several(submit, outlet, 1)
    foreign = targets_of(other)[0].pk
    events = AuditEvent.objects.count()
    good = statement(case, sor_templates.PARTIAL, "Reasons.")
    for remove, reject, says in [
        ([a], [b], "1 still without a decision"),
        ([a, b], [b, c], "either removed or rejected"),
        ([a, b, c, foreign], [], "still waiting for a decision"),
    ]:
        with pytest.raises(DomainError, match=says):
            review.case_decide(
                case=case, user_id=rita.pk, remove=remove, reject=reject, statement=good
            )
    _nothing_written(case, events)


def test_bulk_and_command_line_rejections_use_the_template(
    submit: Any, item: ContentItem, rita: User
) -> None:
    """A rejection given only its reasons (the queue's bulk decision, the `takedown` command)
    gets the template's other texts."""
    case = untrusted(submit, item)
    enforcement.case_advance(case_id=case.pk)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner.")
    sor = only_sor(case)
    assert sor.reasons == "Not the owner."
    assert sor.ground == "copyright"
    assert sor.facts
    assert sor.redress
