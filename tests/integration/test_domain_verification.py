"""Domain verification: a TXT record checked over real DNS (a loopback responder built with
dnspython's message API), or a named staff attestation; each audited on the outlet's stream, a
failure writing nothing, and an unverified domain lending no trust (real PostgreSQL)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from rights.errors import DomainError
from rights.models import AuditEvent, Outlet, OutletDomain, TakedownRequest
from rights.services.catalogue import (
    domain_attest,
    domain_recheck,
    domain_txt_name,
    domain_txt_value,
    domain_verification_start,
    domain_verify_dns,
    domains_recheck,
    trust_record_save,
)
from rights.states import CaseState
from tests.factories import ContentItemFactory, OutletDomainFactory, OutletFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db


class LoopbackDNS:
    """A tiny authoritative DNS responder on 127.0.0.1: TXT records from `txt` (a name that is
    not there answers NXDOMAIN); `silent` drops every query, so the client times out."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.silent = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            if self.silent:
                continue
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            values = self.txt.get(question.name.to_text(omit_final_dot=True))
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT and values:
                response.answer.append(
                    dns.rrset.from_text(question.name, 60, "IN", "TXT", *[f'"{v}"' for v in values])
                )
            self.sock.sendto(response.to_wire(), peer)

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        return resolver

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def dns_server() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    yield server
    server.close()


@pytest.fixture
def admin_user_(db: None) -> User:
    return staff_in("admin", "ada")


@pytest.fixture
def domain(db: None) -> OutletDomain:
    outlet = OutletFactory.create(name="Morning Post", slug="morning-post")
    return OutletDomainFactory.create(
        outlet=outlet, domain="morningpost.example", verified_at=None, staff_mail_only=True
    )


def _events(outlet: Outlet) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(stream=outlet.audit_stream()).order_by("seq"))


def _unverified(domain: OutletDomain) -> None:
    domain.refresh_from_db()
    assert domain.verified_at is None
    assert domain.verification_method == ""
    assert domain.verified_by_id is None


# --- DNS TXT record ------------------------------------------------------------------------


def test_txt_record_found_verifies_and_audits(
    domain: OutletDomain, admin_user_: User, dns_server: LoopbackDNS
) -> None:
    token = domain_verification_start(domain=domain, user=admin_user_)
    assert len(token) >= 24
    assert domain_txt_name(domain) == "_rights-verify.morningpost.example"
    dns_server.txt["_rights-verify.morningpost.example"] = ["unrelated", domain_txt_value(domain)]

    domain_verify_dns(domain=domain, user=admin_user_, resolver=dns_server.resolver())

    domain.refresh_from_db()
    assert domain.verification_method == "dns_txt"
    assert domain.verified_at is not None
    assert domain.verified_by_id == admin_user_.pk
    assert "_rights-verify.morningpost.example" in domain.verification_note
    started, verified = _events(domain.outlet)[-2:]
    assert started.action == "domain.verification_started"
    assert verified.action == "domain.verified"
    assert verified.actor == f"staff:{admin_user_.pk}"
    assert verified.data["verification_method"] == "dns_txt"
    assert verified.data["staff"] == admin_user_.pk
    assert verified.data["domain"] == "morningpost.example"
    assert token not in str(verified.data)  # nothing the record's owner could replay


@pytest.mark.parametrize(
    ("records", "silent", "message"),
    [
        ({"_rights-verify.morningpost.example": ["rights-verify=someone-elses"]}, False, "none"),
        ({}, False, "NXDOMAIN"),
        ({"_rights-verify.morningpost.example": []}, False, "no TXT record"),
        ({}, True, "within 0.5 seconds"),
    ],
    ids=["wrong-token", "nxdomain", "no-txt", "timeout"],
)
def test_a_failed_lookup_says_why_and_writes_nothing(
    domain: OutletDomain,
    admin_user_: User,
    dns_server: LoopbackDNS,
    records: dict[str, list[str]],
    silent: bool,
    message: str,
) -> None:
    domain_verification_start(domain=domain, user=admin_user_)
    dns_server.txt.update(records)
    dns_server.silent = silent
    before = len(_events(domain.outlet))
    with pytest.raises(DomainError) as raised:
        domain_verify_dns(
            domain=domain, user=admin_user_, resolver=dns_server.resolver(), timeout=0.5
        )
    assert message in raised.value.message
    assert "_rights-verify.morningpost.example" in raised.value.message
    _unverified(domain)
    assert len(_events(domain.outlet)) == before


def test_dns_verification_needs_a_token_first(
    domain: OutletDomain, admin_user_: User, dns_server: LoopbackDNS
) -> None:
    with pytest.raises(DomainError, match="start verification first"):
        domain_verify_dns(domain=domain, user=admin_user_, resolver=dns_server.resolver())
    _unverified(domain)


