"""URL and domain normalisation: one key per article, whatever way it was written.

A normalised URL has a lower-case http(s) scheme and IDNA (punycode) host, no default port, no
user information, no fragment, no tracking parameters, and w3lib's canonical path and query
(percent-encoding made consistent, query arguments sorted). Normalising twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import urlsplit, urlunsplit

import idna
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
    }
)
TRACKING_PREFIXES = ("utm_",)


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


def normalise_url(raw: str) -> str:
    if not isinstance(raw, str):
        raise NormaliseError("must be text")
    text = raw.strip()
    if not text:
        raise NormaliseError("is empty")
    if len(text) > MAX_URL_LENGTH:
        raise NormaliseError(f"is longer than {MAX_URL_LENGTH} characters")
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


def normalise_domain(raw: str) -> str:
    """A bare domain such as `example.com`; a URL is accepted and its host taken."""
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
    return domain


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def domain_within(host: str, domain: str) -> bool:
    """True when `host` is `domain` or one of its subdomains (never a mere suffix match)."""
    return host == domain or host.endswith("." + domain)
