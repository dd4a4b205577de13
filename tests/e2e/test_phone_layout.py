"""The owner's pages on a phone, in a real browser (Chromium via Playwright) against a live server.

Nothing is wider than the screen at 320 and 390 px, however long the addresses a page shows (our
copy's source, the URLs of a request, an address quoted in an error or in a decision's reasons),
and nothing a page loads fails (its icon included). The status page's script on the same phone:
the countdown ticks every second in the last ten minutes, and "This page updates itself" goes
when the case is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights import links
from rights.models import ContentItem, TakedownRequest
from rights.services import review
from rights.services.requester import case_withdraw
from tests.e2e.conftest import local_context
from tests.factories import ContentItemFactory, telegraph
from tests.integration.test_review_queue import staff_in

PHONES = [320, 390]
# An address with no place to break a line: a long slug, and a tracking query after it.
LONG_SLUG = "-".join(["hedgehog"] * 40)
LONG_SOURCE = f"https://www.telegraph.co.uk/news/2026/11/20/{LONG_SLUG}/?utm_source={'x' * 80}"
LONG_UNKNOWN = f"https://unknown.example/{'y' * 200}/{LONG_SLUG}"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Phone:
    """A page in a phone-sized window, and every load of ours that failed."""

    def __init__(self, page: Page, width: int) -> None:
        self.page = page
        self.width = width
        self.failed: list[str] = []
        page.on(
            "response",
            lambda response: (
                self.failed.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )

    def fits(self) -> None:
        """Nothing wider than the screen: no sideways scrolling."""
        widths = self.page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[1] == self.width
        assert widths[0] <= self.width, f"{self.page.url} is {widths[0]} px wide"


def _phone(browser: Browser, width: int) -> Iterator[Phone]:
    context = local_context(browser, viewport={"width": width, "height": 800})
    yield Phone(context.new_page(), width)
    context.close()


@pytest.fixture(params=PHONES, ids=[f"{w}px" for w in PHONES])
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Phone]:
    yield from _phone(browser, request.param)


@pytest.fixture
def phone_390(browser: Browser) -> Iterator[Phone]:
    yield from _phone(browser, 390)


@pytest.fixture
def article(transactional_db: None) -> ContentItem:
    return ContentItemFactory.create(
        outlet=telegraph(),
        slug="hedgehog-crossing",
        source_url=LONG_SOURCE,
        title="Hedgehog crossing saves village fete from cancellation",
        body=f"Volunteers say a crossing saved the fete.\n\nPictures: {LONG_SOURCE}",
    )


@pytest.fixture
def reviewer(transactional_db: None) -> Any:
    return staff_in("reviewer", "reviewer-phone")


def open_page(phone: Phone, live_server: LiveServer, path: str) -> None:
    response = phone.page.goto(f"{live_server.url}{path}")
    assert response is not None
    assert response.status == 200, path


def status_path(case: TakedownRequest) -> str:
    return f"/status/{links.status_token(case)}/"


# --- nothing wider than the screen ---------------------------------------------------------


def test_the_article_fits_a_phone(
    phone: Phone, live_server: LiveServer, article: ContentItem
) -> None:
    open_page(phone, live_server, article.get_absolute_url())
    expect(phone.page.get_by_text("Read the original at")).to_be_visible()
    phone.fits()
    # The icon every page names is there (no 404 for /favicon.ico either).
    icon = phone.page.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    for path in (icon, "/favicon.ico"):
        fetched = phone.page.request.get(f"{live_server.url}{path}")
        assert fetched.status == 200, path
        assert fetched.headers["content-type"].startswith("image/svg+xml")
    assert phone.failed == []


def test_the_form_fits_a_phone_filled_in_and_with_its_errors(
    phone: Phone, live_server: LiveServer, article: ContentItem
) -> None:
    open_page(phone, live_server, f"/request/?{urlencode({'url': article.public_url})}")
    phone.fits()
    # The form sent back with its mistakes: a long address quoted in the summary and beside
    # its field.
    phone.page.locator("#id_urls").fill(f"{article.public_url}\n{LONG_UNKNOWN}\nnot an address")
    phone.page.locator("#id_whole_domain").fill("a" * 70 + ".example")
    with phone.page.expect_navigation():  # to the page's load: its stylesheet applied
        phone.page.get_by_test_id("send-request").click()
    expect(phone.page.get_by_test_id("error-summary")).to_be_visible()
    phone.fits()
    assert phone.failed == []


def test_the_status_page_fits_a_phone(
    phone: Phone, live_server: LiveServer, article: ContentItem, submit: Any, reviewer: Any
) -> None:
    case = submit(urls=[article.public_url, LONG_UNKNOWN]).case
    review.case_reject(
        case=case,
        user_id=reviewer.pk,
        reasons=f"The article is the outlet's own, as its page says: {LONG_SOURCE}",
    )
    open_page(phone, live_server, status_path(case))
    expect(phone.page.get_by_test_id("decision")).to_be_visible()
    phone.fits()
    open_page(phone, live_server, f"{status_path(case)}appeal/")
    phone.fits()
    assert phone.failed == []


# --- the status page's script --------------------------------------------------------------


def test_the_countdown_ticks_every_second_in_the_last_minutes(
    phone_390: Phone, live_server: LiveServer, article: ContentItem, submit: Any
) -> None:
    case = submit(urls=[article.public_url]).case
    TakedownRequest.objects.filter(pk=case.pk).update(
        deadline_at=timezone.now() + timedelta(seconds=130)
    )
    open_page(phone_390, live_server, status_path(case))
    countdown = phone_390.page.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^2 minutes( \d+ seconds?)?$"))
    first = countdown.inner_text()
    # Seconds, not minutes: the words change within a second and a bit.
    expect(countdown).not_to_have_text(first, timeout=2_500)
    expect(countdown).to_have_text(re.compile(r"^(2 minutes|1 minute)( \d+ seconds?)?$"))


def test_the_live_note_goes_when_the_case_closes(
    phone_390: Phone, live_server: LiveServer, article: ContentItem, submit: Any
) -> None:
    case = submit(urls=[article.public_url]).case
    open_page(phone_390, live_server, status_path(case))
    note = phone_390.page.get_by_text("This page updates itself while we work on your request.")
    expect(note).to_be_visible()
    case_withdraw(case=case, actor="requester:test")
    # The page's next look at the case (every few seconds) shows it closed, and says no more
    # that it updates itself.
    expect(phone_390.page.get_by_test_id("case-state")).to_have_text("Withdrawn", timeout=15_000)
    expect(note).to_be_hidden()
