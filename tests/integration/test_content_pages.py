"""Our copy of an article: the page, the owner notice, and what readers see once it is gone."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape
from pytest_django.fixtures import Settings

from rights.deadlines import duration_words
from rights.models import ContentItem
from rights.workflow import transition
from tests.factories import ContentItemFactory, telegraph


def page(client: Client, item: ContentItem):  # type: ignore[no-untyped-def]
    return client.get(item.get_absolute_url())


def test_a_live_item_shows_the_article_its_source_and_the_owner_notice(
    client: Client, item: ContentItem
) -> None:
    item.body = "First paragraph of <the> story.\n\nSecond paragraph."
    item.save(update_fields=["body"])

    response = page(client, item)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"<h1>{item.title}</h1>" in html
    assert "<p>First paragraph of &lt;the&gt; story.</p>" in html  # escaped, never raw HTML
    assert "<p>Second paragraph.</p>" in html
    assert f'href="{item.source_url}"' in html
    assert 'data-testid="source-link"' in html
    assert "If you are the owner of this content and do not want us to publish it" in html
    text = " ".join(html.split())
    assert "contact us, and it will be deleted within 24 hours." in text

    # The notice leads to the request form, with this article filled in...
    form = response.context["request_link"]
    assert form == f"/request/?url={quote(item.public_url, safe='')}"
    assert f'href="{escape(form)}" data-testid="request-removal"' in html
    # ...and a mailto: link to the takedown mailbox stays as a second way.
    link = response.context["removal_link"]
    assert link.startswith(f"mailto:{settings.TAKEDOWN_MAILBOX}?")
    assert item.public_url in link  # readable as it is, not percent-encoded
    assert "+" not in link  # RFC 6068: a "+" would reach the reader as a plus sign
    assert unquote(link).endswith(f"body=Please remove: {item.public_url}\r\n")
    assert 'data-testid="request-removal-email"' in html
    assert response["Cache-Control"] == "no-cache"


def test_a_removed_item_is_gone(client: Client, item: ContentItem) -> None:
    transition(item, "removed", actor="test")
    response = page(client, item)
    assert response.status_code == 410
    html = response.content.decode()
    assert "This content has been removed" in html
    assert 'data-testid="gone-notice"' in html
    assert item.title not in html
    assert item.source_url not in html
    assert '<meta name="robots" content="noindex">' in html


def test_a_disabled_item_is_unavailable_for_legal_reasons(
    client: Client, item: ContentItem
) -> None:
    transition(item, "disabled", actor="test")
    response = page(client, item)
    assert response.status_code == 451
    html = response.content.decode()
    assert "This content is unavailable" in html
    assert "legal request" in html
    assert item.title not in html
    assert item.source_url not in html
    assert response["Link"] == f'<{settings.PUBLIC_BASE_URL}/>; rel="blocked-by"'


def test_a_restored_item_is_shown_again(client: Client, item: ContentItem) -> None:
    transition(item, "disabled", actor="test")
    transition(item, "restored", actor="test")
    response = page(client, item)
    assert response.status_code == 200
    assert item.title in response.content.decode()


def test_an_unknown_slug_is_not_found(client: Client, item: ContentItem) -> None:
    assert client.get("/a/no-such-article/").status_code == 404


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (86400, "24 hours"),
        (3600, "1 hour"),
        (5400, "90 minutes"),
        (60, "1 minute"),
        (45, "45 seconds"),
    ],
)
def test_the_promise_reads_naturally_for_any_deadline(seconds: int, text: str) -> None:
    assert duration_words(seconds) == text


def test_the_notice_follows_the_deadline_setting(
    client: Client, item: ContentItem, settings: Settings
) -> None:
    settings.TAKEDOWN_DEADLINE = 120
    text = " ".join(page(client, item).content.decode().split())
    assert "will be deleted within 2 minutes." in text


def test_the_front_page_lists_what_readers_may_see(client: Client, db: None) -> None:
    outlet = telegraph()
    live = ContentItemFactory.create(outlet=outlet, title="A live story")
    gone = ContentItemFactory.create(outlet=outlet, title="A removed story")
    transition(gone, "removed", actor="test")
    page = client.get("/").content.decode()
    assert live.get_absolute_url() in page
    assert "A live story" in page
    assert "A removed story" not in page
