"""Clearance for the crawler: the API answers exactly as the service's own check
(`suppression.may_publish`) on every URL of the demo catalogue and its everyday variants, before
and after removals, in a constant number of queries per batch."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth.models import User

from rights.models import (
    ContentItem,
    KeyScope,
    Outlet,
    Suppression,
    SuppressionKind,
    TakedownRequest,
)
from rights.services.suppression import may_publish, publication_verdicts, suppression_add
from tests.api import partner_client, takedown_body
from tests.engine import drive

CLEARANCE = "/api/v1/clearance"


def variants(url: str) -> list[str]:
    """The URL and spellings a crawler meets: scheme, www., trailing slash, tracking, AMP, case."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    bare = host.removeprefix("www.")
    path = parts.path
    toggled = path[:-1] if path.endswith("/") else f"{path}/"
    out = [
        url,
        urlunsplit(("http", host, path, parts.query, "")),
        urlunsplit(
            (parts.scheme, bare if host.startswith("www.") else f"www.{host}", path, "", "")
        ),
        urlunsplit((parts.scheme, host, toggled, parts.query, "")),
        url + ("&" if parts.query else "?") + "utm_source=newsletter&utm_medium=email",
        urlunsplit((parts.scheme, f"amp.{bare}", path, "", "")),
        urlunsplit((parts.scheme, host, path.rstrip("/") + "/amp/", "", "")),
        urlunsplit((parts.scheme.upper(), host.upper(), path, "", "")),
        url + "#comments",
    ]
    return out


def catalogue_urls(removed: list[ContentItem]) -> list[str]:
    """Every article of the catalogue, under our URL and its source URL; the everyday variants
    of every eighth one and of every removed one (each single check is a query of its own, and
    every variant is exercised on many articles of every outlet's URL pattern)."""
    urls: list[str] = []
    removed_ids = {item.pk for item in removed}
    for index, item in enumerate(ContentItem.objects.order_by("pk")):
        urls += [item.source_url, item.public_url]
        if index % 8 == 0 or item.pk in removed_ids:
            urls += variants(item.source_url)[1:]
            # A path's case is the URL's own (a different URL, maybe the same article): whatever
            # the answer, the two checks must give the same one.
            urls.append(item.source_url.upper())
    return [*urls, "", "not a url", "ftp://files.example/x", "https://", "javascript:alert(1)"]


def answers(client: Any, urls: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(urls), 1000):
        answer = client.post(CLEARANCE, {"urls": urls[start : start + 1000]}, format="json")
        assert answer.status_code == 200, answer.content
        results += answer.json()["results"]
    return results


def assert_agrees(client: Any, urls: list[str]) -> list[dict[str, Any]]:
    results = answers(client, urls)
    assert [r["url"] for r in results] == urls
    disagree = [r["url"] for r in results if r["allowed"] != may_publish(r["url"])]
    assert disagree == []
    for result in results:
        rule = result["blocked_by"]
        if rule is not None:
            stored = Suppression.objects.get(pk=rule["id"], lifted_at__isnull=True)
            assert (stored.kind, stored.value) == (rule["kind"], rule["value"])
    return results


@pytest.mark.usefixtures("demo_catalogue")
def test_clearance_agrees_with_may_publish_on_the_catalogue_before_and_after_removals(
    admin_user: User,
) -> None:
    telegraph = Outlet.objects.get(slug="telegraph")
    crawler = partner_client(telegraph, KeyScope.CLEARANCE)
    items = list(ContentItem.objects.filter(outlet=telegraph).order_by("pk")[:2])
    urls = catalogue_urls(items)
    before = assert_agrees(crawler, urls)
    assert {r["allowed"] for r in before if "problem" not in r} == {True}
    refused = [r for r in before if "problem" in r]
    assert len(refused) == 5
    assert not any(r["allowed"] for r in refused)

    # Removals: two Telegraph articles by the partner's API (trusted, removed by the engine),
    # a whole domain, and a staff prefix rule.
    filer = partner_client(telegraph)
    made = filer.post(
        "/api/v1/takedowns", takedown_body(*(i.source_url for i in items)), format="json"
    )
    drive(TakedownRequest.objects.get(reference=made.json()["reference"]))
    guardian = Outlet.objects.get(slug="guardian")
    domain_case = partner_client(guardian).post(
        "/api/v1/takedowns", takedown_body(whole_domain="guardian.co.uk"), format="json"
    )
    suppression_add(
        kind=SuppressionKind.DOMAIN, value="spiegel.de", reason="court order", user=admin_user
    )
    suppression_add(
        kind=SuppressionKind.PREFIX,
        value="https://www.lemonde.fr/international/",
        reason="court order",
        user=admin_user,
    )
    assert Suppression.objects.filter(content_item__in=items).count() == 2
    assert domain_case.status_code in (201, 422)

    after = assert_agrees(crawler, urls)
    blocked = {r["url"] for r in after if not r["allowed"] and "problem" not in r}
    for item in items:
        assert set(variants(item.source_url)) <= blocked
        # Our own copy too, under the rule that blocks its source.
        ours = next(r for r in after if r["url"] == item.public_url)
        assert ours["blocked_by"]["value"] == item.source_url
    kinds = {r["blocked_by"]["kind"] for r in after if r["blocked_by"]}
    assert kinds == {"exact", "domain", "prefix"}
    assert any(r["allowed"] for r in after)


@pytest.mark.smoke
def test_a_batch_costs_the_same_queries_whatever_its_size(
    db: None, admin_user: User, django_assert_num_queries: Any
) -> None:
    suppression_add(
        kind=SuppressionKind.PREFIX, value="https://a.example/x/", reason="r", user=admin_user
    )
    suppression_add(
        kind=SuppressionKind.EXACT, value="https://b.example/y", reason="r", user=admin_user
    )
    suppression_add(kind=SuppressionKind.DOMAIN, value="c.example", reason="r", user=admin_user)
    few = ["https://a.example/x/1"]
    many = [f"https://{h}.example/{p}/{n}" for h in "abcdefgh" for p in "xy" for n in range(60)]
    with django_assert_num_queries(1):
        small = publication_verdicts(few)
    with django_assert_num_queries(1):
        large = publication_verdicts(many)
    assert not small[0].allowed
    # Everything under a.example/x/ and all of c.example; the exact rule names b.example/y alone.
    assert sum(not v.allowed for v in large) == 60 + 120
    # Through the API: the key's lookup, and the same one.
    crawler = partner_client(Outlet.objects.create(name="Crawler", slug="crawler"), "clearance")
    with django_assert_num_queries(2):
        crawler.post(CLEARANCE, {"urls": few}, format="json")
    with django_assert_num_queries(2):
        crawler.post(CLEARANCE, {"urls": many[:1000]}, format="json")


def test_clearance_refuses_too_many_or_no_urls(db: None) -> None:
    crawler = partner_client(Outlet.objects.create(name="Crawler", slug="crawler"), "clearance")
    for urls in ([], ["https://x.example/"] * 1001, "https://x.example/", [1, None]):
        answer = crawler.post(CLEARANCE, {"urls": urls}, format="json")
        assert answer.status_code == 422, urls
        assert answer.json()["errors"][0]["field"].startswith("urls")
