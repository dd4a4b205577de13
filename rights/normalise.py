"""URL and domain normalisation: one key per article, whatever way it was written.

A normalised URL has a lower-case http(s) scheme and IDNA (punycode) host, no default port, no
user information, no fragment, no tracking parameters, and w3lib's canonical path and query
(percent-encoding made consistent, query arguments sorted). Normalising twice changes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import idna
import publicsuffixlist
from publicsuffixlist import PublicSuffixList
from w3lib.url import canonicalize_url

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# Parameters that identify a campaign or a reader, never an article.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_ga",
        "_gl",
        "ref_src",
        "cmpid",
        "ocid",
        "mkt_tok",
        # Publishers' own share and campaign tags: The Guardian's CMP, The Telegraph's ito
        # and WT.mc_id, The New York Times' smid, the BBC's ns_* and at_*.
        "cmp",
        "ito",
        # Le Monde's (and other French publishers') AT Internet campaign tag.
        "xtor",
        "wt.mc_id",
        "smid",
        "share",
        "ref",
        "s_cid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "at_medium",
        "at_campaign",
    }
)
TRACKING_PREFIXES = ("utm_",)
# Host names that publishers put in front of an article's one true host: the same article is
# served on `www.`, on an AMP host and on a mobile host.
HOST_SPELLINGS = ("www.", "amp.", "m.")
# Path endings that name the AMP edition of the article at the same address.
AMP_PATH_SUFFIXES = ("/amp", ".amp")
# Query arguments that ask for the AMP edition.
AMP_QUERY_ARGS = frozenset({"amp", "amp=", "amp=1", "amp=true", "outputtype=amp"})
_PSL = PublicSuffixList()
# What an article key depends on besides the URL: the key functions' own rules (KEY_FORMAT, one
# more whenever `article_key`, `prefix_key` or `base_host` change what they give) and the Public
# Suffix List `base_host` consults. Keys stored with another version are computed again
# (`Suppression.objects.stale().rekey()`, after every `migrate`).
KEY_FORMAT = 1


def _list_digest() -> str:
    """A digest of the Public Suffix List data in use (the package's own file)."""
    data = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat").read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


KEYS_VERSION = f"{KEY_FORMAT}:{_list_digest()}"


class NormaliseError(ValueError):
    """The input is not an acceptable URL or domain; the message says why, for a person."""


def has_forbidden_characters(text: str) -> bool:
    """Control characters (NUL included), bidirectional overrides and unpaired surrogates."""
    for ch in text:
        category = unicodedata.category(ch)
        if category in {"Cc", "Cs"} and ch not in "\t\n\r":
            return True
        if ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            return True
    return False


# What shows nothing on a page: spaces, controls, format characters (zero-width spaces and
# joiners, the byte-order mark), separators, and marks with no base to sit on.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})


def visible_text(value: object) -> str:
    """`value` trimmed of white space, or "" when it is not text or shows nothing at all (only
    spaces, zero-width or format characters): a required text must say something a reader
    can see."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if all(unicodedata.category(ch) in _INVISIBLE for ch in text):
        return ""
    return text


def _ascii_host(host: str) -> str:
    host = host.rstrip(".").lower()
    if not host:
        raise NormaliseError("has no host name")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise NormaliseError(f"host name {host!r} is not a valid domain name") from exc
    return ascii_host


def _is_tracking(pair: str) -> bool:
    key = pair.split("=", 1)[0].lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


# A URL already in the form `normalise_url` gives, or one step from it (tracking arguments to
# drop, query arguments to sort): lower-case http(s) scheme; a host of lower-case ASCII labels
# (letters, digits, inner hyphens; 1 to 63 characters each; the last starting with a letter,
# so never an IP address in any notation); no port, user information or fragment; a path and
# query of unreserved characters only (nothing to percent-encode or decode), with no dot segment
# and no `;` parameters; the query `key=value` pairs. For these, w3lib and IDNA change nothing
# but the query's order, so `normalise_url` skips them (tests/unit/test_normalise_fast_path.py
# proves the two paths equal). Hosts with `--` (IDNA's `xn--` and reserved third and fourth
# places) and anything else take the full path.
_CANONICAL_URL = re.compile(
    r"(https?)://([a-z0-9.-]+)(/[A-Za-z0-9._~/-]*)?(?:\?([A-Za-z0-9._~=&-]*))?"
)
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz")


def _canonical(text: str) -> tuple[str, str, str, str, str] | None:
    """`normalise_url(text)` and its scheme, host, path and query, without w3lib or IDNA, for
    a URL in the form described above; else None."""
    match = _CANONICAL_URL.fullmatch(text)
    if match is None:
        return None
    scheme, host, path, query = match.groups()
    if (
        len(host) > 253
        or "--" in host
        or ".." in host
        or ".-" in host
        or "-." in host
        or host[0] in ".-"
        or host[-1] in ".-"
        or host.rpartition(".")[2][0] not in _LOWER
        or (len(host) > 63 and max(len(label) for label in host.split(".")) > 63)
        or (path and "/." in path)
    ):
        return None
    if query:
        pairs = query.split("&")
        for pair in pairs:
            name, equals, value = pair.partition("=")
            if not name or not equals or "=" in value:
                return None
        if len(pairs) > 1:
            pairs.sort(key=lambda pair: pair.partition("="))
        query = "&".join(pair for pair in pairs if not _is_tracking(pair))
    path = path or "/"
    url = f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"
    if len(url) > MAX_URL_LENGTH:
        return None
    return url, scheme, host, path, query or ""


def _checked_text(raw: str) -> str:
    if not isinstance(raw, str):
        raise NormaliseError("must be text")
    text = raw.strip()
    if not text:
        raise NormaliseError("is empty")
    if len(text) > MAX_URL_LENGTH:
        raise NormaliseError(f"is longer than {MAX_URL_LENGTH} characters")
    return text


def normalise_url(raw: str) -> str:
    text = _checked_text(raw)
    canonical = _canonical(text)
    return canonical[0] if canonical is not None else _normalise_full(text)


def normalise_url_and_key(raw: str, *, base_hosts: dict[str, str]) -> tuple[str, str]:
    """`normalise_url(raw)` and its `article_key`, for a caller doing both to many URLs: a URL
    already in canonical form is split once for the two."""
    text = _checked_text(raw)
    canonical = _canonical(text)
    if canonical is not None:
        url, scheme, host, path, query = canonical
        return url, _article_key(scheme, host, None, path, query, base_hosts)
    url = _normalise_full(text)
    return url, article_key(url, base_hosts=base_hosts)


def _normalise_full(text: str) -> str:
    """`normalise_url` for any text, checked for length already: w3lib and IDNA."""
    if has_forbidden_characters(text):
        raise NormaliseError("contains control or invisible formatting characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise NormaliseError(f"is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise NormaliseError("must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise NormaliseError("must not contain a user name or password")
    host = _ascii_host(parts.hostname or "")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    try:
        canonical = canonicalize_url(
            urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
        )
    except (ValueError, UnicodeError) as exc:
        raise NormaliseError(f"is not a valid URL ({exc})") from exc
    base, _, query = canonical.partition("?")
    kept = [pair for pair in query.split("&") if pair and not _is_tracking(pair)]
    result = f"{base}?{'&'.join(kept)}" if kept else base
    if len(result) > MAX_URL_LENGTH:
        raise NormaliseError(f"is longer than {MAX_URL_LENGTH} characters once normalised")
    return result


def is_public_suffix(domain: str) -> bool:
    """True for a suffix under which the public registers names (`com`, `co.uk`, `github.io`),
    by the Public Suffix List: never one organisation's domain."""
    return bool(_PSL.is_public(domain.lower().rstrip(".")))


def registrable_domain(domain: str) -> str | None:
    """The organisational domain (a public suffix and one label more: news.bbc.co.uk ->
    bbc.co.uk), or None for a public suffix itself. DMARC's relaxed alignment compares these."""
    value = _PSL.privatesuffix(domain.lower().rstrip("."))
    return str(value) if value else None


def normalise_domain(raw: str, *, public_suffix_ok: bool = False) -> str:
    """A bare domain such as `example.com`; a URL is accepted and its host taken.

    A public suffix (`co.uk`, `com.au`, `github.io`) is refused unless `public_suffix_ok`: it is
    nobody's domain, so it can be neither verified nor asked for whole.
    """
    if not isinstance(raw, str):
        raise NormaliseError("must be text")
    text = raw.strip()
    if has_forbidden_characters(text):
        raise NormaliseError("contains control or invisible formatting characters")
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.removeprefix("*.")
    if not text or "/" in text or "@" in text:
        raise NormaliseError("must be a domain name such as example.com")
    domain = _ascii_host(text)
    if "." not in domain:
        raise NormaliseError(f"{domain!r} is not a public domain name such as example.com")
    if not public_suffix_ok and is_public_suffix(domain):
        raise NormaliseError(
            f"{domain} is a public suffix, shared by every site registered under it, not one "
            f"organisation's domain; name the site's own domain (such as example.{domain})"
        )
    return domain


def host_of(url: str) -> str:
    return _url_parts(url)[1]


# An http(s) URL with a plain lower-case host name, no port and a path, as most normalised URLs
# are: split as `urlsplit` would, in a fraction of its time (a batch splits thousands).
_PLAIN_URL = re.compile(r"(https?)://([a-z0-9.-]+)(/[^?#\t\r\n]*)(?:\?([^#\t\r\n]*))?")


def _url_parts(url: str) -> tuple[str, str, int | None, str, str]:
    """`url`'s scheme, lower-case host name (IPv6 without brackets), port, path and query."""
    match = _PLAIN_URL.fullmatch(url)
    if match is not None:
        scheme, host, path, query = match.groups()
        return scheme, host, None, path, query or ""
    parts = urlsplit(url)
    port = parts.port if ":" in parts.netloc else None
    return parts.scheme, (parts.hostname or "").lower(), port, parts.path, parts.query


def domain_within(host: str, domain: str) -> bool:
    """True when `host` is `domain` or one of its subdomains (never a mere suffix match)."""
    return host == domain or host.endswith("." + domain)


# --- The same article, whatever everyday spelling names it ---------------------------------


def base_host(host: str) -> str:
    """`host` without one `www.`, AMP or mobile label in front, unless that would leave a
    public suffix (`www.co.uk` stays as it is). One label only: the spellings of an article
    stay a short list (`spellings`), and stacked ones (`www.m.`) are not everyday."""
    host = host.lower()
    for prefix in HOST_SPELLINGS:
        rest = host.removeprefix(prefix)
        if rest != host and "." in rest and not is_public_suffix(rest):
            return rest
    return host


# A run of slashes in a path is one slash to the article (`https://x.com//news/a` is a
# template's slip for `/news/a`): one key, whichever way a slip doubles them.
_SLASH_RUNS = re.compile(r"//+")


def _base_path(path: str) -> str:
    if "//" in path:
        path = _SLASH_RUNS.sub("/", path)
    path = path.rstrip("/") or "/"
    if path.endswith(AMP_PATH_SUFFIXES) and path not in AMP_PATH_SUFFIXES:
        # Both endings are four characters long.
        path = path[:-4].rstrip("/") or "/"
    return path


def article_key(url: str, *, base_hosts: dict[str, str] | None = None) -> str:
    """What identifies the article a normalised URL names: host without `www.`/`amp.`/`m.`,
    path with each run of slashes made one and without its trailing slash or AMP ending, query
    without AMP arguments; the scheme does not count. Two URLs name the same article exactly
    when their keys are equal.

    `base_hosts` keeps `base_host` of each host name met, for a caller keying many URLs at once
    (the Public Suffix List's check is most of the cost)."""
    return _article_key(*_url_parts(url), base_hosts)


def _article_key(
    scheme: str,
    hostname: str,
    port: int | None,
    path: str,
    query: str,
    base_hosts: dict[str, str] | None,
) -> str:
    if base_hosts is None:
        host = base_host(hostname)
    elif (known := base_hosts.get(hostname)) is not None:
        host = known
    else:
        host = base_hosts[hostname] = base_host(hostname)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    if query:
        kept = [p for p in query.split("&") if p and p.lower() not in AMP_QUERY_ARGS]
        query = f"?{'&'.join(kept)}" if kept else ""
    return f"{netloc}{_base_path(path)}{query}"


def prefix_key(prefix: str) -> str:
    """A URL prefix as `article_key` would begin for every URL under it (its trailing slash
    kept: `/news/` covers `/news/x`, not `/newsletter`; runs of slashes made one, as there)."""
    parts = urlsplit(prefix)
    host = base_host(parts.hostname or "")
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        netloc = f"{netloc}:{parts.port}"
    path = _SLASH_RUNS.sub("/", parts.path or "/")
    return f"{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def spellings(url: str) -> list[str]:
    """Every everyday spelling of the article a normalised URL names, each normalised: both
    schemes, with and without `www.`, on its AMP and mobile hosts, with and without the trailing
    slash, and its AMP edition. Lookups match stored (normalised) URLs against this list, so
    intake's resolution and the crawler's `may_publish` agree on what "the same article" is."""
    parts = urlsplit("//" + article_key(url))
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        hosts = [host, *(prefix + host for prefix in HOST_SPELLINGS)]
    else:
        hosts = [f"[{host}]" if ":" in host else host]
    port = f":{parts.port}" if parts.port is not None else ""
    base = "" if parts.path == "/" else parts.path
    paths = [base, f"{base}/", f"{base}/amp", f"{base}/amp/", f"{base}.amp"] if base else ["/"]
    tail = f"?{parts.query}" if parts.query else ""
    return [
        f"{scheme}://{name}{port}{path}{tail}"
        for scheme in ("https", "http")
        for name in hosts
        for path in paths
    ]


def spelling_keys(url: str, key: str, *, plain_hosts: dict[str, bool]) -> list[str]:
    """The article keys of `url`'s `spellings` other than its own, `key`: none for nearly every
    URL. A spelling keys differently only when the article's host itself begins with `www.`,
    `amp.` or `m.` (or has no dot, or is a public suffix, where `base_host` keeps the label in
    front), or its path ends in an AMP ending: `https://www.m.x.com/a` keys as `m.x.com/a`, and
    its spelling `https://m.x.com/a` as `x.com/a`. A lookup by key that looks these up too
    refuses at least every URL a lookup by spelling refused.

    `plain_hosts` keeps the verdict on each host met, for a caller with many URLs."""
    slash = key.find("/")
    netloc = key[:slash]
    query = key.find("?", slash)
    path = key if query < 0 else key[:query]  # the key up to the path's end
    plain = plain_hosts.get(netloc)
    if plain is None:
        plain = plain_hosts[netloc] = (
            "." in netloc
            and ":" not in netloc
            and not netloc.startswith(HOST_SPELLINGS)
            and not is_public_suffix(netloc)
        )
    if plain and not path.endswith(AMP_PATH_SUFFIXES):
        return []
    return sorted({article_key(spelling) for spelling in spellings(url)} - {key})
