"""factory_boy factories for the domain model."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from rights.models import (
    Channel,
    ContentItem,
    Outlet,
    OutletDomain,
    Requester,
    TakedownRequest,
    Target,
)
from rights.statements import REQUIRED_STATEMENTS, STATEMENTS_VERSION
from rights.states import CaseState, TargetState


class OutletFactory(factory.django.DjangoModelFactory[Outlet]):
    class Meta:
        model = Outlet
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Outlet {n}")
    slug = factory.Sequence(lambda n: f"outlet-{n}")
    is_partner = False


class OutletDomainFactory(factory.django.DjangoModelFactory[OutletDomain]):
    class Meta:
        model = OutletDomain

    outlet = factory.SubFactory(OutletFactory)
    domain = factory.Sequence(lambda n: f"outlet{n}.example")
    verified_at = factory.LazyFunction(timezone.now)
    # A verified domain says how it was verified (the model's constraint insists).
    verification_method = factory.LazyAttribute(
        lambda o: "staff_attestation" if o.verified_at is not None else ""
    )


class ContentItemFactory(factory.django.DjangoModelFactory[ContentItem]):
    class Meta:
        model = ContentItem

    outlet = factory.SubFactory(OutletFactory)
    source_domain = "www.telegraph.co.uk"
    slug = factory.Sequence(lambda n: f"article-{n}")
    source_url = factory.LazyAttribute(lambda o: f"https://{o.source_domain}/news/{o.slug}/")
    title = factory.Sequence(lambda n: f"Article number {n}")
    body = "The body of the article.\n\nA second paragraph."
    published_at = factory.LazyFunction(timezone.now)


class RequesterFactory(factory.django.DjangoModelFactory[Requester]):
    class Meta:
        model = Requester

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = "A Person"


def statements_for(basis: str = "copyright") -> list[str]:
    return list(REQUIRED_STATEMENTS[basis])


def telegraph(partner: bool = True) -> Outlet:
    """The Telegraph with its verified domain, which it attests gives mailboxes to its own staff
    only (so desk@telegraph.co.uk speaks for it), as the trust rules expect it."""
    outlet = OutletFactory.create(name="The Telegraph", slug="telegraph", is_partner=partner)
    OutletDomainFactory.create(outlet=outlet, domain="telegraph.co.uk", staff_mail_only=True)
    return outlet


class TakedownRequestFactory(factory.django.DjangoModelFactory[TakedownRequest]):
    """A case with a running clock; pass `state=` to start it anywhere in the machine."""

    class Meta:
        model = TakedownRequest

    reference = factory.Sequence(lambda n: f"TD-T{n:06d}")
    channel = Channel.EMAIL
    requester = factory.SubFactory(RequesterFactory)
    basis = "copyright"
    statements = factory.LazyAttribute(lambda o: statements_for(o.basis))
    statements_version = STATEMENTS_VERSION
    state = CaseState.OPEN
    received_at = factory.LazyFunction(timezone.now)
    clock_started_at = factory.LazyAttribute(lambda o: o.received_at)
    deadline_seconds = 86400
    deadline_at = factory.LazyAttribute(
        lambda o: o.clock_started_at + timedelta(seconds=o.deadline_seconds)
    )


class TargetFactory(factory.django.DjangoModelFactory[Target]):
    class Meta:
        model = Target

    case = factory.SubFactory(TakedownRequestFactory)
    content_item = factory.SubFactory(ContentItemFactory)
    url = factory.LazyAttribute(lambda o: o.content_item.source_url)
    state = TargetState.PENDING


def telegraph_items(count: int, prefix: str = "bulk") -> list[int]:
    """Many Telegraph items at once (one INSERT), for backlogs and benchmarks; their ids."""
    outlet = telegraph()
    now = timezone.now()
    created = ContentItem.objects.bulk_create(
        ContentItem(
            slug=f"{prefix}-{n}",
            source_url=f"https://www.telegraph.co.uk/news/{prefix}-{n}/",
            source_domain="www.telegraph.co.uk",
            outlet=outlet,
            title=f"Article {prefix} {n}",
            body="Body.",
            published_at=now,
        )
        for n in range(count)
    )
    return [item.pk for item in created]
