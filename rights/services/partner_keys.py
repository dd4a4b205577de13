"""Partner API keys: create (shown once), revoke, and find the live key a request presents.

A key reads `rk_<8 hex>.<43 url-safe characters>`: the part before the dot is the visible
prefix (stored, unique, shown in the console and in logs of our own), the part after it is 256
random bits of which only the SHA-256 digest is stored. Creating and revoking are audited on the
outlet's stream; the audit names the prefix, never the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from rights import audit
from rights.errors import DomainError
from rights.models import KeyScope, Outlet, PartnerKey

PREFIX_MARK = "rk_"
# Anything longer than a key can be is refused before any lookup.
KEY_MAX_LENGTH = 100


@dataclass(frozen=True)
class NewKey:
    key: PartnerKey
    plaintext: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def partner_key_create(
    *,
    outlet: Outlet,
    scope: str = KeyScope.TAKEDOWNS,
    name: str = "",
    expires_at: datetime | None = None,
    actor: str,
    created_by_id: int | None = None,
) -> NewKey:
    """A new key for `outlet`; the plaintext is returned once and never stored. An outlet with
    a key is a partner outlet: it is marked so, in the same transaction and audit event."""
    if scope not in KeyScope.values:
        raise DomainError(
            f"scope must be one of {', '.join(KeyScope.values)}", field="scope", code="invalid"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("the expiry must be in the future", field="expires_at")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        became_partner = not outlet.is_partner
        if became_partner:
            outlet.is_partner = True
            outlet.save(update_fields=["is_partner"])
        # 32 bits of prefix: a collision is rare, and the unique index makes it an error rather
        # than a shared prefix, so try again with another.
        for _attempt in range(5):
            prefix = PREFIX_MARK + secrets.token_hex(4)
            if not PartnerKey.objects.filter(prefix=prefix).exists():
                break
        key = PartnerKey.objects.create(
            outlet=outlet,
            name=name.strip()[:100] or f"{scope} key",
            scope=scope,
            prefix=prefix,
            secret_digest=_digest(secret),
            expires_at=expires_at,
            created_by_id=created_by_id,
        )
        audit.append(
            stream=outlet.audit_stream(),
            actor=actor,
            action="partner_key.created",
            data={
                "prefix": prefix,
                "scope": scope,
                "expires_at": audit.format_time(expires_at) if expires_at else None,
                "became_partner": became_partner,
            },
        )
    return NewKey(key=key, plaintext=f"{prefix}.{secret}")


def partner_key_revoke(*, key: PartnerKey, actor: str) -> PartnerKey:
    """Revoke `key` at once; revoking a revoked key changes nothing."""
    with transaction.atomic():
        locked = PartnerKey.objects.select_for_update().select_related("outlet").get(pk=key.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit.append(
            stream=locked.outlet.audit_stream(),
            actor=actor,
            action="partner_key.revoked",
            data={"prefix": locked.prefix, "scope": locked.scope},
        )
    return locked


def partner_key_find(plaintext: str) -> PartnerKey | None:
    """The live key `plaintext` names, or None (unknown, wrong secret, revoked or expired).

    One indexed query by prefix; the secret's digest is compared in constant time.
    """
    if len(plaintext) > KEY_MAX_LENGTH or not plaintext.startswith(PREFIX_MARK):
        return None
    prefix, dot, secret = plaintext.partition(".")
    if not dot or not secret:
        return None
    key = PartnerKey.objects.select_related("outlet").filter(prefix=prefix).first()
    if key is None:
        return None
    if not hmac.compare_digest(key.secret_digest, _digest(secret)):
        return None
    if key.revoked_at is not None:
        return None
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return None
    return key
