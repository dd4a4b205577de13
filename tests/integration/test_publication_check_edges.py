"""The publication check by stored key at its edges (real PostgreSQL): it refuses everything the
check by spelling refused; our own copy under any spelling our site serves; rules' keys follow
their values however the rows are written, and are computed again when the key functions or the
Public Suffix List change; the API answers as `may_publish` does, in constant queries."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from rights import normalise
from rights.checks import check_suppression_keys
from rights.models import ContentItem, KeyScope, Suppression, SuppressionKind, enforcement
from rights.normalise import NormaliseError, normalise_domain, normalise_url
from rights.services.suppression import may_publish, publication_verdicts, suppression_create
from tests.api import partner_client
from tests.factories import ContentItemFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# The last commit before rules had keys: its normalise.py is the check by spelling.
BEFORE_KEYS = "f5fca86"


def _old_normalise() -> ModuleType:
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE_KEYS}:rights/normalise.py"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git cannot show {BEFORE_KEYS}")
    path = Path(tempfile.mkdtemp()) / "old_normalise.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_normalise", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_normalise"] = module
    spec.loader.exec_module(module)
    return module


OLD = _old_normalise() if (ROOT / ".git").exists() else None


def refused_before_keys(url: str, rules: list[tuple[str, str]]) -> bool:
    """The check as f5fca86's `publication_verdicts` made it, in memory, with f5fca86's
    normalise.py: exact rules by every spelling, domain rules by the host and the domains
    above, prefix rules by prefix key."""
    assert OLD is not None
    try:
        key = OLD.normalise_url(url)
    except OLD.NormaliseError:
        return True
    exact = {value for kind, value in rules if kind == SuppressionKind.EXACT}
    if any(spelling in exact for spelling in OLD.spellings(key)):
        return True
    labels = (urlsplit(key).hostname or "").lower().split(".")
    domains = {".".join(labels[i:]) for i in range(len(labels))}
    if any(kind == SuppressionKind.DOMAIN and value in domains for kind, value in rules):
        return True
    article = OLD.article_key(key)
    return any(
        kind == SuppressionKind.PREFIX and article.startswith(OLD.prefix_key(value))
        for kind, value in rules
    )


# --- 1. Nothing the check by spelling refused is allowed by the check by key -----------------

NASTY_HOSTS = [
    "x.example",
    "www.x.example",
    "m.x.example",
    "www.m.x.example",
    "amp.www.x.example",
    "bücher.example",
    "XN--BCHER-KVA.example",
    "x.github.io",
    "www.x.github.io",
    "www.co.uk",
    "localhost",
    "www.localhost",
    "127.0.0.1",
    "[::1]",
    "x.example:8080",
    "www.x.example:443",
    "X.EXAMPLE.",
]
NASTY_PATHS = [
    "",
    "/",
    "/a",
    "/a/",
    "/a/amp",
    "/a/amp/amp",
    "/a.amp",
    "/amp",
    "//a//",
    "/a/./b/../",
    "/%7Ea",
    "/~a",
    "/a%2Fb",
    "/a%2fb",
    "/a;p=1",
    "/é",
    "/%C3%A9",
    "/a\\b",
]
NASTY_QUERIES = [
    "",
    "?",
    "?&",
    "?id=7",
    "?amp=1",
    "?AMP",
    "?id=7&utm_source=x",
    "?UTM_Source=x&id=7",
    "?b=2&a=1",
    "?a=1&b=2",
    "#",
    "#top",
    "?id=7#x",
]
NASTY_URLS = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}{path}{query}",
    st.sampled_from(["https", "http", "HTTPS"]),
    st.sampled_from(NASTY_HOSTS),
    st.sampled_from(NASTY_PATHS),
    st.sampled_from(NASTY_QUERIES),
)
DOMAINS = st.sampled_from(["x.example", "www.x.example", "m.x.example", "x.github.io", "localhost"])


def _rule(kind: str, raw: str) -> tuple[str, str] | None:
    """The rule staff (or a removal) would store for `raw`, None when it would be refused."""
    try:
        if kind == SuppressionKind.DOMAIN:
            return kind, normalise_domain(raw)
        return kind, normalise_url(raw)
    except NormaliseError:
        return None


@pytest.mark.skipif(OLD is None, reason="needs the repository's history")
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    exact=st.lists(NASTY_URLS, max_size=4),
    prefix=st.lists(NASTY_URLS, max_size=1),
    domain=st.lists(DOMAINS, max_size=1),
    urls=st.lists(NASTY_URLS, min_size=1, max_size=25),
)
def test_the_check_by_key_refuses_all_the_check_by_spelling_refused(
    db: None, exact: list[str], prefix: list[str], domain: list[str], urls: list[str]
) -> None:
    made = [
        *(_rule(SuppressionKind.EXACT, value) for value in exact),
        *(_rule(SuppressionKind.PREFIX, value) for value in prefix),
        *(_rule(SuppressionKind.DOMAIN, value) for value in domain),
    ]
    rules = sorted({rule for rule in made if rule is not None})
    # The rules' own URLs are asked too: the URL taken down must be refused, always.
    urls = [*urls, *(value for kind, value in rules if kind == SuppressionKind.EXACT)]
    with transaction.atomic():
        Suppression.objects.bulk_create(Suppression(kind=k, value=v) for k, v in rules)
        verdicts = publication_verdicts(urls)
        transaction.set_rollback(True)
    for url, verdict in zip(urls, verdicts, strict=True):
        if refused_before_keys(url, rules):
            assert not verdict.allowed, (url, rules)


# --- 2. Our own copy under a spelling our own site serves --------------------------------


@pytest.fixture
def copy(outlet: Any) -> ContentItem:
    return ContentItemFactory.create(
        outlet=outlet, slug="hedgehog", source_url="https://www.telegraph.co.uk/news/hedgehog/"
    )


ENCODED_SLASHES = [
    "https://news.example/a%2Fhedgehog/",
    "https://news.example/a/hedgehog%2F",
    "https://news.example/a%2fhedgehog%2f",
]


@pytest.mark.parametrize("url", ENCODED_SLASHES)
def test_our_copy_is_refused_under_a_spelling_our_site_serves(
    copy: ContentItem, client: Any, url: str
) -> None:
    # A staff rule on the source while our copy still stands (the form says copies stay up).
    suppression_create(kind=SuppressionKind.EXACT, value=normalise_url(copy.source_url), actor="t")
    assert not may_publish(copy.public_url)
    # The WSGI layer decodes %2F before routing: our site serves our copy at this URL.
    assert client.get(urlsplit(url).path).status_code == 200
    assert not may_publish(url), url


# --- 3. A rule's key follows its value, however the value is written --------------------


def test_a_value_changed_by_update_moves_the_key() -> None:
    rule = suppression_create(kind=SuppressionKind.EXACT, value="https://x.example/a", actor="t")
    Suppression.objects.filter(pk=rule.pk).update(value="https://x.example/b")
    assert Suppression.objects.get(pk=rule.pk).value == "https://x.example/b"
    assert not may_publish("https://x.example/b")


def test_a_rule_loaded_from_a_fixture_blocks(tmp_path: Path) -> None:
    fixture = tmp_path / "rules.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "rights.suppression",
                    "pk": 9001,
                    "fields": {
                        "kind": "exact",
                        "value": "https://x.example/a",
                        "created_at": "2026-01-01T00:00:00Z",
                        "reason": "moved from staging",
                    },
                }
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    assert Suppression.objects.get(pk=9001).lifted_at is None
    assert not may_publish("https://x.example/a")


@pytest.mark.parametrize(
    "value", ["https://x.example:99999/a", "https://[x.example/a", "https://x.example:0x1/a"]
)
def test_computing_keys_again_survives_a_value_no_url_parser_takes(value: str) -> None:
    """A value no URL parser takes (written by hand, or before values were checked) is looked up
    as written, and stops neither a save nor the re-keying every `migrate` runs."""
    good, odd = Suppression.objects.bulk_create(
        [
            Suppression(kind="exact", value="https://y.example/"),
            Suppression(kind="exact", value=value),
        ]
    )
    assert odd.key == value
    Suppression.objects.filter(pk__in=[good.pk, odd.pk]).update(key="", key_version="")
    assert Suppression.objects.stale().count() == 2
    call_command("migrate", verbosity=0)  # rights.apps re-keys the stale rules afterwards
    assert Suppression.objects.get(pk=good.pk).key == "y.example/"
    assert Suppression.objects.get(pk=odd.pk).key == value
    assert not Suppression.objects.stale().exists()
    assert not may_publish("https://y.example/")


def test_a_rule_with_an_unnormalised_value_blocks_its_article() -> None:
    # bulk_create (and values from before a normaliser change: xtor was stripped only from
    # 737c5bc on) keep the value as given; the key is taken from it, not from its normal form.
    Suppression.objects.bulk_create(
        [Suppression(kind="exact", value="https://www.X.example/a/?utm_source=feed")]
    )
    assert not may_publish("https://www.X.example/a/?utm_source=feed")


# --- 4. Keys are a cache of the Public Suffix List of the day they were made ---------------


@pytest.fixture
def psl_edit(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Swap in the packaged Public Suffix List with one line added or taken out (a real list:
    what the next release of publicsuffixlist may well be), as a dependency upgrade would."""

    def edit(*, add: str = "", drop: str = "") -> None:
        import publicsuffixlist

        data = (Path(publicsuffixlist.__file__).parent / "public_suffix_list.dat").read_text()
        lines = [line for line in data.splitlines() if not drop or line.strip() != drop]
        if add:
            lines.append(add)
        monkeypatch.setattr(normalise, "_PSL", PublicSuffixList(lines))
        # A new list is a new keys' version (normalise.KEYS_VERSION digests the list's data).
        version = f"{normalise.KEY_FORMAT}:edited-{add or '-'}-{drop or '-'}"
        monkeypatch.setattr(enforcement, "KEYS_VERSION", version)

    return edit


