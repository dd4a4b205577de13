"""Trust cannot be borrowed: public suffixes, free-mail portals, other outlets' content, silently
dropped domain requests, and unaudited changes to what decides trust (real PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from rights.errors import DomainError
from rights.models import (
    AuditEvent,
    ContentItem,
    OutletDomain,
    RightsContact,
    Suppression,
    SuppressionKind,
    TakedownRequest,
)
from rights.services.catalogue import trust_record_save
from rights.services.intake import InvalidRequest
from rights.services.suppression import may_publish
from rights.states import CaseState, ContentStatus
from tests.engine import drive
from tests.factories import ContentItemFactory, OutletDomainFactory, OutletFactory

pytestmark = pytest.mark.django_db


def _staff_entered(submit: Any, email: str, **fields: Any) -> TakedownRequest:
    """A request staff typed in for a sender whose address they vouch for."""
    return submit(
        channel="staff", email=email, email_verified=True, actor="staff:test", **fields
    ).case


# --- Public suffixes ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["com.au", "co.uk", "github.io", "com", "*.co.uk"])
def test_a_public_suffix_is_never_a_whole_domain_request(
    submit: Any, outlet: Any, suffix: str
) -> None:
    ContentItemFactory.create(outlet=outlet, source_domain="www.example.com.au")
    with pytest.raises(InvalidRequest) as excinfo:
        _staff_entered(submit, "desk@telegraph.co.uk", whole_domain=suffix)
    assert "public" in excinfo.value.errors["whole_domain"]
    assert not TakedownRequest.objects.exists()
    assert not Suppression.objects.exists()


def test_a_public_suffix_is_never_an_outlet_domain(outlet: Any) -> None:
    with pytest.raises(DomainError, match="public suffix"):
        trust_record_save(record=OutletDomain(outlet=outlet, domain="co.uk"), actor="staff:1")
    assert not OutletDomain.objects.filter(domain="co.uk").exists()


def test_the_takedown_command_refuses_a_public_suffix(
    demo_catalogue: Any, run_command: Any
) -> None:
    result = run_command(
        "takedown", "submit", "--domain", "co.uk", "--email", "x@example.org", "--name", "X"
    )
    assert result.code == 2
    assert "public suffix" in result.stderr
    assert not TakedownRequest.objects.exists()


# --- Free-mail portals and declared contacts (the demo catalogue) ---------------------------


def _item_of(slug: str) -> ContentItem:
    return ContentItem.objects.filter(outlet__slug=slug).order_by("pk").first()  # type: ignore[return-value]


def test_a_portals_mailbox_holder_is_not_trusted(demo_catalogue: Any, submit: Any) -> None:
    item = _item_of("t-online")
    case = _staff_entered(submit, "jemand@t-online.de", urls=[item.source_url])
    assert case.state == CaseState.IN_REVIEW
    assert not case.trusted


def test_a_portals_declared_rights_contact_is_trusted(demo_catalogue: Any, submit: Any) -> None:
    item = _item_of("t-online")
    case = _staff_entered(submit, "rechte@stroeer.de", urls=[item.source_url])
    assert case.state == CaseState.APPROVED
    event = AuditEvent.objects.get(stream=case.audit_stream(), action="case.approved")
    contact = RightsContact.objects.get(email="rechte@stroeer.de")
    assert event.data["rule"] == "rights_contact"
    assert event.data["contacts"] == [contact.pk]
    assert "rechte@stroeer.de" not in json.dumps(event.data)


def test_a_rights_contact_speaks_only_for_its_own_outlet(demo_catalogue: Any, submit: Any) -> None:
    case = _staff_entered(submit, "rechte@stroeer.de", urls=[_item_of("telegraph").source_url])
    assert case.state == CaseState.IN_REVIEW


@pytest.mark.parametrize("sender", ["desk@telegraph.co.uk", "legal@telegraph.co.uk"])
def test_staff_only_domain_of_the_outlet_is_trusted(
    demo_catalogue: Any, submit: Any, sender: str
) -> None:
    case = _staff_entered(submit, sender, urls=[demo_catalogue.source_url])
    assert case.state == CaseState.APPROVED
    event = AuditEvent.objects.get(stream=case.audit_stream(), action="case.approved")
    assert event.data["rule"] == "staff_mail_domain"
    assert event.data["domains"] == ["telegraph.co.uk"]


def test_a_verified_domain_without_the_staff_only_attestation_lends_no_trust(
    demo_catalogue: Any, submit: Any
) -> None:
    OutletDomain.objects.filter(domain="telegraph.co.uk").update(staff_mail_only=False)
    case = _staff_entered(submit, "desk@telegraph.co.uk", urls=[demo_catalogue.source_url])
    assert case.state == CaseState.IN_REVIEW


def test_an_unverified_address_is_never_trusted(demo_catalogue: Any, submit: Any) -> None:
    case = submit(
        channel="email", email="desk@telegraph.co.uk", urls=[demo_catalogue.source_url]
    ).case
    assert case.state == CaseState.IN_REVIEW


# --- Partner trust follows ownership --------------------------------------------------------


def test_a_partner_is_not_trusted_for_another_outlets_article_under_its_domain(
    submit: Any,
) -> None:
    host = OutletFactory.create(slug="host", is_partner=True)
    OutletDomainFactory.create(outlet=host, domain="example-host.com")
    indie = OutletFactory.create(slug="indie")
    OutletDomainFactory.create(outlet=indie, domain="indie.example-host.com")
    article = ContentItemFactory.create(outlet=indie, source_domain="indie.example-host.com")
    case = submit(channel="api", outlet=host, urls=[article.source_url]).case
    assert case.state == CaseState.IN_REVIEW
    own = ContentItemFactory.create(outlet=host, source_domain="www.example-host.com")
    case = submit(channel="api", outlet=host, urls=[own.source_url]).case
    assert case.state == CaseState.APPROVED


def test_an_item_outside_its_outlets_verified_domains_is_not_trusted(
    submit: Any, outlet: Any
) -> None:
    stray = ContentItemFactory.create(outlet=outlet, source_domain="www.not-the-telegraph.example")
    case = _staff_entered(submit, "desk@telegraph.co.uk", urls=[stray.source_url])
    assert case.state == CaseState.IN_REVIEW
    case = submit(channel="api", outlet=outlet, urls=[stray.source_url]).case
    assert case.state == CaseState.IN_REVIEW


# --- Whole-domain requests are never dropped ------------------------------------------------


def test_whole_domain_request_is_kept_when_earlier_cases_hold_every_item(
    submit: Any, outlet: Any
) -> None:
    items = [
        ContentItemFactory.create(outlet=outlet, source_domain="blog.telegraph.co.uk") for _ in "ab"
    ]
    earlier = _staff_entered(submit, "desk@telegraph.co.uk", urls=[i.source_url for i in items])
    assert earlier.state == CaseState.APPROVED  # open, holding every item of the domain
    domain_case = _staff_entered(
        submit, "desk@telegraph.co.uk", whole_domain="blog.telegraph.co.uk"
    )
    assert domain_case.pk != earlier.pk
    assert domain_case.whole_domain == "blog.telegraph.co.uk"
    drive(earlier)
    drive(domain_case)
    domain_case.refresh_from_db()
    assert domain_case.state == CaseState.REMOVED
    assert Suppression.objects.filter(
        kind=SuppressionKind.DOMAIN, value="blog.telegraph.co.uk", lifted_at__isnull=True
    ).exists()
    assert not may_publish("https://blog.telegraph.co.uk/tomorrows-article/")
    assert {i.status for i in ContentItem.objects.filter(pk__in=[i.pk for i in items])} == {
        ContentStatus.REMOVED
    }


# --- Every change to what decides trust is audited ------------------------------------------


def _trust_events(slug: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(stream=f"outlet:{slug}", action__startswith="trust.").order_by(
            "seq"
        )
    )


def test_admin_changes_to_trust_settings_are_audited(
    admin_client: Client, admin_user: User, outlet: Any
) -> None:
    domain = OutletDomain.objects.get(domain="telegraph.co.uk")
    before = len(_trust_events("telegraph"))
    response = admin_client.post(
        reverse("admin:rights_outletdomain_change", args=[domain.pk]),
        {
            "domain": "telegraph.co.uk",
            "verified_at_0": "2026-01-01",
            "verified_at_1": "00:00:00",
            "outlet": outlet.pk,
        },
    )
    assert response.status_code == 302, response.content
    events = _trust_events("telegraph")[before:]
    assert [e.action for e in events] == ["trust.changed"]
    assert events[0].actor == f"staff:{admin_user.pk}"
    assert events[0].data["domain"] == "telegraph.co.uk"
    assert events[0].data["staff_mail_only"] is False
    assert set(events[0].data["changed"]) >= {"staff_mail_only"}


def test_admin_refuses_a_public_suffix_domain(admin_client: Client, outlet: Any) -> None:
    response = admin_client.post(
        reverse("admin:rights_outletdomain_add"),
        {"domain": "co.uk", "outlet": outlet.pk, "verified_at_0": "", "verified_at_1": ""},
    )
    assert response.status_code == 200
    assert b"public suffix" in response.content
    assert not OutletDomain.objects.filter(domain="co.uk").exists()


def test_moving_an_item_to_another_outlet_is_audited_on_both(admin_user: User, outlet: Any) -> None:
    other = OutletFactory.create(slug="other")
    item = ContentItemFactory.create(outlet=outlet)
    item.outlet = other
    trust_record_save(record=item, actor=f"staff:{admin_user.pk}", fields=["outlet"])
    for slug in ("telegraph", "other"):
        (event,) = [e for e in _trust_events(slug) if e.data["kind"] == "item"]
        assert event.data["id"] == item.pk
        assert event.data["outlet"] == "other"
        assert event.data["changed"] == ["outlet"]


def test_rights_contacts_are_audited_without_their_address(admin_user: User, outlet: Any) -> None:
    contact = trust_record_save(
        record=RightsContact(outlet=outlet, email="rights@agency.example"),
        actor=f"staff:{admin_user.pk}",
    )
    (event,) = [e for e in _trust_events("telegraph") if e.data["kind"] == "rights_contact"]
    assert event.action == "trust.created"
    assert event.data["id"] == contact.pk
    assert "agency.example" not in json.dumps(event.data)
