"""`takedown approve|reject|restore`: staff decisions from the command line."""

from __future__ import annotations

from typing import Any

import pytest

from rights.models import ContentItem, TakedownRequest
from rights.services import effects, enforcement
from rights.states import CaseState, ContentStatus
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db: None) -> Any:
    # A lead: decides cases and restores content.
    return staff_in("lead", "reviewer")


def _submit(run_command: Any, item: ContentItem, email: str) -> str:
    run = run_command(
        "takedown", "submit", "--url", item.source_url, "--email", email, "--name", "Someone"
    )
    assert run.code == 0, run.stderr
    return str(run.json()["reference"])


def _drive(reference: str) -> None:
    case = TakedownRequest.objects.get(reference=reference)
    for target_id in enforcement.case_advance(case_id=case.pk):
        effects.target_enforce(target_id=target_id)


def test_approve_then_restore(demo_catalogue: ContentItem, run_command: Any, reviewer: Any) -> None:
    reference = _submit(run_command, demo_catalogue, "someone@example.org")
    run = run_command("takedown", "approve", reference, "--staff", "reviewer")
    assert run.code == 0, run.stderr
    assert run.json()["state"] == CaseState.APPROVED
    assert TakedownRequest.objects.get(reference=reference).decided_by_id == reviewer.pk
    _drive(reference)
    demo_catalogue.refresh_from_db()
    assert demo_catalogue.status == ContentStatus.REMOVED
    refused = run_command("takedown", "restore", reference, "--staff", "reviewer")
    assert refused.code == 2
    assert "reasons" in refused.stderr
    run = run_command(
        "takedown", "restore", reference, "--staff", "reviewer", "--reasons", "Removed in error."
    )
    assert run.code == 0, run.stderr
    assert run.json()["state"] == CaseState.RESTORED
    _drive(reference)
    demo_catalogue.refresh_from_db()
    assert demo_catalogue.status == ContentStatus.RESTORED


def test_reject_needs_reasons_and_a_staff_account(
    demo_catalogue: ContentItem, run_command: Any, reviewer: Any
) -> None:
    reference = _submit(run_command, demo_catalogue, "someone@example.org")
    nobody = run_command("takedown", "reject", reference, "--staff", "nobody", "--reasons", "x")
    assert nobody.code == 2
    assert "no active staff user" in nobody.stderr
    run = run_command(
        "takedown", "reject", reference, "--staff", "reviewer", "--reasons", "Not the owner."
    )
    assert run.code == 0, run.stderr
    assert run.json()["state"] == CaseState.REJECTED
    again = run_command("takedown", "approve", reference, "--staff", "reviewer")
    assert again.code == 2
    assert "cannot go from 'rejected'" in again.stderr


def test_deciding_an_unknown_case(run_command: Any, reviewer: Any) -> None:
    run = run_command("takedown", "approve", "TD-NOPE", "--staff", "reviewer")
    assert run.code == 1
    assert "no case" in run.stderr


def test_the_command_checks_the_staff_members_role(
    demo_catalogue: ContentItem, run_command: Any, reviewer: Any
) -> None:
    """The same permissions as the console: an admin (who manages outlets, not cases) and a
    reviewer (who decides, but does not restore) are refused what their role does not hold."""
    reference = _submit(run_command, demo_catalogue, "someone@example.org")
    staff_in("admin", "ada")
    staff_in("reviewer", "rita")
    refused = run_command("takedown", "approve", reference, "--staff", "ada")
    assert refused.code == 2
    assert "may not decide cases" in refused.stderr
    assert TakedownRequest.objects.get(reference=reference).state != CaseState.APPROVED
    assert run_command("takedown", "approve", reference, "--staff", "rita").code == 0
    _drive(reference)
    no_restore = run_command(
        "takedown", "restore", reference, "--staff", "rita", "--reasons", "Removed in error."
    )
    assert no_restore.code == 2
    assert "may not restore content" in no_restore.stderr
