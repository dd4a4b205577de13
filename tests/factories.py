"""factory_boy factories for the domain model."""

from __future__ import annotations

import factory
from django.utils import timezone

from rights.models import ContentItem, Outlet, OutletDomain, Requester
from rights.statements import REQUIRED_STATEMENTS


class OutletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Outlet
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Outlet {n}")
    slug = factory.Sequence(lambda n: f"outlet-{n}")
    is_partner = False


class OutletDomainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutletDomain

    outlet = factory.SubFactory(OutletFactory)
    domain = factory.Sequence(lambda n: f"outlet{n}.example")
    verified_at = factory.LazyFunction(timezone.now)


class ContentItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentItem

    outlet = factory.SubFactory(OutletFactory)
    source_domain = "www.telegraph.co.uk"
    slug = factory.Sequence(lambda n: f"article-{n}")
    source_url = factory.LazyAttribute(lambda o: f"https://{o.source_domain}/news/{o.slug}/")
    title = factory.Sequence(lambda n: f"Article number {n}")
    body = "The body of the article.\n\nA second paragraph."
    published_at = factory.LazyFunction(timezone.now)


class RequesterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Requester

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    name = "A Person"


def statements_for(basis: str = "copyright") -> list[str]:
    return list(REQUIRED_STATEMENTS[basis])


def telegraph(partner: bool = True) -> Outlet:
    """The Telegraph with its verified domain, as the trust rules expect it."""
    outlet = OutletFactory(name="The Telegraph", slug="telegraph", is_partner=partner)
    OutletDomainFactory(outlet=outlet, domain="telegraph.co.uk")
    return outlet