# --- Staff attestation -----------------------------------------------------------------------


def test_attestation_needs_a_note(domain: OutletDomain, admin_user_: User) -> None:
    before = len(_events(domain.outlet))
    with pytest.raises(DomainError) as raised:
        domain_attest(domain=domain, user=admin_user_, note="   ")
    assert raised.value.field == "note"
    _unverified(domain)
    assert len(_events(domain.outlet)) == before


def test_attestation_records_who_and_why(domain: OutletDomain, admin_user_: User) -> None:
    domain_attest(domain=domain, user=admin_user_, note="Signed contract 2026-11, legal dept.")
    domain.refresh_from_db()
    assert domain.verification_method == "staff_attestation"
    assert domain.verified_by_id == admin_user_.pk
    assert domain.verification_note == "Signed contract 2026-11, legal dept."
    event = _events(domain.outlet)[-1]
    assert event.action == "domain.verified"
    assert event.data["staff"] == admin_user_.pk
    assert "contract" not in str(event.data)  # the note is kept as a digest only
    assert event.data["note_digest"]


def test_renaming_a_verified_domain_unverifies_it(domain: OutletDomain, admin_user_: User) -> None:
    domain_attest(domain=domain, user=admin_user_, note="Known to us.")
    domain.refresh_from_db()
    domain.domain = "eveningpost.example"
    trust_record_save(record=domain, actor="staff:test", fields=["domain"])
    _unverified(domain)
    event = _events(domain.outlet)[-1]
    assert event.action == "trust.changed"
    assert "verified_at" in event.data["changed"]


# --- Trust ---------------------------------------------------------------------------------


# --- Scheduled re-checks of the TXT record ----------------------------------------------------


@pytest.fixture
def txt_verified(domain: OutletDomain, admin_user_: User, dns_server: LoopbackDNS) -> OutletDomain:
    domain_verification_start(domain=domain, user=admin_user_)
    dns_server.txt[domain_txt_name(domain)] = [domain_txt_value(domain)]
    return domain_verify_dns(domain=domain, user=admin_user_, resolver=dns_server.resolver())


def test_a_record_still_there_keeps_the_domain_verified(
    txt_verified: OutletDomain, dns_server: LoopbackDNS
) -> None:
    before = len(_events(txt_verified.outlet))
    assert domains_recheck(resolver=dns_server.resolver()) == {
        "held": 1,
        "gone": 0,
        "lapsed": 0,
        "unknown": 0,
    }
    txt_verified.refresh_from_db()
    assert txt_verified.verification_method == "dns_txt"
    assert txt_verified.rechecked_at is not None
    assert len(_events(txt_verified.outlet)) == before  # a routine finding is not an event


def test_a_record_gone_in_several_checks_in_a_row_unverifies_the_domain(
    txt_verified: OutletDomain, dns_server: LoopbackDNS, settings: Any, submit: Any
) -> None:
    settings.DOMAIN_RECHECK_LAPSE_AFTER = 3
    resolver = dns_server.resolver()
    del dns_server.txt[domain_txt_name(txt_verified)]
    assert domain_recheck(domain=txt_verified, resolver=resolver) == "gone"
    # A lookup that fails says nothing about the record: not counted, not audited.
    dns_server.silent = True
    assert domain_recheck(domain=txt_verified, resolver=resolver, timeout=0.3) == "unknown"
    dns_server.silent = False
    # Back in time: the count starts again.
    dns_server.txt[domain_txt_name(txt_verified)] = [domain_txt_value(txt_verified)]
    assert domain_recheck(domain=txt_verified, resolver=resolver) == "held"
    txt_verified.refresh_from_db()
    assert txt_verified.recheck_failures == 0

    dns_server.txt[domain_txt_name(txt_verified)] = ["rights-verify=another-token"]
    assert [domain_recheck(domain=txt_verified, resolver=resolver) for _ in range(3)] == [
        "gone",
        "gone",
        "lapsed",
    ]
    _unverified(txt_verified)
    assert "gone in 3 re-checks in a row" in txt_verified.verification_note
    events = _events(txt_verified.outlet)
    assert [e.action for e in events].count("domain.recheck_failed") == 4
    assert events[-1].action == "domain.verification_lapsed"
    assert events[-1].actor == "system:domain-recheck"
    assert events[-2].data["finding"] == "dns_token_mismatch"
    # Lapsed, it lends no trust, and the schedule no longer looks it up.
    item = ContentItemFactory.create(
        outlet=txt_verified.outlet, source_domain="morningpost.example"
    )
    case = submit(
        channel="staff",
        email="desk@morningpost.example",
        email_verified=True,
        actor="staff:test",
        urls=[item.source_url],
    ).case
    assert case.state == CaseState.IN_REVIEW
    assert domains_recheck(resolver=resolver) == {"held": 0, "gone": 0, "lapsed": 0, "unknown": 0}


