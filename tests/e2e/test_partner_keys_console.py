"""Partner keys in the staff console, in a real browser: an admin creates a key, sees it once on
an accessible page, the key works against the API, and the console never shows it again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.models import PartnerKey
from tests.e2e.conftest import accessible, local_context
from tests.e2e.test_console import log_in, staff
from tests.factories import telegraph

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = local_context(browser, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def test_an_admin_creates_a_key_and_sees_it_once(
    context: BrowserContext, live_server: LiveServer
) -> None:
    outlet = telegraph()
    staff("ada", "admin")
    page: Page = context.new_page()
    log_in(page, live_server, "ada")
    page.goto(f"{live_server.url}/admin/rights/partnerkey/add/")
    accessible(page)
    page.get_by_label("Outlet").select_option(label=outlet.name)
    page.get_by_label("Scope").select_option("takedowns")
    page.get_by_label("Name").fill("CMS production")
    page.get_by_role("button", name="Save", exact=True).click()
    shown = page.get_by_test_id("partner-key")
    expect(shown).to_be_visible()
    accessible(page)
    key = shown.input_value()
    stored = PartnerKey.objects.get()
    assert key.startswith(f"{stored.prefix}.")
    answer = requests.get(
        f"{live_server.url}/api/v1/takedowns",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 200
    secret = key.split(".", 1)[1]
    page.goto(f"{live_server.url}/admin/rights/partnerkey/")
    expect(page.get_by_text(stored.prefix)).to_be_visible()
    accessible(page)
    assert secret not in page.content()
