"""URL and domain normalisation: one key per article, whatever way it was written."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rights.normalise import (
    MAX_URL_LENGTH,
    TRACKING_PARAMS,
    NormaliseError,
    domain_within,
    has_forbidden_characters,
    host_of,
    is_public_suffix,
    normalise_domain,
    normalise_url,
    visible_text,
)

pytestmark = pytest.mark.smoke

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Strategies --------------------------------------------------------------------------

# Hyphens in the third and fourth places are reserved for IDNA ("xn--"), so never drawn.
LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
LABEL = st.text(alphabet=LOWER + DIGITS + "-", min_size=1, max_size=12).filter(
    lambda s: s[0] != "-" and s[-1] != "-" and s[2:4] != "--"
)
TLD = st.sampled_from(["com", "org", "co.uk", "example", "news", "de"])
# Public suffixes (za.com, say) are never a domain of ours, and normalise_domain refuses them.
HOSTS = st.builds(
    lambda labels, tld: ".".join([*labels, tld]), st.lists(LABEL, min_size=1, max_size=3), TLD
).filter(lambda host: not is_public_suffix(host))
SCHEMES = st.sampled_from(["http", "https"])
# Path and query text: printable characters of many scripts, never '#', '?', '/' or '&', which
# are structure; percent signs included so that escaping gets exercised. Never ending in
# whitespace: a URL is stripped as a whole, so a trailing space counts only mid-URL.
SEGMENT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        categories=["L", "N", "P", "S", "Zs"],
        exclude_characters="#?/&=\\",
    ),
    max_size=12,
).filter(lambda s: s == s.rstrip())
PATHS = st.lists(SEGMENT, max_size=4).map(lambda segments: "/" + "/".join(segments))
QUERY_KEYS = st.text(alphabet=LOWER + DIGITS, min_size=1, max_size=9).filter(
    lambda k: k not in TRACKING_PARAMS
)
QUERIES = st.lists(st.tuples(QUERY_KEYS, SEGMENT), max_size=4)
FRAGMENTS = st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), max_size=10)
TRACKING = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["fbclid", "gclid", "FBCLID", "utm_source"]),
            st.text(alphabet=LOWER, min_size=1, max_size=8).map(lambda s: "utm_" + s),
        ),
        st.text(alphabet=LOWER + LOWER.upper() + DIGITS + "._-", max_size=12),
    ),
    min_size=1,
    max_size=4,
)


def build(
    scheme: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    *,
    port: str = "",
    fragment: str | None = None,
) -> str:
    url = f"{scheme}://{host}{port}{path}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    if fragment is not None:
        url += "#" + fragment
    return url


URLS = st.builds(build, SCHEMES, HOSTS, PATHS, QUERIES)


def mixed_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


# --- Properties --------------------------------------------------------------------------


@PROPERTY
@given(url=URLS)
@example(url="http://example.com/?")
@example(url="http://example.com/p?a")
@example(url="https://example.com/%7Efoo/%2F?b=%20&a=1")
def test_normalising_twice_changes_nothing(url: str) -> None:
    once = normalise_url(url)
    assert normalise_url(once) == once


@PROPERTY
@given(data=st.data(), scheme=SCHEMES, host=HOSTS, path=PATHS, query=QUERIES)
def test_scheme_and_host_case_do_not_matter(
    data: st.DataObject, scheme: str, host: str, path: str, query: list[tuple[str, str]]
) -> None:
    shouted = build(
        data.draw(st.composite(lambda draw: mixed_case(draw, scheme))()),
        data.draw(st.composite(lambda draw: mixed_case(draw, host))()),
        path,
        query,
    )
    assert normalise_url(shouted) == normalise_url(build(scheme, host, path, query))


@PROPERTY
@given(scheme=SCHEMES, host=HOSTS, path=PATHS, query=QUERIES)
def test_default_ports_do_not_matter(
    scheme: str, host: str, path: str, query: list[tuple[str, str]]
) -> None:
    port = ":80" if scheme == "http" else ":443"
    assert normalise_url(build(scheme, host, path, query, port=port)) == normalise_url(
        build(scheme, host, path, query)
    )


@PROPERTY
@given(scheme=SCHEMES, host=HOSTS, path=PATHS, query=QUERIES)
def test_other_ports_are_kept(
    scheme: str, host: str, path: str, query: list[tuple[str, str]]
) -> None:
    port = ":443" if scheme == "http" else ":80"
    assert f"{host}{port}/" in normalise_url(build(scheme, host, path, query, port=port))


@PROPERTY
@given(scheme=SCHEMES, host=HOSTS, path=PATHS, query=QUERIES, fragment=FRAGMENTS)
def test_fragments_do_not_matter(
    scheme: str, host: str, path: str, query: list[tuple[str, str]], fragment: str
) -> None:
    assert normalise_url(build(scheme, host, path, query, fragment=fragment)) == normalise_url(
        build(scheme, host, path, query)
    )


@PROPERTY
@given(
    data=st.data(),
    scheme=SCHEMES,
    host=HOSTS,
    path=PATHS,
    query=QUERIES,
    tracking=TRACKING,
)
def test_tracking_parameters_do_not_matter(
    data: st.DataObject,
    scheme: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    tracking: list[tuple[str, str]],
) -> None:
    mixed = data.draw(st.permutations(query + tracking))
    assert normalise_url(build(scheme, host, path, mixed)) == normalise_url(
        build(scheme, host, path, query)
    )


@PROPERTY
@given(url=st.one_of(URLS, st.builds(build, SCHEMES, HOSTS, PATHS, QUERIES, fragment=FRAGMENTS)))
def test_output_is_http_without_fragment(url: str) -> None:
    result = normalise_url(url)
    assert result.startswith(("http://", "https://"))
    assert "#" not in result
    assert len(result) <= MAX_URL_LENGTH
    assert result.isascii()


@PROPERTY
@given(
    labels=st.lists(
        st.text(alphabet="abcdeäöüßéñçøåłžяжд中文日本", min_size=1, max_size=8),
        min_size=1,
        max_size=2,
    ),
    scheme=SCHEMES,
)
def test_international_hosts_become_punycode(labels: list[str], scheme: str) -> None:
    host = ".".join([*labels, "com"])
    result = normalise_url(f"{scheme}://{host}/")
    result_host = host_of(result)
    assert result_host.isascii()
    assert result_host == result_host.lower()
    if not host.isascii():
        assert "xn--" in result_host
    assert normalise_url(result) == result


@PROPERTY
@given(
    scheme=st.from_regex(r"\A[a-zA-Z][a-zA-Z0-9+.-]{0,10}\Z").filter(
        lambda s: s.lower() not in {"http", "https"}
    ),
    rest=st.sampled_from(["//example.com/a", "example.com", "alert(1)", "///etc/passwd", ""]),
)
def test_other_schemes_always_refused(scheme: str, rest: str) -> None:
    with pytest.raises(NormaliseError):
        normalise_url(f"{scheme}:{rest}")


# --- Examples ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.telegraph.co.uk/news/a/", "https://www.telegraph.co.uk/news/a/"),
        ("HTTPS://WWW.Telegraph.CO.UK/news/a/", "https://www.telegraph.co.uk/news/a/"),
        ("  https://www.telegraph.co.uk/news/a/  ", "https://www.telegraph.co.uk/news/a/"),
        ("https://www.telegraph.co.uk:443/news/a/", "https://www.telegraph.co.uk/news/a/"),
        ("http://www.telegraph.co.uk:80/news/a/", "http://www.telegraph.co.uk/news/a/"),
        ("http://www.telegraph.co.uk:8080/news/a/", "http://www.telegraph.co.uk:8080/news/a/"),
        ("https://www.telegraph.co.uk./news/a/", "https://www.telegraph.co.uk/news/a/"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#comments", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=tw&utm_medium=social&id=7&fbclid=X&gclid=Y",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/%7Euser/", "https://example.com/~user/"),
        ("https://bücher.de/straße", "https://xn--bcher-kva.de/stra%C3%9Fe"),
        ("https://xn--bcher-kva.de/", "https://xn--bcher-kva.de/"),
        ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
        ("https://example.com/a?", "https://example.com/a"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert normalise_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("javascript:alert(1)", "http"),
        ("file:///etc/passwd", "http"),
        ("ftp://example.com/a", "http"),
        ("data:text/html,<script>alert(1)</script>", "http"),
        ("mailto:ed@example.com", "http"),
        ("//example.com/a", "http"),
        ("example.com/a", "http"),
        ("", "empty"),
        ("   ", "empty"),
        ("http://", "host"),
        ("http:///path", "host"),
        ("https://user:pw@example.com/", "user name"),
        ("https://user@example.com/", "user name"),
        ("https://example.com:99999/", "valid URL"),
        ("https://exa mple.com/", "domain"),
        ("https://example.com/\x00", "control"),
        ("https://example.com/\u202egnp.exe", "control"),
        ("https://example.com/\ud800", "control"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "longer"),
    ],
)
def test_refused_urls_say_why(raw: str, reason: str) -> None:
    with pytest.raises(NormaliseError, match=reason):
        normalise_url(raw)


@pytest.mark.parametrize("raw", [None, 42, b"https://example.com/", ["https://example.com/"]])
def test_non_text_url_refused(raw: object) -> None:
    with pytest.raises(NormaliseError, match="text"):
        normalise_url(raw)  # type: ignore[arg-type]


def test_forbidden_characters() -> None:
    assert has_forbidden_characters("a\x00b")
    assert has_forbidden_characters("a\x1bb")
    assert has_forbidden_characters("\u202e")
    assert has_forbidden_characters("\u2066")
    assert has_forbidden_characters("\ud800")
    assert not has_forbidden_characters("line\nbreak\tand\rreturn")
    assert not has_forbidden_characters("Zoë Ångström 中文")


# --- Domains -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("telegraph.co.uk", "telegraph.co.uk"),
        ("TELEGRAPH.co.UK", "telegraph.co.uk"),
        (" telegraph.co.uk. ", "telegraph.co.uk"),
        ("*.telegraph.co.uk", "telegraph.co.uk"),
        ("https://www.telegraph.co.uk/news/a/", "www.telegraph.co.uk"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_normalise_domain(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "telegraph.co.uk/news",
        "ed@telegraph.co.uk",
        "exa mple.com",
        "telegraph\x00.co.uk",
        "\u202etelegraph.co.uk",
        None,
        42,
    ],
)
def test_normalise_domain_refuses(raw: object) -> None:
    with pytest.raises(NormaliseError):
        normalise_domain(raw)  # type: ignore[arg-type]


@PROPERTY
@given(host=HOSTS, data=st.data())
def test_normalise_domain_is_idempotent_and_case_blind(host: str, data: st.DataObject) -> None:
    shouted = data.draw(st.composite(lambda draw: mixed_case(draw, host))())
    assert normalise_domain(shouted) == normalise_domain(host) == host
    assert normalise_domain(normalise_domain(host)) == host


@pytest.mark.parametrize(
    ("host", "domain", "within"),
    [
        ("telegraph.co.uk", "telegraph.co.uk", True),
        ("www.telegraph.co.uk", "telegraph.co.uk", True),
        ("a.b.telegraph.co.uk", "telegraph.co.uk", True),
        ("telegraph.co.uk.evil.com", "telegraph.co.uk", False),
        ("evil-telegraph.co.uk", "telegraph.co.uk", False),
        ("eviltelegraph.co.uk", "telegraph.co.uk", False),
        ("telegraph.co", "telegraph.co.uk", False),
        ("co.uk", "telegraph.co.uk", False),
        ("telegraph.co.uk", "www.telegraph.co.uk", False),
    ],
)
def test_domain_within(host: str, domain: str, within: bool) -> None:
    assert domain_within(host, domain) is within


@PROPERTY
@given(host=HOSTS, domain=HOSTS)
def test_domain_within_is_label_aligned(host: str, domain: str) -> None:
    expected = host.split(".")[-len(domain.split(".")) :] == domain.split(".")
    assert domain_within(host, domain) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Not the owner.  ", "Not the owner."),
        ("\u200b", ""),
        ("\ufeff \u200d\u2060", ""),
        ("\u0301\u0301", ""),
        ("\u3000\n\t", ""),
        ("\u200bé", "\u200bé"),  # something shows: kept as written
        ("日本語", "日本語"),
        (None, ""),
        (42, ""),
    ],
)
def test_visible_text(value: object, expected: str) -> None:
    assert visible_text(value) == expected


def test_publishers_own_campaign_tags_do_not_matter() -> None:
    assert normalise_url(
        "https://www.lemonde.fr/international/article/2026/11/20/x_1.html?xtor=RSS-3208"
    ) == normalise_url("https://www.lemonde.fr/international/article/2026/11/20/x_1.html")