def test_a_new_token_issued_leaves_the_verified_record_standing(
    txt_verified: OutletDomain, admin_user_: User, dns_server: LoopbackDNS
) -> None:
    """Issuing a new token starts a new verification; until it is checked, the re-checks look
    for the record that verified the domain, which is still there."""
    old_record = domain_txt_value(txt_verified)
    domain_verification_start(domain=txt_verified, user=admin_user_)
    txt_verified.refresh_from_db()
    assert domain_txt_value(txt_verified) != old_record
    resolver = dns_server.resolver()
    assert [domain_recheck(domain=txt_verified, resolver=resolver) for _ in range(4)] == [
        "held"
    ] * 4
    # The outlet publishes the new record and staff check it: that is the one looked for now.
    dns_server.txt[domain_txt_name(txt_verified)] = [domain_txt_value(txt_verified)]
    domain_verify_dns(domain=txt_verified, user=admin_user_, resolver=resolver)
    txt_verified.refresh_from_db()
    assert txt_verified.verified_token == txt_verified.verification_token
    assert domain_recheck(domain=txt_verified, resolver=resolver) == "held"


def test_attested_domains_are_not_looked_up(
    domain: OutletDomain, admin_user_: User, dns_server: LoopbackDNS
) -> None:
    domain_attest(domain=domain, user=admin_user_, note="Known to us.")
    assert domains_recheck(resolver=dns_server.resolver())["held"] == 0
    domain.refresh_from_db()
    assert domain.verification_method == "staff_attestation"


def test_the_recheck_is_on_the_schedule() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["domains-recheck"]
    assert entry["task"] == "rights.domains_recheck"
    assert entry["schedule"] == django_settings.DOMAIN_RECHECK_INTERVAL == 86400


def test_an_unverified_domain_lends_no_trust(
    domain: OutletDomain, admin_user_: User, submit: Any
) -> None:
    def desk_request() -> TakedownRequest:
        item = ContentItemFactory.create(outlet=domain.outlet, source_domain="morningpost.example")
        return submit(
            channel="staff",
            email="desk@morningpost.example",
            email_verified=True,
            actor="staff:test",
            urls=[item.source_url],
        ).case

    assert desk_request().state == CaseState.IN_REVIEW
    domain_attest(domain=domain, user=admin_user_, note="Known to us.")
    assert desk_request().state == CaseState.APPROVED


# --- The console ---------------------------------------------------------------------------


def _verify_url(domain: OutletDomain) -> str:
    return reverse("admin:rights_outletdomain_verify", args=[domain.pk])


def test_the_verify_page_shows_the_txt_record_and_attests(
    domain: OutletDomain, admin_user_: User
) -> None:
    client = Client()
    client.force_login(admin_user_)
    assert client.post(_verify_url(domain), {"step": "start"}).status_code == 302
    domain.refresh_from_db()
    page = client.get(_verify_url(domain)).content.decode()
    assert "_rights-verify.morningpost.example" in page
    assert domain_txt_value(domain) in page

    refused = client.post(_verify_url(domain), {"step": "attest", "note": ""})
    assert refused.status_code == 200
    assert "needs a note" in refused.content.decode()
    _unverified(domain)

    done = client.post(_verify_url(domain), {"step": "attest", "note": "Called their CTO."})
    assert done.status_code == 302
    domain.refresh_from_db()
    assert domain.verification_method == "staff_attestation"
    assert domain.verified_by_id == admin_user_.pk


def test_the_verify_action_leads_to_the_page(domain: OutletDomain, admin_user_: User) -> None:
    client = Client()
    client.force_login(admin_user_)
    response = client.post(
        reverse("admin:rights_outletdomain_changelist"),
        {"action": "verify_selected", "_selected_action": [domain.pk]},
    )
    assert response.status_code == 302
    assert response["Location"] == _verify_url(domain)


@pytest.mark.parametrize("role", ["reviewer", "lead"])
def test_only_admin_verifies_domains(domain: OutletDomain, role: str) -> None:
    client = Client()
    client.force_login(staff_in(role, f"{role}-v"))
    assert client.get(_verify_url(domain)).status_code == 403
    for step in ({"step": "start"}, {"step": "attest", "note": "Trust me."}):
        assert client.post(_verify_url(domain), step).status_code == 403
    changelist = client.get(reverse("admin:rights_outletdomain_changelist"))
    form = changelist.context["action_form"]
    assert form is None or "verify_selected" not in dict(form.fields["action"].choices)
    _unverified(domain)
    domain.refresh_from_db()
    assert domain.verification_token == ""
