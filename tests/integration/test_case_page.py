"""The case page: everything needed to decide one case on one screen, decisions with their
statements of reasons, the permissions each decision needs, and a query count that does not
grow with the case's URLs or the requester's history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from rights.models import (
    AuditStream,
    Requester,
    StatementOfReasons,
    TakedownRequest,
    Target,
)
from rights.services import requester, review
from rights.statements import STATEMENTS, STATEMENTS_VERSION
from rights.states import CaseState, TargetState
from tests.engine import drive, trusted, untrusted
from tests.factories import (
    ContentItemFactory,
    RequesterFactory,
    TakedownRequestFactory,
    TargetFactory,
)
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


def page_url(case: TakedownRequest) -> str:
    return reverse("admin:rights_takedownrequest_change", args=[case.pk])


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rita(db: None) -> User:
    return staff_in("reviewer", "rita")


@pytest.fixture
def colin(db: None) -> User:
    return staff_in("reviewer", "colin")


@pytest.fixture
def lena(db: None) -> User:
    return staff_in("lead", "lena")


def form_values(client: Client, case: TakedownRequest, decision: str) -> dict[str, str]:
    """The decision form's fields as the page prefilled them."""
    response = client.get(page_url(case))
    assert response.status_code == 200
    (form,) = [f for f in response.context["forms"] if f.name == decision]
    return {"decision": decision, **{f"{decision}-{k}": v for k, v in form.values.items()}}


def case_with(urls: int, *, requester: Requester | None = None, **fields: Any) -> TakedownRequest:
    case = TakedownRequestFactory.create(
        requester=requester or RequesterFactory.create(),
        explanation="I wrote this piece; it is republished without my leave.",
        **fields,
    )
    for _ in range(urls):
        TargetFactory.create(case=case)
    return case


# --- What the page shows ------------------------------------------------------------------------


def test_the_page_shows_everything_needed_to_decide(
    submit: Any, item: Any, rita: User, colin: User
) -> None:
    earlier = untrusted(submit, item)
    review.case_reject(case=earlier, user_id=colin.pk, reasons="Not the owner.")
    Requester.objects.filter(pk=earlier.requester_id).update(
        unfounded_count=2, warned_at=timezone.now()
    )
    other = ContentItemFactory.create(outlet=item.outlet)
    case = submit(
        urls=[item.source_url, other.source_url, "https://www.telegraph.co.uk/news/not-ours/"],
        explanation="The photograph is mine.",
        external_id="second",
    ).case
    html = client_for(rita).get(page_url(case)).content.decode()

    # The request: explanation, the statements sworn with their wording and its version.
    assert "The photograph is mine." in html
    assert f"wording version {STATEMENTS_VERSION}" in html
    for key in case.statements:
        assert escape(STATEMENTS[key]) in html
    # Each URL: our copy, its primary source, its state.
    assert f'href="/a/{item.slug}/"' in html
    assert f'href="{item.source_url}"' in html
    assert html.count('data-testid="target-state"') == 3
    assert "not ours" in html
    # The requester: contact (staff-only), history with outcomes, unfounded count, warning.
    assert "owner@example.org" in html
    assert earlier.reference in html
    assert "closed: rejected 1" in html
    assert 'data-testid="unfounded-count">2<' in html
    assert 'data-testid="requester-warned"' in html
    # The audit timeline, its chain verified.
    assert 'data-testid="chain-verified"' in html
    assert "case.received" in html
    assert "case.in_review" in html
    # The decisions, each with its statement of reasons prefilled from the basis's template.
    for name in ("approve", "reject", "per_url"):
        assert f'data-testid="decide-{name}"' in html
    assert "declared under oath that they own the content" in html
    assert "Article 21" in html
    # Nothing a reviewer may not do is offered.
    assert 'data-testid="decide-restore"' not in html
    assert 'data-testid="mark-unfounded"' not in html  # the case is not refused yet

    earlier_html = client_for(rita).get(page_url(earlier)).content.decode()
    assert 'data-testid="mark-unfounded"' in earlier_html
    assert 'data-testid="statements-of-reasons"' in earlier_html
    assert "Not the owner." in earlier_html


