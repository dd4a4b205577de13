"""The staff console in a real browser, with a real worker enforcing what staff decide.

A reviewer logs in, finds the queue ordered by deadline with the time left on each case, opens
the most urgent one and rejects it with the template's statement of reasons (their own words in
place of its `[edit: ...]` marker), which the requester then reads in their mail and on their
status page; bulk-approves three more after the confirmation page, and the worker removes them
(their articles answer 410). The reviewer is offered neither the suspension nor the erasure of a
requester, nor the SLA dashboard; a lead opens the dashboard and the suspension's confirmation,
an admin the erasure's. Every console page passes axe-core.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights import links
from rights.models import ContentItem, Requester, TakedownRequest
from rights.services.intake import Submission, takedown_submit
from rights.statements import REQUIRED_STATEMENTS
from rights.states import CaseState, ContentStatus
from tests.e2e.conftest import accessible, local_context
from tests.factories import ContentItemFactory, telegraph
from tests.reliability.conftest import requires_postgres
from tests.stack import Stack, wait_for

# Long enough that no rung of the ladder (reminder, escalation, fail-safe) fires during the test:
# the queue shows the cases as a reviewer finds them, and only staff decisions move them.
DEADLINE = 3600
PASSWORD = "a long and unguessable passphrase"
REASONS_MARKER = re.compile(r"\[edit:[^\]]*\]")
# A word the mail cannot wrap or encode: found there, the reviewer's own reasons reached it.
OWN_WORDS = "the article reports a public meeting, quoted with attribution (ref-Q7K2)"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.stack,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
]


def staff(username: str, role: str) -> Any:
    """A staff account in one role, as `manage.py staff_user create NAME --role ROLE` makes it.

    The groups come from migration 0008's data. A transactional test's database is flushed
    after each test (pytest-django's `transactional_db`, Django's TransactionTestCase), which
    empties every table, these groups included; the flush's post_migrate signal re-creates the
    content types and permissions but not the groups (a data migration is not re-run). So the
    groups are re-created here through the function the migration itself runs; it is idempotent
    (get_or_create, then the permissions set). `serialized_rollback` would also bring them back,
    at the cost of serialising the whole database before the first test.
    """
    if Group.objects.filter(name__in=["reviewer", "lead", "admin"]).count() < 3:
        migration = importlib.import_module("rights.migrations.0008_staff_roles_and_assignee")
        migration.roles_create(django_apps, SimpleNamespace(connection=connection))
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def stack_deadline() -> int:
    return DEADLINE


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = local_context(browser, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def submit(item: ContentItem, n: int) -> TakedownRequest:
    """An untrusted request by email: it waits in the queue for a person."""
    result = takedown_submit(
        submission=Submission(
            channel="email",
            email=f"requester{n}@example.org",
            name=f"Requester {n}",
            basis="copyright",
            urls=[item.source_url],
            explanation="I wrote this and did not licence it.",
            statements=list(REQUIRED_STATEMENTS["copyright"]),
            external_id=f"<console-e2e-{n}@example.org>",
        )
    )
    case = result.case
    assert case.state in (CaseState.OPEN, CaseState.IN_REVIEW), case.state
    return case


def log_in(page: Page, live_server: LiveServer, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    accessible(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def reject_with_template(page: Page) -> None:
    """The reject form as prefilled from the basis's template, the marker replaced by the
    reviewer's own words; nothing else is typed."""
    form = page.get_by_test_id("decide-reject")
    if form.get_attribute("open") is None:
        form.locator("summary").click()
    reasons = form.get_by_label("Reasons (the requester reads these)")
    template = reasons.input_value()
    assert REASONS_MARKER.search(template), template
    for name in ("Legal or contractual ground", "Facts and circumstances relied on"):
        assert form.get_by_label(name).input_value().strip()
    assert form.get_by_label("Options for redress").input_value().strip()
    reasons.fill(REASONS_MARKER.sub(OWN_WORDS, template))
    form.get_by_role("button", name="Reject").click()


