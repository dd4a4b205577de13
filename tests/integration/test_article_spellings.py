"""An article is the same article whatever everyday spelling names it, on both sides of the
promise: intake's resolution and the crawler's `may_publish` (real PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rights.models import ContentItem, Suppression, SuppressionKind, TakedownRequest
from rights.normalise import article_key, normalise_url, spellings
from rights.services import scheduling
from rights.services.notifications import notification_send
from rights.services.suppression import may_publish, suppression_create
from rights.services.trust import resolve_urls
from rights.states import CaseState, ContentStatus, TargetState
from tests.engine import drive
from tests.factories import ContentItemFactory, TakedownRequestFactory, TargetFactory

pytestmark = pytest.mark.django_db

SOURCE = "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/"
EVERYDAY = [
    "http://www.telegraph.co.uk/news/2026/11/20/hedgehog/",
    "https://telegraph.co.uk/news/2026/11/20/hedgehog/",
    "http://telegraph.co.uk/news/2026/11/20/hedgehog",
    "https://www.telegraph.co.uk/news/2026/11/20/hedgehog",
    "https://amp.telegraph.co.uk/news/2026/11/20/hedgehog/",
    "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/amp/",
    "https://m.telegraph.co.uk/news/2026/11/20/hedgehog?utm_source=twitter",
    "HTTPS://WWW.TELEGRAPH.CO.UK/news/2026/11/20/hedgehog/#comments",
    "https://www.telegraph.co.uk:443/news/2026/11/20/hedgehog/?amp=1",
    "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/?amp",
    "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/?ito=twitter&WT.mc_id=tmg_share",
    "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/?CMP=share_btn_tw&smid=url-share",
]


@pytest.fixture
def article(outlet: Any) -> ContentItem:
    return ContentItemFactory.create(outlet=outlet, source_url=SOURCE, slug="hedgehog")


@pytest.mark.parametrize("spelling", EVERYDAY)
def test_the_outlets_desk_gets_the_article_down_whatever_the_spelling(
    submit: Any, article: ContentItem, spelling: str
) -> None:
    result = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        urls=[spelling],
        email_verified=True,
        actor="staff:test",
    )
    target = result.case.targets.get()
    assert target.content_item_id == article.pk
    assert result.case.state == CaseState.APPROVED
    drive(result.case)
    article.refresh_from_db()
    assert article.status == ContentStatus.REMOVED
    assert TakedownRequest.objects.get(pk=result.case.pk).state == CaseState.REMOVED
    # The crawler may publish none of the spellings again.
    for other in [SOURCE, *EVERYDAY]:
        assert not may_publish(other), other


def test_our_own_copy_is_found_under_any_spelling_of_our_host(article: ContentItem) -> None:
    # PUBLIC_BASE_URL is https://news.example in the tests.
    for url in (
        "http://news.example/a/hedgehog",
        "https://www.news.example/a/hedgehog/",
        "https://amp.news.example/a/hedgehog/amp/",
    ):
        assert resolve_urls([normalise_url(url)])[normalise_url(url)] == article, url


def test_partly_missed_case_closes_removed_and_says_which_were_not_ours(
    submit: Any, article: ContentItem
) -> None:
    unknown = "https://www.telegraph.co.uk/news/never-republished/"
    case = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        urls=["http://telegraph.co.uk/news/2026/11/20/hedgehog", unknown],
        email_verified=True,
        actor="staff:test",
    ).case
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.REMOVED
    states = dict(case.targets.values_list("url", "state"))
    assert states[unknown] == TargetState.NOT_FOUND
    assert ContentItem.objects.get(pk=article.pk).status == ContentStatus.REMOVED
    removed = case.notifications.get(kind="removed")
    assert notification_send(notification_id=removed.pk)
    body = mail.outbox[-1].body
    assert "not on our site under any spelling" in body
    assert unknown in body


def test_approved_case_whose_targets_are_all_not_ours_never_closes_removed(db: None) -> None:
    """A case can reach removal with nothing of ours in it (a staff decision on a case whose
    only URL was not found): "removed" would be untrue, so it closes not found."""
    case = TakedownRequestFactory.create(state=CaseState.APPROVED, next_check_at=None)
    TargetFactory.create(
        case=case, content_item=None, url="https://unknown.example/x", state=TargetState.NOT_FOUND
    )
    scheduling.case_kick(case)
    drive(case)
    case.refresh_from_db()
    assert case.state == CaseState.NOT_FOUND
    assert not Suppression.objects.exists()
    assert list(case.notifications.values_list("kind", flat=True)) == ["not_found"]


def test_two_copies_of_one_article_are_both_taken_down(submit: Any, outlet: Any) -> None:
    first = ContentItemFactory.create(outlet=outlet, source_url="https://www.telegraph.co.uk/n/x/")
    second = ContentItemFactory.create(outlet=outlet, source_url="http://telegraph.co.uk/n/x")
    case = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        urls=["https://telegraph.co.uk/n/x/"],
        email_verified=True,
        actor="staff:test",
    ).case
    assert set(case.targets.values_list("content_item_id", flat=True)) == {first.pk, second.pk}
    drive(case)
    assert set(ContentItem.objects.values_list("status", flat=True)) == {ContentStatus.REMOVED}


def test_other_articles_on_the_same_site_stay_publishable(article: ContentItem) -> None:
    suppression_create(kind=SuppressionKind.EXACT, value=SOURCE, actor="test", content_item=article)
    for other in (
        "https://www.telegraph.co.uk/news/2026/11/20/hedgehog-2/",
        "https://www.telegraph.co.uk/news/2026/11/20/",
        "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/comments/",
        "https://evil-telegraph.co.uk/news/2026/11/20/hedgehog/",
        "https://www.telegraph.co.uk/news/2026/11/20/hedgehog/?page=2",
    ):
        assert may_publish(other), other


def test_a_prefix_rule_covers_every_spelling_under_it(db: None) -> None:
    suppression_create(
        kind=SuppressionKind.PREFIX, value="https://www.telegraph.co.uk/news/", actor="test"
    )
    assert not may_publish("http://telegraph.co.uk/news/x")
    assert not may_publish("https://amp.telegraph.co.uk/news/x/amp/")
    assert may_publish("https://www.telegraph.co.uk/newsletter/x")
    assert may_publish("https://www.telegraph.co.uk/sport/x")


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_path = st.lists(_label, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
_spelling = st.tuples(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["", "www.", "amp.", "m."]),
    st.sampled_from(["", "/", "/amp", "/amp/", ".amp"]),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # The site's own host, not itself one of the everyday prefixes (`m.example.com`).
    host=_label.filter(lambda label: label not in {"www", "amp", "m"}).map(
        lambda label: f"{label}.example.com"
    ),
    path=_path,
    stored=_spelling,
    asked=_spelling,
)
def test_resolution_and_may_publish_agree(
    db: None, host: str, path: str, stored: tuple[str, str, str], asked: tuple[str, str, str]
) -> None:
    """Whatever spelling the catalogue stored and whatever spelling names it, intake finds the
    article exactly when the crawler is told it is the suppressed one."""
    source = normalise_url(f"{stored[0]}://{stored[1]}{host}{path}{stored[2]}")
    item = ContentItemFactory.create(outlet=None, source_url=source, source_domain=host)
    try:
        suppression_create(
            kind=SuppressionKind.EXACT, value=source, actor="test", content_item=item
        )
        url = normalise_url(f"{asked[0]}://{asked[1]}{host}{path}{asked[2]}")
        found = resolve_urls([url])[url]
        assert found == item
        assert not may_publish(url)
        assert article_key(url) == article_key(source)
        assert source in spellings(url)
        sibling = normalise_url(f"{asked[0]}://{asked[1]}{host}{path}x{asked[2]}")
        assert resolve_urls([sibling])[sibling] is None
        assert may_publish(sibling)
    finally:
        Suppression.objects.filter(content_item=item).delete()
        item.delete()
