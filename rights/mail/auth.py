"""Who sent a message: our own receiving server's Authentication-Results (RFC 8601), and
nothing else.

A From: header proves nothing. A sender is verified only when a header written by our receiver
(its authserv-id is MAIL_AUTHSERV_ID) shows DMARC pass for the From: domain, or a DKIM pass
whose signing domain (header.d) is aligned with it (relaxed alignment, RFC 7489 section 3.1.1:
the same organisational domain by the Public Suffix List). Headers with any other authserv-id
are anyone's to write and are ignored; so are ours below the first block of them, since our
receiver adds its own on top of whatever arrived (and removes any that claim its id).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import authres  # type: ignore[import-untyped]

from rights.normalise import registrable_domain


@dataclass(frozen=True)
class SenderCheck:
    verified: bool
    # The rule that verified the sender ("dmarc" or "dkim"), or "" when nothing did.
    method: str = ""
    # Our receiver's results, as "method=result" (no addresses), for the record.
    results: tuple[str, ...] = ()


def _ours(message: EmailMessage, authserv_id: str) -> list[authres.AuthenticationResultsHeader]:
    """The topmost run of our receiver's headers: those above any other server's."""
    ours: list[authres.AuthenticationResultsHeader] = []
    for value in message.get_all("Authentication-Results") or []:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(str(value))
        except (authres.AuthResError, ValueError, IndexError):
            if ours:
                break
            continue
        if str(header.authserv_id).lower() == authserv_id:
            ours.append(header)
        elif ours:
            break
    return ours


def _property(result: object, ptype: str, name: str) -> str:
    for prop in getattr(result, "properties", []):
        if prop.type == ptype and prop.name == name and prop.value:
            return str(prop.value).strip().lower().rstrip(".")
    return ""


def check_sender(message: EmailMessage, *, from_domain: str, authserv_id: str) -> SenderCheck:
    """Whether our receiver vouches for `from_domain` (the From: address's domain, in its ASCII
    form and lower-case)."""
    if not authserv_id or not from_domain:
        return SenderCheck(verified=False)
    org = registrable_domain(from_domain)
    results: list[str] = []
    method = ""
    for header in _ours(message, authserv_id):
        for result in header.results:
            name, outcome = str(result.method).lower(), str(result.result).lower()
            results.append(f"{name}={outcome}")
            if outcome != "pass" or method:
                continue
            if name == "dmarc" and _property(result, "header", "from") == from_domain:
                method = "dmarc"
            elif name == "dkim":
                signer = _property(result, "header", "d")
                if signer and org is not None and registrable_domain(signer) == org:
                    method = "dkim"
    return SenderCheck(verified=bool(method), method=method, results=tuple(results))
