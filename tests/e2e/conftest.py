"""The real browser the e2e tests drive: Debian's chromium through Playwright, launched once per
module, and pages that never reach past the live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.stack import Stack, running_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIOUS = {"serious", "critical"}
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
        # around it are ordinary synchronous ones, so Django's async guard must stand aside.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            yield launched
            launched.close()


def local_context(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context whose requests go to the live server only: a link to a primary source
    is checked, never followed."""
    context = browser.new_context(**options)
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("http://localhost", "http://127.0.0.1"))
            else route.abort()
        ),
    )
    return context


def accessible(page: Page) -> None:
    """axe-core in the page as it stands: no serious or critical violation (WCAG 2.1 AA)."""
    results = Axe().run(page, options={"runOnly": AXE_RULES})
    bad = [
        (violation, violation["nodes"])
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]
    assert not bad, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in nodes]}" for v, nodes in bad
    )


@pytest.fixture
def stack(
    transactional_db: None,
    settings: Any,
    tmp_path: Path,
    live_server: LiveServer,
    stack_deadline: int,
) -> Iterator[Stack]:
    """A real worker and beat behind the live server. The web (this process, the live server's
    thread) and the worker keep the same clock and write the same links. Each module sets its
    deadline with a `stack_deadline` fixture."""
    settings.TAKEDOWN_DEADLINE = stack_deadline
    settings.PUBLIC_BASE_URL = live_server.url
    with running_stack(tmp_path, stack_deadline) as running:
        running.env["PUBLIC_BASE_URL"] = live_server.url
        running.start_worker()
        running.start_beat()
        yield running
