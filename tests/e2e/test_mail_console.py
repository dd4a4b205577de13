"""The mailbox's staff queue in a real browser: a lead finds a message nobody could read at the
top of the queue, reads it as text and in its raw source, and makes it into a case naming the
article; a reviewer dismisses another. Every page passes axe-core."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.live_server_helper import LiveServer

from rights.mail.receive import message_process, message_store
from rights.models import AuditEvent, InboundMessage, MailState, TakedownRequest
from tests.e2e.conftest import accessible, local_context
from tests.e2e.test_console import log_in, staff
from tests.factories import ContentItemFactory, telegraph
from tests.reliability.conftest import requires_postgres

pytestmark = [pytest.mark.e2e, requires_postgres, pytest.mark.django_db(transaction=True)]

CORPUS = Path(__file__).resolve().parent.parent / "mail_corpus"


def received(raw: bytes) -> InboundMessage:
    stored = message_store(raw=raw, source="pipe")
    message_process(message_id=stored.message.pk)
    stored.message.refresh_from_db()
    return stored.message


def mail_staff(username: str, role: str) -> Any:
    user = staff(username, role)
    # The flush between transactional tests empties the groups; put the mailbox's permissions
    # back as migration 0013 gives them.
    migration = importlib.import_module("rights.migrations.0013_mailbox")
    migration.mail_roles_create(django_apps, SimpleNamespace(connection=connection))
    return user


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = local_context(browser)
    yield context
    context.close()


def test_staff_deal_with_messages_nobody_could_read(
    browser: Browser, context: BrowserContext, live_server: LiveServer
) -> None:
    item = ContentItemFactory.create(outlet=telegraph(), slug="harbour-fire")
    broken = received((CORPUS / "broken_mime.eml").read_bytes())
    other = received(
        (CORPUS / "broken_mime.eml").read_bytes().replace(b"<broken.", b"<broken-too.")
    )
    assert {broken.state, other.state} == {MailState.NEEDS_STAFF}
    mail_staff("lena", "lead")
    mail_staff("rita", "reviewer")

    page: Page = context.new_page()
    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/admin/rights/inboundmessage/")
    accessible(page)
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_role("link", name=str(broken), exact=True).click()
    expect(page.get_by_text("broken_mime")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name="Raw source").click()
    expect(page.locator("body")).to_contain_text("declared-boundary")
    page.go_back()
    page.get_by_role("link", name="Make a case or dismiss").click()
    accessible(page)
    page.get_by_label("URLs to take down (one a line)").fill(item.source_url)
    page.get_by_role("button", name="Make a case").click()
    case = TakedownRequest.objects.get()
    expect(page.get_by_text(f"is now case {case.reference}")).to_be_visible()
    assert InboundMessage.objects.get(pk=broken.pk).state == MailState.CASE_BY_STAFF
    assert AuditEvent.objects.filter(stream=broken.audit_stream(), action="mail.raw_viewed")

    # A reviewer: no raw source, but the same two ways out.
    reviewer = local_context(browser)
    page = reviewer.new_page()
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/admin/rights/inboundmessage/{other.pk}/change/")
    expect(page.get_by_role("link", name="Raw source")).to_have_count(0)
    page.get_by_role("link", name="Make a case or dismiss").click()
    page.get_by_role("button", name="Dismiss (send nothing, keep the message)").click()
    expect(page.get_by_text(f"{other} dismissed.")).to_be_visible()
    accessible(page)
    assert InboundMessage.objects.get(pk=other.pk).state == MailState.DISMISSED
    reviewer.close()
