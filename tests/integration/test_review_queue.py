"""The review queue: open cases by deadline, the ladder at a glance, filters, search, claim and
assign, decisions on many cases after a confirmation page, and a query count that does not grow
with the cases."""

from __future__ import annotations

import importlib
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rights import audit
from rights.errors import DomainError, TransitionNotAllowed
from rights.models import AuditEvent, LadderRung, TakedownRequest
from rights.services import review
from rights.states import CaseState, TargetState
from tests.factories import TakedownRequestFactory, TargetFactory

QUEUE = reverse("admin:rights_takedownrequest_changelist")
DAY = timedelta(days=1)


def ensure_roles() -> None:
    """The groups migration 0008 makes, with what 0012 and 0013 add to them (webhook retries,
    the mailbox's permissions); a transactional test elsewhere may have flushed them, or re-made
    them from 0008 alone."""
    schema_editor = SimpleNamespace(connection=connection)
    if Group.objects.filter(name__in=["reviewer", "lead", "admin"]).count() < 3:
        migration = importlib.import_module("rights.migrations.0008_staff_roles_and_assignee")
        migration.roles_create(django_apps, schema_editor)
    # Later migrations' grants to the roles.
    webhooks = importlib.import_module("rights.migrations.0012_webhooks")
    webhooks.grants_add(django_apps, schema_editor)
    mailbox = importlib.import_module("rights.migrations.0013_mailbox")
    mailbox.mail_roles_create(django_apps, schema_editor)