def test_a_broken_chain_is_shown(submit: Any, item: Any, rita: User) -> None:
    case = untrusted(submit, item)
    AuditStream.objects.filter(name=case.audit_stream()).update(head_hash="0" * 64)
    html = client_for(rita).get(page_url(case)).content.decode()
    assert 'data-testid="chain-broken"' in html
    assert "recorded head does not match" in html


def test_an_unknown_case_is_404(rita: User) -> None:
    client = client_for(rita)
    assert (
        client.get(reverse("admin:rights_takedownrequest_change", args=[999999])).status_code == 404
    )


# --- Query counts -------------------------------------------------------------------------------


def queries_for(client: Client, case: TakedownRequest) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(page_url(case)).status_code == 200
    return len(ctx.captured_queries)


MAX_QUERIES = 12


def test_queries_do_not_grow_with_urls_or_history(
    rita: User, django_assert_max_num_queries: Any
) -> None:
    client = client_for(rita)
    small = case_with(1)
    big = case_with(20)
    # One earlier case, then ten.
    few = RequesterFactory.create()
    case_with(1, requester=few, state=CaseState.REJECTED)
    few_case = case_with(1, requester=few)
    many = RequesterFactory.create()
    for _ in range(10):
        case_with(2, requester=many, state=CaseState.REJECTED)
    many_case = case_with(1, requester=many)
    queries_for(client, small)  # warm the session and permission caches

    with django_assert_max_num_queries(MAX_QUERIES):
        client.get(page_url(big))
    counts = {
        name: queries_for(client, case)
        for name, case in [("1 url", small), ("20 urls", big), ("1 earlier", few_case)]
    }
    counts["10 earlier"] = queries_for(client, many_case)
    assert counts["1 url"] == counts["20 urls"]
    assert counts["1 earlier"] == counts["10 earlier"]
    assert max(counts.values()) <= MAX_QUERIES


# --- Decisions from the page --------------------------------------------------------------------


def test_a_reviewer_approves_with_the_template_statement(
    submit: Any, item: Any, rita: User
) -> None:
    case = untrusted(submit, item)
    client = client_for(rita)
    response = client.post(page_url(case), form_values(client, case, "approve"))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED
    sor = StatementOfReasons.objects.get(case=case)
    assert sor.measure == "removal"
    assert sor.decided_by_id == rita.pk
    assert "approved" in client.get(page_url(case)).content.decode()


def test_a_reviewer_edits_the_statement_and_rejects(submit: Any, item: Any, rita: User) -> None:
    case = untrusted(submit, item)
    client = client_for(rita)
    data = form_values(client, case, "reject")
    data["reject-reasons"] = "The requester is not the owner: the byline names another."
    data["reject-facts"] = "Edited facts."
    data["reject-ground"] = "copyright"
    client.post(page_url(case), data)
    case.refresh_from_db()
    assert case.state == CaseState.REJECTED
    assert case.decision_reasons == data["reject-reasons"]
    sor = StatementOfReasons.objects.get(case=case)
    assert (sor.facts, sor.measure) == ("Edited facts.", "no_action")


