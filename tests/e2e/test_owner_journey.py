"""The owner's whole journey in a real browser, with a real worker and beat enforcing the clock.

An owner opens an article, follows the notice's link, fills in the form (first with mistakes),
reads the confirmation mail the worker sent, confirms, lands on their status page and watches it
change as the worker acts: a trusted request is removed within seconds (the article answers
410); an untrusted one nobody decides is disabled by the fail-safe before its deadline, then
rejected by staff with reasons, then appealed from the same page. Every page passes axe-core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.models import ContentItem, TakedownRequest
from rights.services import review
from rights.states import CaseState, ContentStatus
from tests.e2e.conftest import accessible, local_context
from tests.factories import ContentItemFactory, telegraph
from tests.integration.test_review_queue import staff_in
from tests.reliability.conftest import requires_postgres
from tests.stack import Stack, wait_for

# Long enough for a person-paced form in a loaded CI machine, short enough to watch the
# fail-safe (at 92 %) act within the test.
DEADLINE = 40
CONFIRM_LINK = re.compile(r"https?://\S+/confirm/\S+/")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.stack,
    requires_postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = local_context(browser, viewport={"width": 390, "height": 844})  # a phone
    yield context.new_page()
    context.close()


@pytest.fixture
def stack_deadline() -> int:
    return DEADLINE


@pytest.fixture
def article(transactional_db: None) -> ContentItem:
    return ContentItemFactory.create(
        outlet=telegraph(),
        slug="hedgehog-crossing-saves-village-fete",
        source_url="https://www.telegraph.co.uk/news/2026/11/20/hedgehog-crossing-saves-village-fete/",
        title="Hedgehog crossing saves village fete from cancellation",
    )


def confirmation_link(stack: Stack, email: str) -> str:
    found: list[str] = []

    def mailed() -> bool:
        for text in stack.mails():
            if f"To: {email}" in text and (match := CONFIRM_LINK.search(text)):
                found.append(match.group(0))
                return True
        return False

    wait_for(mailed, timeout=30, what=f"the confirmation mail to {email}")
    return found[0]


def request_removal(page: Page, live_server: LiveServer, item: ContentItem, email: str) -> None:
    """From the article, through the form (first with mistakes), to "check your email"."""
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    accessible(page)
    page.get_by_test_id("request-removal").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask us to remove content")
    urls = page.get_by_label("Web addresses of the articles")
    expect(urls).to_have_value(item.public_url)
    accessible(page)

    # Mistakes first: no basis, no statements, no name, a malformed address.
    page.get_by_label("Email address").fill("not-an-address")
    page.get_by_test_id("send-request").click()
    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    for message in (
        "Choose the legal basis",
        "Enter your name",
        "Enter an email address in the correct format",
    ):
        expect(summary).to_contain_text(message)
    expect(page.get_by_label("Email address")).to_have_attribute("aria-invalid", "true")
    expect(urls).to_have_value(item.public_url)  # everything typed is kept
    expect(page.get_by_label("Email address")).to_have_value("not-an-address")
    accessible(page)
    assert not TakedownRequest.objects.exists()

    page.get_by_label("Copyright", exact=True).check()
    for box in page.locator("fieldset[data-basis='copyright'] input[type=checkbox]").all():
        box.check()
    page.get_by_label("Explanation").fill("We wrote this article and did not licence it.")
    page.get_by_label("Full name").fill("Desk Editor")
    page.get_by_label("Email address").fill(email)
    page.get_by_test_id("send-request").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check your email")
    accessible(page)


def confirm(page: Page, stack: Stack, email: str) -> None:
    link = confirmation_link(stack, email)
    page.goto(link)
    accessible(page)
    # Opening the link changes nothing: mail scanners open every link.
    assert TakedownRequest.objects.get().state == CaseState.AWAITING_CONFIRMATION
    buttons = page.locator("main form button")
    expect(buttons).to_have_count(1)
    buttons.click()
    expect(page).to_have_url(re.compile(r"/status/[^/]+/$"))


def test_a_trusted_owner_sees_the_article_removed_within_seconds(
    page: Page, live_server: LiveServer, stack: Stack, article: ContentItem
) -> None:
    request_removal(page, live_server, article, "desk@telegraph.co.uk")
    confirm(page, stack, "desk@telegraph.co.uk")
    region = page.get_by_test_id("case-state")
    # The page updates itself as the worker acts: no reload.
    expect(region).to_contain_text("removed", timeout=30_000)
    expect(page.get_by_test_id("targets")).to_contain_text("Removed")
    accessible(page)
    response = page.goto(f"{live_server.url}{article.get_absolute_url()}")
    assert response is not None
    assert response.status == 410
    accessible(page)


def test_an_undecided_request_is_disabled_then_rejected_then_appealed(
    page: Page, live_server: LiveServer, stack: Stack, article: ContentItem
) -> None:
    request_removal(page, live_server, article, "someone@example.net")
    confirm(page, stack, "someone@example.net")
    case = TakedownRequest.objects.get()
    assert case.deadline_at is not None
    expect(page.get_by_test_id("case-state")).to_contain_text("review")
    expect(page.get_by_test_id("deadline")).to_be_visible()

    # Nobody decides: the fail-safe takes the content offline before the deadline.
    expect(page.get_by_test_id("case-state")).to_contain_text(
        "taken offline", timeout=DEADLINE * 1000
    )
    article.refresh_from_db()
    assert article.status == ContentStatus.DISABLED
    case.refresh_from_db()
    assert case.state == CaseState.DISABLED_PENDING_REVIEW
    disabled_at = article.updated_at
    assert disabled_at < case.deadline_at

    # Staff reject it with reasons; the page shows the statement of reasons and the way to appeal.
    reviewer = staff_in("reviewer", "first-reviewer")
    review.case_reject(case=case, user_id=reviewer.pk, reasons="The article is the outlet's own.")
    expect(page.get_by_test_id("case-state")).to_contain_text("not granted", timeout=15_000)
    page.reload()
    expect(page.get_by_test_id("decision")).to_contain_text("The article is the outlet's own.")
    accessible(page)
    wait_for(
        lambda: ContentItem.objects.get(pk=article.pk).status == ContentStatus.RESTORED,
        timeout=20,
        what="the content to come back after the rejection",
    )

    page.get_by_role("link", name=re.compile("Appeal", re.I)).click()
    accessible(page)
    page.get_by_label(re.compile("why", re.I)).fill("I hold the copyright; here is the proof.")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/status/[^/]+/$"))
    expect(page.get_by_test_id("case-state")).to_contain_text("Appeal")
    accessible(page)
    case.refresh_from_db()
    assert case.state == CaseState.APPEALED
    assert case.appeal_round == 1
