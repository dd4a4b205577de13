"""`normalise_url`'s short path for URLs already in canonical form gives exactly what the full
path (w3lib and IDNA) gives, and article keys fold runs of slashes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rights.normalise import (
    MAX_URL_LENGTH,
    NormaliseError,
    _canonical,
    _checked_text,
    _normalise_full,
    article_key,
    normalise_url,
    normalise_url_and_key,
    prefix_key,
    spelling_keys,
    spellings,
)

pytestmark = pytest.mark.smoke

MANY = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))

# --- Strategies: mostly near the canonical form, where a slip in the short path would show ---

LOWER = "abcdefghijklmnopqrstuvwxyz"
LABEL_CHARS = LOWER + "0123456789-"
LABELS = st.one_of(
    st.text(alphabet=LABEL_CHARS, min_size=1, max_size=10),
    st.text(alphabet=LABEL_CHARS + "ABZ_.", min_size=0, max_size=4),
    st.sampled_from(["xn--bcher-kva", "ab--cd", "-a", "a-", "0x7f", "1", "255", "www", "amp"]),
    st.text(alphabet="ab", min_size=60, max_size=70),
    st.text(alphabet="äöüßé中", min_size=1, max_size=3),
)
TLDS = st.one_of(
    st.sampled_from(["com", "co.uk", "de", "example", "a", "1", "xn--p1ai", "COM", "com.", ""]),
    LABELS,
)
HOSTS = st.one_of(
    st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(LABELS, max_size=4), TLDS),
    st.sampled_from(["127.0.0.1", "[::1]", "0177.0.0.1", "1.2.3", "localhost", "a" * 250 + ".com"]),
)
SCHEMES = st.sampled_from(["http", "https", "HTTPS", "Http", "ftp", "https:", ""])
PORTS = st.sampled_from(["", "", "", ":80", ":443", ":8080", ":", ":x"])
PATH_CHARS = "abcXYZ019._~-/" + "/%;:@!$&'()*+,= é#"
PATHS = st.one_of(
    st.text(alphabet="abcXYZ019._~-/", max_size=30).map(lambda p: "/" + p),
    st.text(alphabet=PATH_CHARS, max_size=30),
    st.sampled_from(["", "/", "//a", "/a/./b", "/a/../b", "/.well-known/x", "/a/.", "/..", "/%7e"]),
)
PAIR_KEYS = st.one_of(
    st.text(alphabet="abAB09._~-", min_size=0, max_size=6),
    st.sampled_from(["utm_source", "UTM_Medium", "fbclid", "ref", "amp", "x+y", "a%20b", "é"]),
)
PAIRS = st.tuples(
    PAIR_KEYS, st.sampled_from(["=", "", "=="]), st.text("abAB09._~-=+% ", max_size=6)
)
QUERIES = st.one_of(
    st.none(),
    st.lists(PAIRS, max_size=5).map(lambda pairs: "&".join(k + e + v for k, e, v in pairs)),
    st.sampled_from(["", "&", "a=1&&b=2", "b=2&a=1", "a=2&a=1", "a-b=1&a=1", "a=1;b=2"]),
)
FRAGMENTS = st.sampled_from([None, None, "", "top", "a b"])


@st.composite
def near_canonical(draw: st.DrawFn) -> str:
    url = f"{draw(SCHEMES)}://{draw(HOSTS)}{draw(PORTS)}{draw(PATHS)}"
    if (query := draw(QUERIES)) is not None:
        url += "?" + query
    if (fragment := draw(FRAGMENTS)) is not None:
        url += "#" + fragment
    return draw(st.sampled_from(["", " ", "\t"])) + url


# Canonical, or one everyday slip away from it: most of these take the short path.
GOOD_LABEL = st.text(alphabet=LABEL_CHARS, min_size=1, max_size=10)
GOOD_HOST = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(GOOD_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "co.uk", "de", "example", "news", "a1", "q-r"]),
)
GOOD_PATH = st.text(alphabet="abcXYZ019._~-/", max_size=30).map(lambda p: "/" + p)
GOOD_PAIR = st.builds(
    lambda k, v: f"{k}={v}",
    st.one_of(
        st.text(alphabet="abAB09._~-", min_size=1, max_size=6),
        st.sampled_from(["utm_source", "UTM_Medium", "fbclid", "ref", "amp", "share"]),
    ),
    st.text(alphabet="abAB09._~-", max_size=6),
)
GOOD_QUERY = st.lists(GOOD_PAIR, max_size=5).map("&".join)


@st.composite
def canonical_or_near(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "http", "https", "http", "HTTP"]))
    host = draw(st.one_of(GOOD_HOST, GOOD_HOST, GOOD_HOST, HOSTS))
    port = draw(st.sampled_from(["", "", "", "", "", ":80", ":8443"]))
    path = draw(st.one_of(GOOD_PATH, GOOD_PATH, GOOD_PATH, st.just(""), PATHS))
    url = f"{scheme}://{host}{port}{path}"
    query = draw(st.one_of(st.none(), GOOD_QUERY, GOOD_QUERY, QUERIES))
    if query is not None:
        url += "?" + query
    if (fragment := draw(st.sampled_from([None] * 6 + ["", "x"]))) is not None:
        url += "#" + fragment
    return url


ANY_TEXT = st.one_of(canonical_or_near(), near_canonical(), st.text(max_size=40))
CANONICAL = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
    st.sampled_from(["http", "https"]),
    GOOD_HOST,
    GOOD_PATH,
    GOOD_QUERY,
)


def full(raw: str) -> str:
    """What `normalise_url` gave before it had a short path."""
    return _normalise_full(_checked_text(raw))


def outcome(normalise: object, raw: str) -> tuple[str, str]:
    try:
        return "ok", normalise(raw)  # type: ignore[operator]
    except NormaliseError as exc:
        return "refused", str(exc)


# --- The short path agrees with the full one -------------------------------------------------


@MANY
@given(raw=ANY_TEXT)
@example(raw="https://example.com")
@example(raw="https://example.com?b=2&a=1")
@example(raw="https://example.com/p?")
@example(raw="https://example.com/p?utm_source=x")
@example(raw="https://example.com/p?a-b=1&a=1&a=0")
@example(raw="https://example.com/~user/a_b.c-d")
@example(raw="https://example.com//news//a/")
@example(raw="https://" + "a" * 63 + ".com/")
@example(raw="https://" + "a" * 64 + ".com/")
@example(raw="https://" + ".".join(["a" * 61] * 4) + ".com/")
@example(raw="https://ab--cd.com/")
@example(raw="https://1.2.3.4/")
@example(raw="https://example.1/")
@example(raw="https://example.com/" + "a" * (MAX_URL_LENGTH - 20))
@example(raw="https://example.com?" + "a=" + "b" * (MAX_URL_LENGTH - 23))
def test_the_short_path_gives_what_the_full_path_gives(raw: str) -> None:
    assert outcome(normalise_url, raw) == outcome(full, raw)


@MANY
@given(raw=CANONICAL)
def test_canonical_urls_normalise_alike_on_both_paths(raw: str) -> None:
    # Nearly all of these take the short path (a label may still start or end with a hyphen).
    assert outcome(normalise_url, raw) == outcome(full, raw)


@MANY
@given(raw=ANY_TEXT)
def test_normalising_and_keying_at_once_is_both_one_after_the_other(raw: str) -> None:
    try:
        expected = normalise_url(raw)
    except NormaliseError:
        with pytest.raises(NormaliseError):
            normalise_url_and_key(raw, base_hosts={})
        return
    hosts: dict[str, str] = {}
    assert normalise_url_and_key(raw, base_hosts=hosts) == (expected, article_key(expected))
    # Again with the hosts already met.
    assert normalise_url_and_key(raw, base_hosts=hosts) == (expected, article_key(expected))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://www.telegraph.co.uk/news/gone/1/", "https://www.telegraph.co.uk/news/gone/1/"),
        ("http://example.com", "http://example.com/"),
        ("https://example.com/a?z=1&b=2&utm_source=feed", "https://example.com/a?b=2&z=1"),
        ("https://example.com/a?utm_source=feed", "https://example.com/a"),
        ("  https://example.com/A_b~c  ", "https://example.com/A_b~c"),
    ],
)
def test_canonical_urls_take_the_short_path(raw: str, normalised: str) -> None:
    assert _canonical(raw.strip()) is not None
    assert normalise_url(raw) == normalised == full(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "HTTPS://example.com/",
        "https://Example.com/",
        "https://example.com:443/",
        "https://user@example.com/",
        "https://example.com/#top",
        "https://example.com/a%20b",
        "https://example.com/a/../b",
        "https://example.com/a;p",
        "https://xn--bcher-kva.example/",
        "https://ab--cd.example/",
        "https://example.com./",
        "https://127.0.0.1/",
        "https://0x7f.1/",
        "https://example.com/?a",
        "https://example.com/?a=1=2",
        "https://bücher.example/",
        "https://-a.example/",
    ],
)
def test_anything_else_takes_the_full_path(raw: str) -> None:
    assert _canonical(raw) is None


# --- Runs of slashes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "https://x.example//news/a",
        "https://x.example/news//a",
        "https://x.example///news///a///",
        "https://www.x.example//news/a/amp/",
        "http://amp.x.example/news//a//amp",
    ],
)
def test_runs_of_slashes_in_the_path_name_the_same_article(spelling: str) -> None:
    assert article_key(normalise_url(spelling)) == "x.example/news/a"
    assert "https://x.example/news/a" in spellings(normalise_url(spelling))


def test_a_prefix_folds_its_slashes_as_article_keys_do() -> None:
    assert prefix_key("https://www.x.example//news//") == "x.example/news/"
    assert article_key("https://x.example//news//a").startswith(
        prefix_key("https://x.example/news/")
    )
    # The query keeps its slashes: they are not the path's.
    assert article_key("https://x.example/a?u=//b") == "x.example/a?u=//b"


# --- Keys of spellings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "others"),
    [
        ("https://www.x.example/a/", []),
        ("https://x.example/", []),
        ("https://www.m.x.example/a", ["x.example/a"]),
        ("https://x.example/a/amp/amp", ["x.example/a"]),
        ("https://www.co.uk/a", []),
        ("http://localhost/a", ["www.localhost/a", "amp.localhost/a", "m.localhost/a"]),
    ],
)
def test_spellings_key_alike_but_for_stacked_ones(url: str, others: list[str]) -> None:
    key = article_key(url)
    found = spelling_keys(url, key, plain_hosts={})
    assert sorted(found) == sorted(others)
    assert set(found) == {article_key(s) for s in spellings(url)} - {key}


PREFIXED = st.builds(
    lambda scheme, prefix, host, path: f"{scheme}://{prefix}{host}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["", "www.", "m.", "amp.", "www.m.", "m.www."]),
    st.one_of(GOOD_HOST, st.sampled_from(["co.uk", "github.io", "localhost", "127.0.0.1"])),
    st.one_of(GOOD_PATH, st.sampled_from(["/amp", "/a/amp/amp", "/a.amp/", "/a/amp.amp"])),
)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(CANONICAL, PREFIXED))
def test_spelling_keys_are_the_keys_of_the_spellings(raw: str) -> None:
    try:
        url = normalise_url(raw)
    except NormaliseError:
        return
    key = article_key(url)
    assert set(spelling_keys(url, key, plain_hosts={})) == (
        {article_key(s) for s in spellings(url)} - {key}
    )