def action_offered(page: Page, name: str) -> bool:
    return page.locator(f"select[name=action] option[value={name}]").count() > 0


def run_action(page: Page, name: str, references_or_rows: list[str]) -> None:
    for row in references_or_rows:
        page.locator(f"#result_list tr:has(a:text-is('{row}')) input.action-select").check()
    page.locator("select[name=action]").select_option(name)
    page.locator("#changelist-form button[name=index]").click()


def post_action(page: Page, url: str, action: str, pk: int) -> int:
    """A changelist action posted straight to the server, as a crafted form would, with the
    page's CSRF token; redirects not followed. Returns the status code: an action the user is
    not offered is refused (403)."""
    page.goto(url)
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    response = page.request.post(
        url,
        form={
            "csrfmiddlewaretoken": token,
            "action": action,
            "_selected_action": str(pk),
            "index": "0",
        },
        headers={"Referer": url},
        max_redirects=0,
    )
    return response.status


def test_a_reviewer_clears_the_queue_and_a_lead_works_the_requesters(
    context: BrowserContext, live_server: LiveServer, stack: Stack
) -> None:
    outlet = telegraph()
    items = [ContentItemFactory.create(outlet=outlet) for _ in range(5)]
    cases = [submit(item, n) for n, item in enumerate(items)]
    staff("rosa", "reviewer")
    staff("lee", "lead")
    staff("ada", "admin")
    page = context.new_page()

    # The queue, where a reviewer lands: soonest deadline first, the time left on each,
    # counting down while the page is open (the page's clock is the test's to move).
    page.clock.install()
    log_in(page, live_server, "rosa")
    expect(page).to_have_url(re.compile(r"/admin/rights/takedownrequest/$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(5)
    by_deadline = sorted(cases, key=lambda c: (c.deadline_at, c.pk))
    shown = [rows.nth(i).locator("th a").inner_text() for i in range(5)]
    assert shown == [c.reference for c in by_deadline]
    for i in range(5):
        expect(rows.nth(i).locator("td.field-time_left")).to_have_text(
            re.compile(r"^(59 min|1 h 0 min) left$")
        )
        expect(rows.nth(i).locator("td.field-ladder_stage")).to_have_text("none")
    accessible(page)
    page.clock.run_for("02:00")
    expect(rows.nth(0).locator("td.field-time_left")).to_have_text(
        re.compile(r"^(57|58) min left$")
    )

    # The most urgent case: opened from the queue, rejected with the template's reasons.
    first = by_deadline[0]
    rows.nth(0).locator("th a").click()
    expect(page.get_by_test_id("case-page")).to_be_visible()
    expect(page.get_by_test_id("case-state")).to_contain_text(re.compile("Open|In review"))
    accessible(page)
    reject_with_template(page)
    expect(page.locator(".messagelist")).to_be_visible()
    expect(page.get_by_test_id("case-state")).to_have_text("Closed: rejected")
    expect(page.get_by_test_id("statements-of-reasons")).to_contain_text(OWN_WORDS)
    accessible(page)

    # The requester reads the reasons in their mail and on their status page.
    def mailed() -> bool:
        return any(
            f"To: {first.requester.email}" in text and "ref-Q7K2" in text for text in stack.mails()
        )

    wait_for(mailed, timeout=30, what="the decision mail with the reasons")
    public = context.new_page()
    public.goto(links.status_url(first))
    expect(public.get_by_test_id("decision")).to_contain_text(OWN_WORDS)
    accessible(public)
    public.close()

    # Three more approved at once, after a page that says what will happen to each.
    page.goto(f"{live_server.url}/admin/rights/takedownrequest/")
    approved = by_deadline[1:4]
    run_action(page, "approve_selected", [c.reference for c in approved])
    expect(page.get_by_test_id("decision-plan").locator("tbody tr")).to_have_count(3)
    accessible(page)
    page.get_by_role("button", name="Yes, approve 3 cases").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("3 of 3 cases approved")
    accessible(page)
    approved_items = [items[cases.index(c)] for c in approved]
    wait_for(
        lambda: all(
            ContentItem.objects.get(pk=i.pk).status == ContentStatus.REMOVED for i in approved_items
        ),
        timeout=60,
        what="the worker to remove the three approved cases' content",
    )
    for item in approved_items:
        response = page.goto(f"{live_server.url}{item.get_absolute_url()}")
        assert response is not None
        assert response.status == 410
    untouched = items[cases.index(by_deadline[4])]
    response = page.goto(f"{live_server.url}{untouched.get_absolute_url()}")
    assert response is not None
    assert response.status == 200

    # Abuse controls, erasure and the dashboard are not a reviewer's.
    requesters = f"{live_server.url}/admin/rights/requester/"
    page.goto(requesters)
    accessible(page)
    assert not action_offered(page, "suspend_selected")
    assert not action_offered(page, "erase_selected")
    target = first.requester
    for action in ("suspend_selected", "erase_selected"):
        assert post_action(page, requesters, action, target.pk) == 403, action
    response = page.goto(f"{live_server.url}/admin/sla/")
    assert response is not None
    assert response.status == 403
    requester = Requester.objects.get(pk=target.pk)
    assert requester.suspended_at is None
    assert requester.erased_at is None
    context.clear_cookies()

    # A lead: the dashboard, and the suspension's confirmation page (not confirmed).
    log_in(page, live_server, "lee")
    expect(page.get_by_test_id("sla-dashboard-link")).to_be_visible()
    page.get_by_role("link", name=re.compile("^SLA dashboard")).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    accessible(page)
    page.goto(requesters)
    assert action_offered(page, "suspend_selected")
    assert not action_offered(page, "erase_selected")
    page.locator(f"#result_list input.action-select[value='{target.pk}']").check()
    page.locator("select[name=action]").select_option("suspend_selected")
    page.locator("#changelist-form button[name=index]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Suspend 1 requester?")
    accessible(page)
    context.clear_cookies()

    # An admin: erasure's confirmation page (not confirmed).
    log_in(page, live_server, "ada")
    page.goto(requesters)
    assert action_offered(page, "erase_selected")
    page.locator(f"#result_list input.action-select[value='{target.pk}']").check()
    page.locator("select[name=action]").select_option("erase_selected")
    page.locator("#changelist-form button[name=index]").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("1 requester?")
    accessible(page)
    assert Requester.objects.get(pk=target.pk).erased_at is None


def test_a_reviewer_is_refused_what_a_lead_may_open(
    context: BrowserContext, live_server: LiveServer, transactional_db: None
) -> None:
    item = ContentItemFactory.create(outlet=telegraph())
    submit(item, 99)
    requester = Requester.objects.get()
    staff("rosa", "reviewer")
    staff("lee", "lead")
    page = context.new_page()
    requesters = f"{live_server.url}/admin/rights/requester/"

    log_in(page, live_server, "rosa")
    response = page.goto(f"{live_server.url}/admin/sla/")
    assert response is not None
    assert response.status == 403
    page.goto(f"{live_server.url}/admin/")
    expect(page.get_by_test_id("sla-dashboard-link")).to_have_count(0)
    page.goto(requesters)
    assert not action_offered(page, "suspend_selected")
    assert not action_offered(page, "erase_selected")
    for action in ("suspend_selected", "erase_selected"):
        assert post_action(page, requesters, action, requester.pk) == 403, action
    context.clear_cookies()

    log_in(page, live_server, "lee")
    response = page.goto(f"{live_server.url}/admin/sla/")
    assert response is not None
    assert response.status == 200
    page.goto(requesters)
    page.locator(f"#result_list input.action-select[value='{requester.pk}']").check()
    page.locator("select[name=action]").select_option("suspend_selected")
    page.locator("#changelist-form button[name=index]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Suspend 1 requester?")
    assert post_action(page, requesters, "erase_selected", requester.pk) == 403
    requester.refresh_from_db()
    assert requester.suspended_at is None
    assert requester.erased_at is None