@pytest.mark.parametrize(
    ("url", "change"),
    [
        # A hosting platform registers its domain as a private suffix (happens monthly).
        ("https://www.newsplatform.example/stiri/a", {"add": "newsplatform.example"}),
        # A suffix leaves the list (`www.ro` is one today).
        ("https://www.www.ro/stiri/a", {"drop": "www.ro"}),
    ],
)
def test_the_url_taken_down_stays_refused_after_a_public_suffix_list_update(
    psl_edit: Any, url: str, change: dict[str, str]
) -> None:
    suppression_create(kind=SuppressionKind.EXACT, value=normalise_url(url), actor="t")
    assert not may_publish(url)
    psl_edit(**change)
    # The upgrade's release: its keys' version is another, so the rules' keys are stale, the
    # database check says so, and `migrate` computes them again with the new list.
    assert Suppression.objects.stale().count() == 1
    assert [m.id for m in check_suppression_keys()] == ["rights.W003"]
    call_command("migrate", verbosity=0)
    assert not Suppression.objects.stale().exists()
    assert check_suppression_keys() == []
    # The very URL taken down, asked again after the upgrade: refused.
    assert not may_publish(url)


# --- 5. The API answers as may_publish, and a batch costs what it costs ---------------------

API_NASTIES = [
    "https://www.telegraph.co.uk/news/hedgehog/",
    "http://m.telegraph.co.uk//news//hedgehog/amp?utm_source=x#c",
    "https://news.example/a/hedgehog/",
    "https://news.example/a%2Fhedgehog/",
    "https://user@www.telegraph.co.uk/news/hedgehog/",
    "https://www.telegraph.co.uk:0443/news/hedgehog/",
    "https://[::1]/a",
    "https://WWW.TELEGRAPH.CO.UK./news/hedgehog",
    "ftp://www.telegraph.co.uk/news/hedgehog/",
    "",
    " ",
    "https://www.telegraph.co.uk/news/hedg\tehog/",
    "https://www.telegraph.co.uk/news/hedgehog/\u202e",
    "https://" + "a" * 64 + ".example/",
    "https://www.telegraph.co.uk/news/x/../hedgehog/",
]