def staff_in(role: str, username: str) -> User:
    ensure_roles()
    user: User = get_user_model().objects.create_user(
        username, password="a long and unguessable passphrase", is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def reviewer(db: None) -> User:
    return staff_in("reviewer", "rita")


@pytest.fixture
def colleague(db: None) -> User:
    return staff_in("reviewer", "colin")


@pytest.fixture
def rita(reviewer: User) -> Client:
    client = Client()
    client.force_login(reviewer)
    return client


def case_with(
    *,
    received_ago: timedelta,
    urls: int = 1,
    state: str = CaseState.OPEN,
    **fields: Any,
) -> TakedownRequest:
    """A case received `received_ago` (its 24 h clock started then), naming `urls` URLs."""
    received = timezone.now() - received_ago
    case = TakedownRequestFactory.create(received_at=received, state=state, **fields)
    for _ in range(urls):
        TargetFactory.create(case=case)
    return case


def rung(case: TakedownRequest, name: str, round_: int = 0) -> LadderRung:
    now = timezone.now()
    return LadderRung.objects.create(
        case=case, rung=name, round=round_, fired_at=now, due_at=now, pending_targets=1
    )


def listed(client: Client, **params: str) -> list[str]:
    response = client.get(QUEUE, params)
    assert response.status_code == 200
    return [case.reference for case in response.context["cl"].result_list]


def row_of(client: Client, reference: str, **params: str) -> str:
    """The HTML of one row of the queue."""
    html = client.get(QUEUE, params).content.decode()
    start = html.index(f">{reference}</a>")
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def action(client: Client, name: str, cases: list[TakedownRequest], **extra: Any) -> Any:
    """Choose an action on the queue page for `cases`, as the action bar posts it."""
    data = {"action": name, "index": "0", "_selected_action": [c.pk for c in cases], **extra}
    return client.post(QUEUE, data)


def confirm(client: Client, name: str, cases: list[TakedownRequest], **extra: Any) -> Any:
    """Press the confirmation page's button (which posts without `index`)."""
    data = {"action": name, "post": "yes", "_selected_action": [c.pk for c in cases], **extra}
    return client.post(QUEUE, data)


# --- Order and columns --------------------------------------------------------------------------


def test_open_cases_by_deadline_soonest_first(rita: Client) -> None:
    later = case_with(received_ago=timedelta(hours=1))
    soonest = case_with(received_ago=timedelta(hours=20))
    overdue = case_with(received_ago=timedelta(hours=30))
    middle = case_with(received_ago=timedelta(hours=10))
    closed = case_with(received_ago=timedelta(hours=23), state=CaseState.REJECTED)
    unconfirmed = TakedownRequestFactory.create(
        state=CaseState.AWAITING_CONFIRMATION,
        clock_started_at=None,
        deadline_at=None,
        deadline_seconds=None,
    )

    assert listed(rita) == [r.reference for r in (overdue, soonest, middle, later)]
    assert closed.reference not in listed(rita)
    assert unconfirmed.reference not in listed(rita)
    assert closed.reference in listed(rita, show="closed")
    assert listed(rita, show="unconfirmed") == [unconfirmed.reference]
    assert len(listed(rita, show="all")) == 6


def test_each_row_shows_what_a_reviewer_needs(rita: Client, colleague: User) -> None:
    case = case_with(
        received_ago=timedelta(hours=20, minutes=30),
        urls=3,
        basis="privacy",
        channel="web",
        trusted=False,
        assignee=colleague,
    )
    rung(case, "reminder")
    rung(case, "escalation")
    row = row_of(rita, case.reference)
    assert "3 h 29 min left" in row or "3 h 30 min left" in row
    assert ">escalation<" in row
    assert ">privacy<" in row
    assert ">Web form<" in row
    assert ">3<" in row  # URLs
    assert ">colin<" in row
    assert 'alt="False"' in row  # not trusted

    late = case_with(received_ago=timedelta(hours=25), trusted=True)
    for name in ("reminder", "escalation", "failsafe", "breach"):
        rung(late, name)
    row = row_of(rita, late.reference)
    assert "overdue by 1 h 0 min" in row
    # The cell carries its seconds for the page's countdown, and stands out when overdue.
    assert re.search(r'class="time-left overdue" data-left="-36\d\d">overdue by', row)
    assert "<strong>breached</strong>" in row
    assert 'alt="True"' in row

    fresh = case_with(received_ago=timedelta(minutes=5))
    assert ">none<" in row_of(rita, fresh.reference)


def test_the_ladder_stage_is_the_current_rounds(rita: Client) -> None:
    """An appeal climbs the ladder again: round 0's breach says nothing about round 1."""
    case = case_with(received_ago=timedelta(hours=1), state=CaseState.APPEALED, appeal_round=1)
    for name in ("reminder", "escalation", "failsafe", "breach"):
        rung(case, name, round_=0)
    rung(case, "reminder", round_=1)
    assert ">reminder<" in row_of(rita, case.reference)


# --- Filters and search ---------------------------------------------------------------------


def test_filters_mine_overdue_appeals(rita: Client, reviewer: User, colleague: User) -> None:
    mine = case_with(received_ago=timedelta(hours=2), assignee=reviewer)
    theirs = case_with(received_ago=timedelta(hours=3), assignee=colleague)
    nobodys = case_with(received_ago=timedelta(hours=4))
    overdue = case_with(received_ago=timedelta(hours=26))
    overdue_closed = case_with(received_ago=timedelta(hours=30), state=CaseState.REMOVED)
    appealed = case_with(received_ago=timedelta(hours=1), state=CaseState.APPEALED, appeal_round=1)
    appeal_failsafe = case_with(
        received_ago=timedelta(hours=23),
        state=CaseState.DISABLED_PENDING_REVIEW,
        appeal_round=1,
    )
    appeal_closed = case_with(
        received_ago=timedelta(hours=5), state=CaseState.REJECTED, appeal_round=1
    )

    assert listed(rita, mine="1") == [mine.reference]
    assert set(listed(rita, mine="nobody")) == {
        r.reference for r in (nobodys, overdue, appealed, appeal_failsafe)
    }
    assert theirs.reference not in listed(rita, mine="1")
    assert listed(rita, overdue="1") == [overdue.reference]
    assert overdue_closed.reference not in listed(rita, overdue="1", show="all")
    assert listed(rita, appeals="1") == [appeal_failsafe.reference, appealed.reference]
    assert appeal_closed.reference not in listed(rita, appeals="1", show="all")
    assert listed(rita, state__exact="appealed") == [appealed.reference]
    assert set(listed(rita, channel__exact="email")) >= {mine.reference}
    assert listed(rita, basis="privacy") == []


def test_search_by_reference_url_and_requester_email(rita: Client) -> None:
    case = case_with(received_ago=timedelta(hours=2), urls=2)
    other = case_with(received_ago=timedelta(hours=3))
    closed = case_with(received_ago=timedelta(hours=3), state=CaseState.REMOVED)
    url = case.targets.order_by("id")[1].url

    assert listed(rita, q=url) == [case.reference]
    assert listed(rita, q=url.rsplit("/", 2)[-2] + "/") == [case.reference]  # part of a URL
    assert listed(rita, q=case.requester.email.upper()) == [case.reference]
    assert listed(rita, q=other.reference.lower()) == [other.reference]
    # A search looks through every case, closed ones included.
    assert listed(rita, q=closed.reference) == [closed.reference]
    assert listed(rita, q="nobody@nowhere.example") == []
    # Without its prefix, as read out on the phone.
    assert listed(rita, q=other.reference.removeprefix("TD-").lower()) == [other.reference]
    # By the original article's URL, and by our copy's slug.
    target = case.targets.order_by("id")[0]
    assert target.content_item is not None
    assert listed(rita, q=target.content_item.source_url) == [case.reference]
    assert listed(rita, q=f"/a/{target.content_item.slug}/".strip("/a")) == [case.reference]
    # By part of the requester's address, or their name.
    domain = case.requester.email.split("@")[1]
    assert case.reference in listed(rita, q=f"@{domain}")
    assert case.reference in listed(rita, q=case.requester.name)


def test_the_queue_keeps_the_requester_email_off(rita: Client) -> None:
    case = case_with(received_ago=timedelta(hours=2))
    html = rita.get(QUEUE).content.decode()
    assert case.reference in html
    assert case.requester.email not in html


# --- Claim and assign ---------------------------------------------------------------------------


def test_claim_assigns_to_me_and_audits_it(rita: Client, reviewer: User) -> None:
    cases = [case_with(received_ago=timedelta(hours=n)) for n in (1, 2)]
    response = action(rita, "claim_selected", cases)
    assert response.status_code == 302
    for case in cases:
        case.refresh_from_db()
        assert case.assignee_id == reviewer.pk
        event = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.assigned")
        assert event.actor == f"staff:{reviewer.pk}"
        assert event.data == {"assignee": f"staff:{reviewer.pk}", "previous": None}
    assert listed(rita, mine="1") == [c.reference for c in reversed(cases)]
    assert audit.verify().events == AuditEvent.objects.count()


def test_assign_to_a_colleague_through_a_page(
    rita: Client, reviewer: User, colleague: User
) -> None:
    case = case_with(received_ago=timedelta(hours=1), assignee=reviewer)
    admin_only = staff_in("admin", "ada")  # may not decide: not someone to assign to

    page = action(rita, "assign_selected", [case])
    assert page.status_code == 200
    html = page.content.decode()
    assert case.reference in html
    assert ">colin<" in html
    assert "ada" not in html
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.OPEN

    refused = confirm(rita, "assign_selected", [case], assignee=str(admin_only.pk))
    assert refused.status_code == 200
    assert "Choose a colleague" in refused.content.decode()
    case.refresh_from_db()
    assert case.assignee_id == reviewer.pk

    done = confirm(rita, "assign_selected", [case], assignee=str(colleague.pk))
    assert done.status_code == 302
    case.refresh_from_db()
    assert case.assignee_id == colleague.pk
    event = AuditEvent.objects.filter(action="case.assigned").latest("id")
    assert event.data == {"assignee": f"staff:{colleague.pk}", "previous": f"staff:{reviewer.pk}"}

    confirm(rita, "assign_selected", [case], assignee="nobody")
    case.refresh_from_db()
    assert case.assignee_id is None


def test_case_assign_refuses_closed_cases_and_non_deciders(reviewer: User, colleague: User) -> None:
    closed = case_with(received_ago=timedelta(hours=1), state=CaseState.REJECTED)
    with pytest.raises(DomainError, match="closed"):
        review.case_assign(case=closed, assignee_id=colleague.pk, actor_id=reviewer.pk)
    open_case = case_with(received_ago=timedelta(hours=1))
    outsider = get_user_model().objects.create_user("outsider", is_staff=True)
    with pytest.raises(DomainError, match="may decide"):
        review.case_assign(case=open_case, assignee_id=outsider.pk, actor_id=reviewer.pk)
    events = AuditEvent.objects.filter(action="case.assigned").count()
    review.case_assign(case=open_case, assignee_id=None, actor_id=reviewer.pk)  # already nobody
    assert AuditEvent.objects.filter(action="case.assigned").count() == events == 0


# --- Decisions on many cases ----------------------------------------------------------------


def test_bulk_approve_three_cases_through_the_confirmation_page(
    rita: Client, reviewer: User
) -> None:
    cases = [case_with(received_ago=timedelta(hours=n), urls=2) for n in (3, 2, 1)]

    page = action(rita, "approve_selected", cases)
    assert page.status_code == 200
    assert page.templates[0].name == "rights/admin/case_decision_confirm.html"
    html = page.content.decode()
    for case in cases:
        assert f'data-reference="{case.reference}"' in html
    assert html.count("Approved: the content its 2 URLs name is taken down") == 3
    assert "Yes, approve 3 cases" in html
    assert not AuditEvent.objects.filter(action="case.approved").exists()  # nothing yet
    assert {c.state for c in TakedownRequest.objects.all()} == {CaseState.OPEN}

    done = confirm(rita, "approve_selected", cases)
    assert done.status_code == 200
    assert done.templates[0].name == "rights/admin/case_decision_done.html"
    assert "3 cases approved" in done.content.decode()
    for case in cases:
        case.refresh_from_db()
        assert case.state == CaseState.APPROVED
        assert case.decided_by_id == reviewer.pk
        event = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.approved")
        assert event.actor == f"staff:{reviewer.pk}"
    assert audit.verify().events == AuditEvent.objects.count()


def test_bulk_decisions_report_what_could_not_be_decided_and_do_the_rest(
    rita: Client, reviewer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    fine = case_with(received_ago=timedelta(hours=3))
    closed = case_with(received_ago=timedelta(hours=2), state=CaseState.REJECTED)
    my_own_appeal = case_with(
        received_ago=timedelta(hours=1),
        state=CaseState.APPEALED,
        appeal_round=1,
        first_decided_by=reviewer,
    )
    raced = case_with(received_ago=timedelta(hours=4))
    cases = [fine, closed, my_own_appeal, raced]

    page = action(rita, "approve_selected", cases).content.decode()
    assert "Cannot be approved:</strong> the case is closed: rejected" in page
    assert "someone other than the first decider" in page
    assert "Yes, approve 2 cases" in page

    # A case that changes under us between the two pages: the service refuses, and says so.
    real_approve = review.case_approve

    def approve(*, case: TakedownRequest, user_id: int) -> TakedownRequest:
        if case.pk == raced.pk:
            raise TransitionNotAllowed("a case cannot go from 'withdrawn' to 'approved'")
        return real_approve(case=case, user_id=user_id)

    monkeypatch.setattr(review, "case_approve", approve)
    done = confirm(rita, "approve_selected", cases)
    html = done.content.decode()
    assert "1 case approved; 3 could not be" in html
    outcomes = {o.case.pk: o for o in done.context["outcomes"]}
    assert outcomes[fine.pk].done
    assert not outcomes[closed.pk].done
    assert "first decider" in outcomes[my_own_appeal.pk].message
    assert "from 'withdrawn' to 'approved'" in outcomes[raced.pk].message
    states = dict(TakedownRequest.objects.values_list("pk", "state"))
    assert states == {
        fine.pk: CaseState.APPROVED,
        closed.pk: CaseState.REJECTED,
        my_own_appeal.pk: CaseState.APPEALED,
        raced.pk: CaseState.OPEN,
    }


def test_bulk_reject_needs_one_statement_of_reasons(rita: Client, reviewer: User) -> None:
    cases = [case_with(received_ago=timedelta(hours=n)) for n in (2, 1)]

    page = action(rita, "reject_selected", cases)
    assert page.status_code == 200
    assert 'name="reasons"' in page.content.decode()

    refused = confirm(rita, "reject_selected", cases, reasons="   ")
    assert refused.status_code == 200
    assert refused.templates[0].name == "rights/admin/case_decision_confirm.html"
    assert "Write the statement of reasons" in refused.content.decode()
    assert {c.state for c in TakedownRequest.objects.all()} == {CaseState.OPEN}
    assert not AuditEvent.objects.filter(action="case.rejected").exists()

    reasons = "The articles are the outlet's own and were republished under its licence."
    done = confirm(rita, "reject_selected", cases, reasons=reasons)
    assert "2 cases rejected" in done.content.decode()
    for case in cases:
        case.refresh_from_db()
        assert case.state == CaseState.REJECTED
        assert case.decision_reasons == reasons
        assert {t.state for t in case.targets.all()} == {TargetState.REJECTED}
        event = AuditEvent.objects.get(stream=f"case:{case.reference}", action="case.rejected")
        assert event.actor == f"staff:{reviewer.pk}"
        assert reasons not in str(event.data)  # the trail keeps a digest only


# --- No N+1 ---------------------------------------------------------------------------------


def _queue_queries(client: Client) -> tuple[int, int]:
    client.get(QUEUE)  # warm the session, content types and permission caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE)
    assert response.status_code == 200
    return len(queries), response.context["cl"].result_count


def _busy_cases(count: int, assignees: list[User]) -> None:
    for n in range(count):
        case = case_with(
            received_ago=timedelta(hours=n % 30),
            urls=2,
            assignee=assignees[n % len(assignees)],
            appeal_round=n % 2,
            state=CaseState.APPEALED if n % 2 else CaseState.OPEN,
        )
        rung(case, "reminder", round_=case.appeal_round)


def test_queue_query_count_is_the_same_for_5_and_50_cases(
    rita: Client, reviewer: User, colleague: User
) -> None:
    _busy_cases(5, [reviewer, colleague])
    few, shown = _queue_queries(rita)
    assert shown == 5
    _busy_cases(45, [reviewer, colleague])
    many, shown = _queue_queries(rita)
    assert shown == 50
    assert many == few
    assert few <= 12, few
