"""The partner API's interactive docs (/api/docs/) in a real browser: Swagger UI, from our own
static files, renders every endpoint under the site's Content Security Policy, and a partner's
developer can try a call with their key from the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.services.partner_keys import partner_key_create
from tests.e2e.conftest import local_context
from tests.factories import telegraph

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = local_context(browser)
    yield context.new_page()
    context.close()


def test_the_docs_render_every_endpoint_under_the_csp_from_our_own_files(
    page: Page, live_server: LiveServer
) -> None:
    outlet = telegraph()
    key = partner_key_create(outlet=outlet, actor="test").plaintext
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(request.url.split("/")[2]))
    response = page.goto(f"{live_server.url}/api/docs/")
    assert response is not None
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=20_000)
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {
        "/api/v1/takedowns",
        "/api/v1/takedowns/batch",
        "/api/v1/takedowns/{reference}",
        "/api/v1/takedowns/{reference}/withdraw",
        "/api/v1/clearance",
    } <= {p.replace("\u200b", "") for p in paths}
    # Authorise with the key and try the list from the page itself.
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").first.fill(key)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".btn-done").click()
    listing = page.locator("#operations-takedowns-takedowns_list")
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    listing.get_by_role("button", name="Execute").click()
    expect(listing.locator(".live-responses-table tbody .response-col_status").first).to_have_text(
        "200", timeout=20_000
    )
    assert violations == []
    assert origins == {live_server.url.split("/")[2]}  # nothing from a CDN
