"""The catalogue's trust settings: who owns which content, and who speaks for an outlet.

An outlet's verified domains, whether a domain gives mailboxes to the outlet's staff only, its
rights contacts, its partner flag and an item's outlet decide which requests are trusted and so
approved at once. Every change to them is saved here, with an audit event on the outlet's stream
in the same transaction, so that any trust decision can be reconstructed later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from rights import audit
from rights.errors import DomainError
from rights.models import ContentItem, Outlet, OutletDomain, RightsContact
from rights.normalise import NormaliseError, normalise_domain

# The fields of each record that decide trust; a change to any of them is audited.
TRUST_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Outlet: ("is_partner",),
    OutletDomain: ("outlet", "domain", "verified_at", "staff_mail_only"),
    RightsContact: ("outlet", "email"),
    ContentItem: ("outlet", "source_url"),
}
TrustRecord = Outlet | OutletDomain | RightsContact | ContentItem


def _kind(record: models.Model) -> str:
    return {
        Outlet: "outlet",
        OutletDomain: "domain",
        RightsContact: "rights_contact",
        ContentItem: "item",
    }[type(record)]


def _outlets(record: TrustRecord, before: Outlet | None) -> list[Outlet]:
    current = record if isinstance(record, Outlet) else _owner(record)
    found = {o.pk: o for o in (before, current) if o is not None}
    return list(found.values())


def _owner(record: TrustRecord | None) -> Outlet | None:
    if record is None or isinstance(record, Outlet) or record.outlet_id is None:
        return None
    return record.outlet


def _describe(record: TrustRecord) -> dict[str, Any]:
    """What the trail keeps of a record: identifiers, domains and flags, never an address."""
    data: dict[str, Any] = {"kind": _kind(record), "id": record.pk}
    if isinstance(record, Outlet):
        data["is_partner"] = record.is_partner
    elif isinstance(record, OutletDomain):
        data.update(
            domain=record.domain,
            verified=record.verified_at is not None,
            staff_mail_only=record.staff_mail_only,
        )
    elif isinstance(record, ContentItem):
        data["source_domain"] = record.source_domain
    if not isinstance(record, Outlet):
        data["outlet"] = record.outlet.slug if record.outlet_id else None  # type: ignore[union-attr]
    return data


def check_trust_record(record: TrustRecord) -> None:
    """Refuse what can never be trusted: a public suffix as an outlet's domain."""
    if isinstance(record, OutletDomain):
        try:
            record.domain = normalise_domain(record.domain)
        except NormaliseError as exc:
            raise DomainError(f"the domain {exc}", field="domain") from exc


def trust_record_save(
    *, record: TrustRecord, actor: str, fields: Iterable[str] | None = None
) -> TrustRecord:
    """Save a record staff created (`fields` None) or edited (`fields` changed); audit any
    change to what decides trust on the outlet's stream (each outlet's, when it moved)."""
    check_trust_record(record)
    model = type(record)
    with transaction.atomic():
        before = (
            model._default_manager.select_for_update().filter(pk=record.pk).first()
            if record.pk is not None
            else None
        )
        if before is None:
            record.save()
            changed = list(TRUST_FIELDS[model])
            action = "trust.created"
        else:
            names = sorted(set(fields or ()))
            if not names:
                return record
            record.save(update_fields=names)
            changed = [f for f in TRUST_FIELDS[model] if getattr(before, f) != getattr(record, f)]
            action = "trust.changed"
        if changed:
            for outlet in _outlets(record, _owner(before)):
                audit.append(
                    stream=outlet.audit_stream(),
                    actor=actor,
                    action=action,
                    data={**_describe(record), "changed": changed},
                )
    return record


def trust_record_delete(*, record: TrustRecord, actor: str) -> None:
    with transaction.atomic():
        data = _describe(record)
        outlets = _outlets(record, None)
        record.delete()
        # An outlet's stream outlives the outlet: the trail keeps what it was.
        for outlet in outlets:
            audit.append(
                stream=outlet.audit_stream(), actor=actor, action="trust.deleted", data=data
            )
