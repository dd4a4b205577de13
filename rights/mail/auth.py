"""Who sent a message: our own receiving server's Authentication-Results (RFC 8601), and
nothing else.

A From: header proves nothing. A sender is verified only when a header written by our receiver
(its authserv-id is MAIL_AUTHSERV_ID) shows DMARC pass for the From: domain, or a DKIM pass
whose signing domain (header.d) is aligned with it (relaxed alignment, RFC 7489 section 3.1.1:
the same organisational domain by the Public Suffix List). Headers with any other authserv-id
are anyone's to write and are ignored; so are ours anywhere but in the run at the very top (see
`_ours`), since our receiver adds its own on top of whatever arrived (and removes any that claim
its id). A fail for the From: domain in that run wins over any pass in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage

import authres  # type: ignore[import-untyped]

from rights.normalise import registrable_domain

RECEIVED_BY = re.compile(r"(?i)\bby\s+([a-z0-9][a-z0-9.\-]*)")


@dataclass(frozen=True)
class SenderCheck:
    verified: bool
    # The rule that verified the sender ("dmarc" or "dkim"), or "" when nothing did.
    method: str = ""
    # Our receiver's results, as "method=result" (no addresses), for the record.
    results: tuple[str, ...] = ()
    # Our receiver found a fail for the From: domain: nobody is answered on its say-so.
    failed: bool = False


def _received_by(value: str) -> str:
    match = RECEIVED_BY.search(value)
    return match.group(1).lower().rstrip(".") if match else ""


def _ours(message: EmailMessage, authserv_id: str) -> list[authres.AuthenticationResultsHeader]:
    """Our receiver's headers, believed only as one run at the very top of the message (RFC 8601
    section 5): above them may stand only our own servers' Received: lines (their "by" host in
    the organisation of MAIL_AUTHSERV_ID) and headers that are neither (Return-Path,
    Delivered-To); the run ends at the first Received: line after it, the first header of
    another authserv-id, or one that cannot be read. Anything of ours below that is someone
    else's writing."""
    org = registrable_domain(authserv_id) or authserv_id
    ours: list[authres.AuthenticationResultsHeader] = []
    for name, value in message.items():
        name = name.lower()
        if name == "received":
            by = _received_by(str(value))
            if ours or not by or (registrable_domain(by) or by) != org:
                break
            continue
        if name != "authentication-results":
            continue
        try:
            header = authres.AuthenticationResultsHeader.parse_value(str(value))
        except (authres.AuthResError, ValueError, IndexError):
            break
        if str(header.authserv_id).lower() != authserv_id:
            break
        ours.append(header)
    return ours


def _property(result: object, ptype: str, name: str) -> str:
    for prop in getattr(result, "properties", []):
        if prop.type == ptype and prop.name == name and prop.value:
            return str(prop.value).strip().lower().rstrip(".")
    return ""


def check_sender(message: EmailMessage, *, from_domain: str, authserv_id: str) -> SenderCheck:
    """Whether our receiver vouches for `from_domain` (the From: address's domain, in its ASCII
    form and lower-case). A fail for that domain anywhere in our run (DMARC, or DKIM by an
    aligned signer) wins over any pass: the sender is then not verified, and `failed` is set."""
    if not authserv_id or not from_domain:
        return SenderCheck(verified=False)
    org = registrable_domain(from_domain)
    results: list[str] = []
    method = ""
    failed = False
    for header in _ours(message, authserv_id):
        for result in header.results:
            name, outcome = str(result.method).lower(), str(result.result).lower()
            results.append(f"{name}={outcome}")
            if name == "dmarc":
                about = _property(result, "header", "from")
                mine = about in {"", from_domain}
                if outcome == "fail" and mine:
                    failed = True
                elif outcome == "pass" and about == from_domain and not method:
                    method = "dmarc"
            elif name == "dkim":
                signer = _property(result, "header", "d")
                aligned = bool(signer) and org is not None and registrable_domain(signer) == org
                if outcome == "fail" and aligned:
                    failed = True
                elif outcome == "pass" and aligned and not method:
                    method = "dkim"
    verified = bool(method) and not failed
    return SenderCheck(
        verified=verified, method=method if verified else "", results=tuple(results), failed=failed
    )
