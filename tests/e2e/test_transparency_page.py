"""The public transparency report in a real browser (Chromium via Playwright) against a live
server: axe-core finds nothing serious, on a desktop and on phones; the page breaks no rule of
the Content Security Policy; its tables scroll inside their own region rather than widening the
page; and its downloads answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.states import CaseState, TargetState
from tests.e2e.conftest import accessible, local_context
from tests.factories import TakedownRequestFactory, TargetFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def requests_this_month(transactional_db: None, settings: Any) -> None:
    settings.TRANSPARENCY_CACHE_SECONDS = 0
    settings.TRANSPARENCY_MIN_COUNT = 3
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for n, channel in enumerate(["email"] * 5 + ["web", "api"]):
        case = TakedownRequestFactory.create(
            channel=channel,
            received_at=start + timedelta(minutes=n),
            state=CaseState.REMOVED,
        )
        TargetFactory.create(
            case=case, state=TargetState.REMOVED, outcome_at=start + timedelta(hours=n + 1)
        )


@pytest.mark.parametrize("width", [1280, 390, 320])
def test_the_report_in_a_browser(
    browser: Browser, live_server: LiveServer, requests_this_month: None, width: int
) -> None:
    context = local_context(browser, viewport={"width": width, "height": 800})
    page: Page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        response = page.goto(f"{live_server.url}/transparency/")
        assert response is not None
        assert response.status == 200
        expect(page.get_by_role("heading", level=1)).to_have_text("Transparency report")
        expect(page.get_by_test_id("months-promise")).to_contain_text("7")
        expect(page.get_by_test_id("months-doors")).to_contain_text("withheld")
        # The promise at a glance: the headline share is on screen, and the promise table's
        # key column is not scrolled out of sight, on a phone as on a desktop.
        headline = page.get_by_test_id("headline-month")
        expect(headline).to_be_visible()
        expect(headline).to_contain_text("100%")
        expect(headline).to_contain_text("of requests met the")
        key = page.get_by_test_id("months-promise").get_by_role("columnheader").nth(1)
        expect(key).to_have_text("Met the deadline")
        box = key.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= width, (box, width)
        assert page.locator("svg[role=img]").count() == 4
        accessible(page)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        assert refused == []
        for path, kind in (
            ("/transparency/report.csv", "text/csv"),
            ("/transparency/report.json", "application/json"),
        ):
            answer = page.request.get(f"{live_server.url}{path}")
            assert answer.status == 200
            assert answer.headers["content-type"].startswith(kind)
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = local_context(browser)
    yield context.new_page()
    context.close()


def test_every_page_links_to_the_report(page: Page, live_server: LiveServer, settings: Any) -> None:
    settings.TRANSPARENCY_CACHE_SECONDS = 0
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Transparency report").click()
    expect(page).to_have_url(f"{live_server.url}/transparency/")
    expect(page.get_by_test_id("months-promise")).to_contain_text("none decided")
