"""Our copy of an article, in a real browser (Chromium via Playwright) against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.models import ContentItem
from rights.workflow import transition
from tests.e2e.conftest import local_context
from tests.factories import ContentItemFactory, telegraph

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = local_context(browser)
    yield context.new_page()
    context.close()


@pytest.fixture
def article(transactional_db: None) -> ContentItem:
    return ContentItemFactory.create(
        outlet=telegraph(),
        slug="hedgehog-crossing-saves-village-fete",
        source_url="https://www.telegraph.co.uk/news/2026/11/20/hedgehog-crossing-saves-village-fete/",
        title="Hedgehog crossing saves village fete from cancellation",
        body="Volunteers say a hand-painted crossing saved the fete.\n\nA second paragraph.",
    )


def visit(page: Page, live_server: LiveServer, item: ContentItem) -> int:
    response = page.goto(f"{live_server.url}{item.get_absolute_url()}")
    assert response is not None
    return response.status


def test_the_page_shows_the_article_its_source_and_the_owner_notice(
    page: Page, live_server: LiveServer, article: ContentItem
) -> None:
    assert visit(page, live_server, article) == 200
    expect(page).to_have_title(article.title)
    expect(page.get_by_role("heading", level=1)).to_have_text(article.title)
    expect(page.get_by_text("Volunteers say a hand-painted crossing")).to_be_visible()

    source = page.get_by_test_id("source-link")
    expect(source).to_be_visible()
    expect(source).to_have_attribute("href", article.source_url)
    expect(source).to_have_text("The Telegraph")

    notice = page.get_by_test_id("owner-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(
        "If you are the owner of this content and do not want us to publish it, contact us, "
        "and it will be deleted within 24 hours."
    )
    removal = page.get_by_test_id("request-removal")
    expect(removal).to_be_visible()
    expect(removal).to_have_text("Request removal")
    # The form, prefilled with this article; the takedown mailbox stays as a second way.
    href = removal.get_attribute("href")
    assert href is not None
    assert href.startswith("/request/?url=")
    assert quote(article.public_url, safe="") in href
    by_mail = page.get_by_test_id("request-removal-email")
    mailto = by_mail.get_attribute("href")
    assert mailto is not None
    assert mailto.startswith("mailto:")
    assert article.public_url in mailto


def test_a_removed_article_shows_the_removed_notice_with_410(
    page: Page, live_server: LiveServer, article: ContentItem
) -> None:
    assert visit(page, live_server, article) == 200
    transition(article, "removed", actor="test")
    # A reader who saw the article sees the notice once it is removed.
    assert visit(page, live_server, article) == 410
    expect(page.get_by_test_id("gone-notice")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("This content has been removed")
    expect(page.get_by_text(article.title)).to_have_count(0)
    expect(page.get_by_test_id("source-link")).to_have_count(0)


def test_a_disabled_article_is_unavailable_with_451(
    page: Page, live_server: LiveServer, article: ContentItem
) -> None:
    transition(article, "disabled", actor="test")
    assert visit(page, live_server, article) == 451
    expect(page.get_by_test_id("disabled-notice")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("This content is unavailable")
    expect(page.get_by_text(article.title)).to_have_count(0)

    transition(article, "restored", actor="test")
    assert visit(page, live_server, article) == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(article.title)