def test_the_api_answers_as_may_publish_on_nasty_urls(copy: ContentItem, outlet: Any) -> None:
    suppression_create(kind=SuppressionKind.EXACT, value=normalise_url(copy.source_url), actor="t")
    client = partner_client(outlet, KeyScope.CLEARANCE)
    response = client.post("/api/v1/clearance", {"urls": API_NASTIES}, format="json")
    assert response.status_code == 200, response.content
    answers = [result["allowed"] for result in response.json()["results"]]
    assert answers == [may_publish(url) for url in API_NASTIES]
    # What is allowed: the one unrelated URL.
    assert [url for url, ok in zip(API_NASTIES, answers, strict=True) if ok] == ["https://[::1]/a"]


def test_the_api_refuses_a_whole_batch_for_one_nul(outlet: Any) -> None:
    # may_publish says False for the one URL; the API refuses the whole batch (422).
    client = partner_client(outlet, KeyScope.CLEARANCE)
    response = client.post(
        "/api/v1/clearance",
        {"urls": ["https://x.example/a", "https://x\x00.example/"]},
        format="json",
    )
    assert response.status_code == 422
    assert may_publish("https://x\x00.example/") is False


def test_a_mixed_batch_costs_two_queries(
    copy: ContentItem, django_assert_max_num_queries: Any
) -> None:
    suppression_create(kind=SuppressionKind.PREFIX, value="https://x.example/news/", actor="t")
    suppression_create(kind=SuppressionKind.DOMAIN, value="y.example", actor="t")
    suppression_create(kind=SuppressionKind.EXACT, value="https://m.www.z.example/a/amp", actor="t")
    others = ContentItemFactory.create_batch(20, outlet=copy.outlet)
    urls = [
        *(item.public_url for item in others),
        *(f"https://www.m.x.example/news/{n}/amp/amp" for n in range(200)),
        *(f"http://sub{n}.y.example:8080/{n}" for n in range(200)),
        *(f"https://[::{n:x}]/{n}" for n in range(1, 100)),
        *API_NASTIES,
    ]
    with django_assert_max_num_queries(2):
        publication_verdicts(urls)


def test_suppression_rekey_all_mends_a_value_written_by_sql() -> None:
    rule = suppression_create(kind=SuppressionKind.EXACT, value="https://x.example/a", actor="t")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rights_suppression SET value = %s WHERE id = %s",
            ["https://x.example/b", rule.pk],
        )
    assert may_publish("https://x.example/b")  # the key is still the old value's
    out = StringIO()
    call_command("suppression_rekey", stdout=out)
    assert out.getvalue().strip() == "0 rule keys changed"  # not stale: same version
    call_command("suppression_rekey", "--all", stdout=out)
    assert "1 rule key changed" in out.getvalue()
    assert not may_publish("https://x.example/b")
