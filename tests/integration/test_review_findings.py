"""Holes found by trying to break the promise from outside: a partner's key borrowed for a
person's address, a domain rule over another outlet's site, content suppressed only once a slow
CMS caught up, a door that told suspended addresses apart, and a decision cut from the trail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from rights import audit
from rights.models import (
    AuditEvent,
    AuditStream,
    ContentItem,
    Requester,
    Suppression,
    SuppressionKind,
    TakedownRequest,
)
from rights.services import review
from rights.services.intake import InvalidRequest
from rights.services.suppression import may_publish
from rights.states import CaseState, ContentStatus
from tests.engine import drive, trusted
from tests.factories import (
    ContentItemFactory,
    OutletDomainFactory,
    OutletFactory,
    RequesterFactory,
)
from tests.stack import WEBHOOK_SECRET, Receiver

pytestmark = pytest.mark.django_db


def test_a_partner_key_does_not_speak_for_the_address_it_names(
    submit: Any, item: ContentItem, outlet: Any
) -> None:
    theirs = submit(
        channel="staff",
        email="alice@example.org",
        name="Alice",
        email_verified=True,
        urls=[item.source_url],
    ).case
    trail = list(AuditEvent.objects.filter(stream=theirs.audit_stream()))
    other = OutletFactory.create(slug="other-partner", is_partner=True)
    result = submit(
        channel="api",
        outlet=other,
        email="ALICE@example.org",
        name="Mallory",
        organisation="Evil",
        urls=[item.source_url],
    )
    assert result.created
    assert result.case.pk != theirs.pk
    assert result.merged == []
    assert Requester.objects.get(email="alice@example.org").name == "Alice"
    assert list(AuditEvent.objects.filter(stream=theirs.audit_stream())) == trail


def test_a_whole_domain_request_over_another_outlets_site_goes_to_review(submit: Any) -> None:
    host = OutletFactory.create(slug="hostco", is_partner=True)
    OutletDomainFactory.create(outlet=host, domain="example-host.com")
    ContentItemFactory.create(outlet=host, source_domain="www.example-host.com")
    indie = OutletFactory.create(slug="indie")
    OutletDomainFactory.create(outlet=indie, domain="indie.example-host.com")
    case = submit(channel="api", outlet=host, whole_domain="example-host.com").case
    assert case.state == CaseState.IN_REVIEW
    assert may_publish("https://indie.example-host.com/news/tomorrow/")


def test_a_whole_domain_request_names_the_site_whatever_host_it_gives(
    submit: Any, outlet: Any
) -> None:
    ContentItemFactory.create(outlet=outlet, source_domain="www.telegraph.co.uk")
    case = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        email_verified=True,
        whole_domain="www.telegraph.co.uk",
    ).case
    drive(case)
    for host in ("telegraph.co.uk", "m.telegraph.co.uk", "amp.telegraph.co.uk"):
        assert not may_publish(f"https://{host}/news/tomorrow/"), host


@pytest.fixture
def cms_down(settings: Any) -> Iterator[Receiver]:
    """A real loopback CMS that answers 500 for the whole test."""
    cms = Receiver()
    settings.REMOVAL_BACKENDS = ["catalogue", "webhook"]
    settings.REMOVAL_WEBHOOK_URL = cms.url
    settings.REMOVAL_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.REMOVAL_WEBHOOK_TIMEOUT = 1
    cms.fail_until = float("inf")
    yield cms
    cms.close()


def test_our_copy_is_suppressed_the_moment_it_is_removed_whatever_the_cms_does(
    submit: Any, item: ContentItem, cms_down: Receiver
) -> None:
    case = trusted(submit, item)
    drive(case)
    assert ContentItem.objects.get(pk=item.pk).status == ContentStatus.REMOVED
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REMOVING
    assert not may_publish(item.source_url)
    assert sum(cms_down.calls.values()) >= 1  # the CMS was asked, and failed


def test_a_whole_domain_rule_stands_from_the_decision_not_the_last_cms_call(
    submit: Any, outlet: Any, cms_down: Receiver
) -> None:
    ContentItemFactory.create(outlet=outlet, source_domain="blog.telegraph.co.uk")
    case = submit(
        channel="staff",
        email="desk@telegraph.co.uk",
        email_verified=True,
        whole_domain="blog.telegraph.co.uk",
    ).case
    drive(case)
    assert TakedownRequest.objects.get(pk=case.pk).state == CaseState.REMOVING
    assert Suppression.objects.filter(
        kind=SuppressionKind.DOMAIN, value="blog.telegraph.co.uk", lifted_at__isnull=True
    ).exists()


@pytest.mark.parametrize("suspended", [False, True])
def test_a_public_door_refuses_a_bad_domain_request_from_anyone_alike(
    submit: Any, suspended: bool
) -> None:
    RequesterFactory.create(
        email="someone@example.org", suspended_at=timezone.now() if suspended else None
    )
    with pytest.raises(InvalidRequest) as excinfo:
        submit(channel="web", email="someone@example.org", whole_domain="example.org")
    assert "nothing republished here" in excinfo.value.errors["whole_domain"]


def test_a_decision_cut_from_the_trail_before_any_checkpoint_is_caught(
    submit: Any, item: ContentItem, admin_user: Any
) -> None:
    case = submit(urls=[item.source_url]).case
    review.case_reject(case=case, user_id=admin_user.pk, reasons="Not theirs.")
    audit.verify()
    stream = case.audit_stream()
    first_cut = (
        AuditEvent.objects.filter(stream=stream, action="case.rejected").values_list(
            "seq", flat=True
        )
    ).get()
    keep = AuditEvent.objects.get(stream=stream, seq=first_cut - 1)
    with connection.cursor() as cursor:
        # As the database's owner: triggers off, the decision's events gone, the head reset.
        cursor.execute("ALTER TABLE rights_auditevent DISABLE TRIGGER ALL")
        cursor.execute(
            "DELETE FROM rights_auditevent WHERE stream = %s AND seq >= %s", [stream, first_cut]
        )
        cursor.execute("ALTER TABLE rights_auditevent ENABLE TRIGGER ALL")
    AuditStream.objects.filter(name=stream).update(seq=keep.seq, head_hash=keep.hash)
    with pytest.raises(audit.AuditBroken, match="rejected"):
        audit.verify()
