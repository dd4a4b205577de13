"""The publication check through rules' stored keys (real PostgreSQL): it answers as the check by
every spelling of a URL did, blocks our own copy of a suppressed article, treats runs of slashes
as one, and every way a rule is made (or was made before the key) fills its key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rights.models import ContentItem, Suppression, SuppressionKind
from rights.models.enforcement import rule_key
from rights.normalise import (
    NormaliseError,
    article_key,
    normalise_url,
    prefix_key,
    spellings,
)
from rights.services.suppression import (
    may_publish,
    publication_verdicts,
    suppression_create,
)
from rights.services.trust import resolve_urls
from tests.factories import ContentItemFactory

pytestmark = pytest.mark.django_db

# --- The check by key answers as the check by spelling did ------------------------------------


def by_spelling(url: str, rules: Sequence[tuple[str, str]]) -> bool:
    """The rule before rules had keys: an exact rule blocks each of a URL's `spellings`, a
    domain rule its host and every domain above, a prefix rule what its prefix key begins."""
    try:
        key = normalise_url(url)
    except NormaliseError:
        return True
    values = {value for kind, value in rules if kind == SuppressionKind.EXACT}
    if any(spelling in values for spelling in spellings(key)):
        return True
    labels = key.split("/")[2].split(".")
    domains = {".".join(labels[i:]) for i in range(len(labels))}
    if any(kind == SuppressionKind.DOMAIN and value in domains for kind, value in rules):
        return True
    return any(
        kind == SuppressionKind.PREFIX and article_key(key).startswith(prefix_key(value))
        for kind, value in rules
    )


# Articles as publishers name them: a host that is no `www.`/AMP/mobile spelling of another,
# a path that does not itself end in an AMP ending, sometimes a query.
SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda s: s != "amp"
)
ARTICLES = st.builds(
    lambda host, segments, query: f"https://{host}/{'/'.join(segments)}" + query,
    st.sampled_from(["telegraph.co.uk", "news.example.org", "lemonde.fr", "bbc.co.uk"]),
    st.lists(SEGMENT, min_size=1, max_size=3),
    st.sampled_from(["", "", "?id=7", "?page=2&id=1"]),
)


def variant(url: str, scheme: str, host: str, ending: str, extra: str) -> str:
    """One everyday spelling of an article URL."""
    base, _, query = url.partition("?")
    rest = base.removeprefix("https://")
    domain, _, path = rest.partition("/")
    tail = f"?{query}" if query else ""
    if extra and tail:
        tail += "&" + extra.lstrip("?")
    elif extra:
        tail = extra
    return f"{scheme}://{host}{domain}/{path}{ending}{tail}"


VARIANTS = st.tuples(
    st.sampled_from(["https", "http", "HTTPS"]),
    st.sampled_from(["", "www.", "amp.", "m."]),
    st.sampled_from(["", "/", "/amp", "/amp/", ".amp", "//"]),
    st.sampled_from(["", "?utm_source=feed", "#top", "?fbclid=x"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    articles=st.lists(ARTICLES, min_size=1, max_size=6, unique=True),
    picks=st.lists(st.tuples(st.integers(0, 5), VARIANTS), max_size=8),
    seen=st.lists(VARIANTS, min_size=1, max_size=8),
    whole=st.sampled_from([None, "lemonde.fr", "co.uk"]),
    under=st.sampled_from([None, "https://www.bbc.co.uk/news/", "http://news.example.org/a"]),
)
def test_rules_by_key_answer_as_rules_by_spelling_did(
    db: None,
    articles: list[str],
    picks: list[tuple[int, tuple[str, str, str, str]]],
    seen: list[tuple[str, str, str, str]],
    whole: str | None,
    under: str | None,
) -> None:
    rules = sorted(
        {
            (SuppressionKind.EXACT, normalise_url(variant(articles[n % len(articles)], *how)))
            for n, how in picks
            # A doubled slash is the one spelling the spellings never named (see below).
            if how[2] != "//"
        }
    )
    if whole:
        rules.append((SuppressionKind.DOMAIN, whole))
    if under:
        rules.append((SuppressionKind.PREFIX, normalise_url(under)))
    urls = [variant(article, *how) for article in articles for how in seen]
    # Runs of slashes are one slash now; the spellings knew a single trailing slash only.
    single = [
        variant(article, scheme, host, "/" if ending == "//" else ending, extra)
        for article in articles
        for scheme, host, ending, extra in seen
    ]
    with transaction.atomic():
        Suppression.objects.bulk_create(Suppression(kind=k, value=v) for k, v in rules)
        verdicts = publication_verdicts(urls)
        transaction.set_rollback(True)
    for url, before, verdict in zip(urls, single, verdicts, strict=True):
        assert (not verdict.allowed) == by_spelling(before, rules), (url, rules)


# Stacked spellings, where the spellings of a URL and its article key part ways: a host that
# itself begins with `m.` or `www.`, two prefixes, an AMP ending twice, or a path `/amp`.
STACKED_ARTICLES = st.builds(
    lambda host, segments: f"https://{host}/{'/'.join(segments)}",
    st.sampled_from(["m.example.net", "www.m.example.net", "amp.news.example.org", "co.uk"]),
    st.lists(st.sampled_from(["a", "amp", "b.amp", "c"]), min_size=1, max_size=3),
)
STACKED = st.tuples(
    st.sampled_from(["https", "http"]),
    st.sampled_from(["", "www.", "m.", "www.m.", "amp.www."]),
    st.sampled_from(["", "/", "/amp", "/amp/amp", ".amp", "/amp.amp"]),
    st.sampled_from(["", "?amp=1"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    articles=st.lists(STACKED_ARTICLES, min_size=1, max_size=4, unique=True),
    picks=st.lists(st.tuples(st.integers(0, 3), STACKED), min_size=1, max_size=6),
    seen=st.lists(STACKED, min_size=1, max_size=8),
)
def test_stacked_spellings_are_refused_by_key_wherever_they_were_by_spelling(
    db: None,
    articles: list[str],
    picks: list[tuple[int, tuple[str, str, str, str]]],
    seen: list[tuple[str, str, str, str]],
) -> None:
    rules = sorted(
        {
            (SuppressionKind.EXACT, normalise_url(variant(articles[n % len(articles)], *how)))
            for n, how in picks
        }
    )
    urls = [variant(article, *how) for article in articles for how in seen]
    with transaction.atomic():
        Suppression.objects.bulk_create(Suppression(kind=k, value=v) for k, v in rules)
        verdicts = publication_verdicts(urls)
        transaction.set_rollback(True)
    keys = {article_key(value) for _, value in rules}
    for url, verdict in zip(urls, verdicts, strict=True):
        # Refused by spelling, or by the article's own key: refused.
        if by_spelling(url, rules) or article_key(normalise_url(url)) in keys:
            assert not verdict.allowed, (url, rules)


def test_an_exact_rule_with_an_amp_argument_blocks_its_own_url() -> None:
    # By spelling, the AMP argument was dropped from the URL's spellings, and never matched.
    suppression_create(
        kind=SuppressionKind.EXACT, value=normalise_url("https://x.example/a?amp=1"), actor="t"
    )
    assert not may_publish("https://x.example/a?amp=1")
    assert not may_publish("https://x.example/a")


def test_the_oldest_of_two_exact_rules_for_one_article_is_named() -> None:
    first = suppression_create(kind="exact", value="https://www.x.example/a/", actor="t")
    suppression_create(kind="exact", value="https://x.example/a", actor="t")
    assert publication_verdicts(["http://m.x.example/a/amp"])[0].rule == (
        first.pk,
        "exact",
        first.value,
    )


# --- Our own copy of a suppressed article --------------------------------------------------


@pytest.fixture
def copy(outlet: Any) -> ContentItem:
    return ContentItemFactory.create(
        outlet=outlet, slug="hedgehog", source_url="https://www.telegraph.co.uk/news/hedgehog/"
    )


OUR_SPELLINGS = [
    "https://news.example/a/hedgehog/",
    "http://news.example/a/hedgehog",
    "https://www.news.example/a/hedgehog/?utm_source=x",
    "https://amp.news.example/a/hedgehog/amp/",
    "HTTPS://NEWS.EXAMPLE/a/hedgehog/#top",
    "https://news.example//a/hedgehog/",
]


def test_our_copy_of_a_suppressed_article_is_refused_naming_the_sources_rule(
    copy: ContentItem, django_assert_num_queries: Any
) -> None:
    assert copy.public_url == OUR_SPELLINGS[0]
    assert all(v.allowed for v in publication_verdicts(OUR_SPELLINGS))
    rule = suppression_create(
        kind=SuppressionKind.EXACT, value=copy.source_url, actor="t", content_item=copy
    )
    other = ContentItemFactory.create(outlet=copy.outlet, slug="badger")
    urls = [*OUR_SPELLINGS, other.public_url, "https://news.example/a/unknown/"]
    # The rules, and the items our URLs name: two queries, whatever the batch's size.
    with django_assert_num_queries(2):
        verdicts = publication_verdicts(urls)
    for url, verdict in zip(OUR_SPELLINGS, verdicts, strict=False):
        assert not verdict.allowed, url
        assert verdict.rule is not None
        assert verdict.rule.pk == rule.pk, url
    assert verdicts[-2].allowed
    assert verdicts[-1].allowed
    assert not may_publish(copy.public_url)


def test_our_copy_is_refused_when_its_source_domain_is(copy: ContentItem) -> None:
    rule = suppression_create(kind=SuppressionKind.DOMAIN, value="telegraph.co.uk", actor="t")
    [verdict] = publication_verdicts(["http://www.news.example/a/hedgehog"])
    assert verdict.rule is not None
    assert (verdict.rule.kind, verdict.rule.value) == ("domain", rule.value)


def test_a_batch_without_our_urls_costs_one_query(
    copy: ContentItem, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        publication_verdicts(["https://www.telegraph.co.uk/news/hedgehog/", "https://x.example/"])


# --- Runs of slashes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "url"),
    [
        ("https://x.example/news/a", "https://x.example//news/a"),
        ("https://x.example/news/a", "https://www.x.example/news//a/"),
        ("https://x.example//news/a/", "https://x.example/news/a"),
        ("https://x.example/news//a", "http://m.x.example///news/a//amp"),
    ],
)
def test_an_exact_rule_blocks_its_article_however_its_slashes_run(rule: str, url: str) -> None:
    suppression_create(kind=SuppressionKind.EXACT, value=normalise_url(rule), actor="t")
    assert not may_publish(url)
    assert may_publish(url.replace("news", "sport"))


def test_a_prefix_rule_covers_its_paths_however_their_slashes_run() -> None:
    suppression_create(
        kind=SuppressionKind.PREFIX, value=normalise_url("https://x.example/news/"), actor="t"
    )
    assert not may_publish("https://x.example//news//a")
    assert may_publish("https://x.example/newsletter")


def test_resolution_finds_an_article_named_with_doubled_slashes(copy: ContentItem) -> None:
    url = normalise_url("https://www.telegraph.co.uk//news//hedgehog/")
    assert resolve_urls([url])[url] == copy


# --- Every rule has its key ----------------------------------------------------------------


def test_every_way_of_making_a_rule_fills_its_key() -> None:
    made = suppression_create(kind="exact", value="https://www.x.example/a/amp/", actor="t")
    assert made.key == "x.example/a"
    bulk = Suppression.objects.bulk_create(
        [
            Suppression(kind="exact", value="http://m.y.example//b/"),
            Suppression(kind="prefix", value="https://www.y.example/news/"),
            Suppression(kind="domain", value="z.example"),
        ]
    )
    assert [rule.key for rule in bulk] == ["y.example/b", "y.example/news/", "z.example"]
    assert Suppression.objects.get(pk=bulk[0].pk).key == "y.example/b"
    rule = bulk[0]
    rule.value = "https://y.example/c"
    rule.save(update_fields=["value"])
    assert Suppression.objects.get(pk=rule.pk).key == "y.example/c"


def test_migrate_fills_the_keys_of_rules_made_before_them() -> None:
    values = [
        ("exact", "https://www.x.example/a/"),
        ("prefix", "https://x.example/news/"),
        ("domain", "y.example"),
    ]
    rules = Suppression.objects.bulk_create(Suppression(kind=k, value=v) for k, v in values)
    # As migration 0016 leaves the rules standing before it: no key, no version.
    Suppression.objects.filter(pk__in=[r.pk for r in rules]).update(key="", key_version="")
    call_command("migrate", verbosity=0)
    stored = dict(Suppression.objects.values_list("value", "key"))
    assert stored == {value: rule_key(kind, value) for kind, value in values}