def test_empty_reasons_are_shown_next_to_the_field(submit: Any, item: Any, rita: User) -> None:
    case = untrusted(submit, item)
    client = client_for(rita)
    data = form_values(client, case, "reject")
    data["reject-reasons"] = "  "
    response = client.post(page_url(case), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="field-error-reject-reasons"' in html
    assert 'aria-describedby="id_reject-reasons-error"' in html
    assert data["reject-facts"] in html  # what was typed is kept
    case.refresh_from_db()
    assert case.state == CaseState.IN_REVIEW
    assert not StatementOfReasons.objects.exists()


def test_the_template_placeholder_is_refused_on_the_page(
    submit: Any, item: Any, rita: User
) -> None:
    case = untrusted(submit, item)
    client = client_for(rita)
    response = client.post(page_url(case), form_values(client, case, "reject"))
    assert response.status_code == 200
    assert "replace the template" in response.content.decode()
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.IN_REVIEW


def test_a_reviewer_decides_each_url(submit: Any, outlet: Any, rita: User) -> None:
    first, second = ContentItemFactory.create_batch(2, outlet=outlet)
    case = submit(urls=[first.source_url, second.source_url]).case
    keep, gone = Target.objects.filter(case=case).order_by("pk")
    client = client_for(rita)
    data = form_values(client, case, "per_url")
    data["per_url-reasons"] = "Only the second article is the requester's."
    data[f"outcome-{gone.pk}"] = "remove"

    undecided = client.post(page_url(case), data)
    assert undecided.status_code == 200
    assert "1 still without a decision" in undecided.content.decode()
    assert f'name="outcome-{gone.pk}" value="remove" checked' in undecided.content.decode()

    data[f"outcome-{keep.pk}"] = "reject"
    assert client.post(page_url(case), data).status_code == 302
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    states = dict(Target.objects.filter(case=case).values_list("pk", "state"))
    assert states == {keep.pk: TargetState.REJECTED, gone.pk: TargetState.REMOVED}
    assert StatementOfReasons.objects.get(case=case).measure == "partial"


def test_a_reviewer_cannot_restore_and_a_lead_can(
    submit: Any, item: Any, rita: User, lena: User
) -> None:
    case = trusted(submit, item)
    drive(case)
    data = {
        "decision": "restore",
        "restore-ground": "copyright",
        "restore-facts": "Removed on a trusted request.",
        "restore-reasons": "Removed in error: the desk asked for another article.",
        "restore-redress": "Article 21 bodies and the courts.",
    }
    reviewer = client_for(rita)
    assert 'data-testid="decide-restore"' not in reviewer.get(page_url(case)).content.decode()
    assert reviewer.post(page_url(case), data).status_code == 403
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REMOVED

    lead = client_for(lena)
    assert 'data-testid="decide-restore"' in lead.get(page_url(case)).content.decode()
    assert lead.post(page_url(case), data).status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.RESTORED
    sor = StatementOfReasons.objects.get(case=case, measure="restoration")
    assert sor.decided_by_id == lena.pk


def test_the_first_decider_cannot_decide_the_appeal(
    submit: Any, item: Any, rita: User, colin: User
) -> None:
    case = untrusted(submit, item)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner.")
    requester.case_appeal(case=case, reasons="I am the owner.", actor="requester:1")
    first, other = client_for(rita), client_for(colin)
    shown = first.get(page_url(case)).content.decode()
    assert 'data-testid="decide-' not in shown  # no decision offered
    assert "This appeal is against your own decision" in shown
    # A decision posted anyway (the colleague's form, say) is refused, in words.
    values = form_values(other, case, "approve")
    refused = first.post(page_url(case), values)
    assert refused.status_code == 200
    assert "someone other than the first decider" in refused.content.decode()
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.APPEALED

    assert other.post(page_url(case), values).status_code == 302
    case.refresh_from_db()
    assert case.state == CaseState.APPROVED
    assert StatementOfReasons.objects.get(case=case, round=1).decided_by_id == colin.pk


def test_a_refused_decision_is_a_message_never_a_500(submit: Any, item: Any, rita: User) -> None:
    case = untrusted(submit, item)
    client = client_for(rita)
    data = form_values(client, case, "approve")
    review.case_approve(case=case, user_id=rita.pk)  # meanwhile, in another tab
    response = client.post(page_url(case), data)
    assert response.status_code == 200
    assert "cannot go from" in response.content.decode()
    assert client.post(page_url(case), {"decision": "nonsense"}).status_code == 200


def test_staff_without_the_permission_cannot_decide(submit: Any, item: Any) -> None:
    admin = staff_in("admin", "ada")
    case = untrusted(submit, item)
    client = client_for(admin)
    html = client.get(page_url(case)).content.decode()
    assert 'data-testid="decide-approve"' not in html
    assert "Your role does not decide cases: a reviewer or a lead does." in html
    assert client.post(page_url(case), {"decision": "approve"}).status_code == 403
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.IN_REVIEW


def test_mark_manifestly_unfounded(submit: Any, item: Any, rita: User) -> None:
    case = untrusted(submit, item)
    review.case_reject(case=case, user_id=rita.pk, reasons="Not the owner.")
    client = client_for(rita)
    # Unconfirmed (a stray click, or the box left clear): nothing is counted.
    unconfirmed = client.post(page_url(case), {"decision": "unfounded"}, follow=True)
    assert "tick the box to confirm" in unconfirmed.content.decode()
    assert Requester.objects.get(pk=case.requester_id).unfounded_count == 0
    confirmed = {"decision": "unfounded", "confirm": "yes"}
    assert client.post(page_url(case), confirmed).status_code == 302
    assert Requester.objects.get(pk=case.requester_id).unfounded_count == 1
