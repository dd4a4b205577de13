"""`python manage.py seed_demo`: a realistic, deterministic demo catalogue.

Seven outlets with verified domains (one a news portal that also hands out free mail, whose
domain lends no trust) and a few hundred republished articles, generated from word lists with a
fixed seed, so that every run (on any machine, on any day) describes the same catalogue.
Idempotent: outlets and domains are keyed on their slug and domain, and articles that already
exist are left exactly as they are, because their status belongs to the workflow (a demo item
removed by a takedown must stay removed when the catalogue is seeded again).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.text import slugify

from rights.models import ContentItem, DomainVerification, Outlet, OutletDomain, RightsContact
from rights.normalise import host_of, normalise_url
from rights.services.catalogue import trust_record_save

SEED = 20261120
ACTOR = "system:seed_demo"
ITEMS_PER_OUTLET = 80
# The demo world's "now": fixed, so that the catalogue does not depend on the day it is seeded.
ANCHOR = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
SPREAD = timedelta(weeks=6)
VERIFIED_AT = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

# The item the README and demos refer to: republished from telegraph.co.uk.
EXAMPLE_SLUG = "hedgehog-crossing-saves-village-fete"
EXAMPLE_TITLE = "Hedgehog crossing saves village fete from cancellation"
EXAMPLE_SOURCE = f"https://www.telegraph.co.uk/news/2026/11/20/{EXAMPLE_SLUG}/"
EXAMPLE_PUBLISHED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class DemoOutlet:
    slug: str
    name: str
    is_partner: bool
    domains: tuple[str, ...]
    sections: tuple[str, ...]
    url: str  # a str.format pattern; see `_source_url`
    # Domains the outlet attests give mailboxes to its own staff only: any verified address
    # there speaks for it. A portal that also hands out free mail attests none.
    staff_mail_domains: tuple[str, ...] = ()
    # Addresses the outlet declared as speaking for its rights, wherever they are.
    rights_contacts: tuple[str, ...] = ()


OUTLETS: tuple[DemoOutlet, ...] = (
    DemoOutlet(
        "telegraph",
        "The Telegraph",
        True,
        ("telegraph.co.uk",),
        ("news", "politics", "business", "world-news", "science", "travel", "money", "sport"),
        "https://www.telegraph.co.uk/{section}/{y}/{m:02d}/{d:02d}/{slug}/",
        staff_mail_domains=("telegraph.co.uk",),
    ),
    DemoOutlet(
        "guardian",
        "The Guardian",
        True,
        ("theguardian.com", "guardian.co.uk"),
        ("uk-news", "world", "politics", "business", "environment", "science", "culture"),
        "https://www.theguardian.com/{section}/{y}/{mon}/{d:02d}/{slug}",
        staff_mail_domains=("theguardian.com", "guardian.co.uk"),
    ),
    DemoOutlet(
        "le-monde",
        "Le Monde",
        False,
        ("lemonde.fr",),
        ("international", "politique", "economie", "planete", "sciences", "culture"),
        "https://www.lemonde.fr/{section}/article/{y}/{m:02d}/{d:02d}/{slug}_{n}_{k}.html",
        rights_contacts=("droits@lemonde.fr",),
    ),
    DemoOutlet(
        "der-spiegel",
        "Der Spiegel",
        False,
        ("spiegel.de",),
        ("politik", "wirtschaft", "wissenschaft", "kultur", "ausland", "panorama"),
        "https://www.spiegel.de/{section}/{slug}-a-{uuid}",
    ),
    DemoOutlet(
        "el-pais",
        "El País",
        True,
        ("elpais.com",),
        ("internacional", "espana", "economia", "ciencia", "cultura", "clima-y-medio-ambiente"),
        "https://elpais.com/{section}/{y}-{m:02d}-{d:02d}/{slug}.html",
    ),
    DemoOutlet(
        "asahi-shimbun",
        "The Asahi Shimbun",
        False,
        ("asahi.com",),
        ("ajw",),
        "https://www.asahi.com/{section}/articles/{n}",
    ),
    # A news portal that is also a free-mail provider: anyone can have an address at
    # t-online.de, so its domain lends no trust; its rights team writes from the publisher's.
    DemoOutlet(
        "t-online",
        "t-online",
        False,
        ("t-online.de",),
        ("nachrichten", "wirtschaft", "panorama", "digital"),
        "https://www.t-online.de/{section}/id_{n}/{slug}.html",
        rights_contacts=("rechte@stroeer.de",),
    ),
)

SUBJECTS = (
    "Ministers",
    "Council leaders",
    "Scientists",
    "Farmers",
    "The central bank",
    "Rail operators",
    "Teachers' unions",
    "Hospital doctors",
    "Regulators",
    "Fishing communities",
    "Museum curators",
    "Residents",
    "Energy companies",
    "City planners",
    "Astronomers",
    "Wine growers",
    "Airport bosses",
    "Startup founders",
)
VERBS = (
    "warn over",
    "back plans for",
    "reject",
    "call for",
    "celebrate",
    "investigate",
    "delay",
    "unveil",
    "question",
    "approve",
    "fight",
    "rethink",
)
OBJECTS = (
    "new coastal flood defences",
    "a four-day school week",
    "cheaper rail fares",
    "the return of night trains",
    "plastic-free supermarkets",
    "a rewilding scheme",
    "late-night bus routes",
    "higher tourist taxes",
    "a ban on disposable vapes",
    "a national heat plan",
    "rooftop solar on every school",
    "the sale of a historic pier",
    "driverless delivery vans",
    "a new high-speed line",
    "longer opening hours for libraries",
    "a tax on private jets",
    "a satellite to map glaciers",
    "free museum entry",
)
TAILS = (
    "",
    "after record summer",
    "amid budget squeeze",
    "as winter nears",
    "in landmark vote",
    "despite protests",
    "ahead of elections",
    "after decade of delays",
    "as costs soar",
)
PEOPLE = (
    "Amira Haddad",
    "Tom Whitfield",
    "Claire Dubois",
    "Jonas Becker",
    "Lucía Moreno",
    "Haruto Sato",
    "Priya Raman",
    "Ewan MacLeod",
    "Sofia Rossi",
    "Kwame Mensah",
)
ROLES = (
    "a spokesperson for the ministry",
    "who chairs the local council",
    "an economist at the national institute",
    "a researcher who has studied the issue for a decade",
    "the union's general secretary",
    "a resident of twenty years",
    "the company's chief executive",
)
PLACES = (
    "Leeds",
    "Bordeaux",
    "Hamburg",
    "Valencia",
    "Osaka",
    "Glasgow",
    "Lyon",
    "Munich",
    "Seville",
    "Sapporo",
    "Cardiff",
    "Bristol",
)
SENTENCES = (
    "{person}, {role}, said the decision on {object} would be taken before the end of the year.",
    "Critics in {place} argue that {object} has been discussed for years without a result.",
    "Supporters say {object} could save households money within two years.",
    "The proposal was first published in {place} last spring and has since been revised twice.",
    "\u201cWe have listened carefully, and we will not rush this,\u201d said {person}.",
    "Figures released this week suggest public opinion is evenly divided.",
    "Opposition members called for an independent review before any money is spent.",
    "In {place}, a pilot scheme has already run for six months.",
    "{person} said that the first results were encouraging but far from conclusive.",
    "A final report is expected early next year, officials said.",
    "Local businesses in {place} have asked for more time to prepare.",
    "Campaigners plan to gather outside the town hall in {place} on Saturday.",
)


def _headline(rng: random.Random) -> str:
    tail = rng.choice(TAILS)
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
    if tail:
        words.append(tail)
    return " ".join(words)


def _body(rng: random.Random) -> str:
    paragraphs = []
    for _ in range(rng.randint(3, 5)):
        sentences = [
            rng.choice(SENTENCES).format(
                person=rng.choice(PEOPLE),
                role=rng.choice(ROLES),
                object=rng.choice(OBJECTS),
                place=rng.choice(PLACES),
            )
            for _ in range(rng.randint(2, 4))
        ]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def _source_url(outlet: DemoOutlet, *, slug: str, when: datetime, rng: random.Random) -> str:
    hexdigits = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    uuid = "-".join(
        (hexdigits[:8], hexdigits[8:12], hexdigits[12:16], hexdigits[16:20], hexdigits[20:])
    )
    raw = outlet.url.format(
        section=rng.choice(outlet.sections),
        y=when.year,
        m=when.month,
        mon=MONTHS[when.month - 1],
        d=when.day,
        slug=slug,
        n=rng.randint(6_000_000, 6_999_999),
        k=rng.randint(3000, 3999),
        uuid=uuid,
    )
    return normalise_url(raw)


def _unique_slug(title: str, used: set[str]) -> str:
    base = slugify(title)[:180].strip("-")
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def demo_items(outlets: dict[str, Outlet]) -> list[ContentItem]:
    """The whole catalogue, unsaved, in a fixed order: the same list on every call."""
    rng = random.Random(SEED)
    used = {EXAMPLE_SLUG}
    items = [
        ContentItem(
            slug=EXAMPLE_SLUG,
            source_url=normalise_url(EXAMPLE_SOURCE),
            source_domain=host_of(EXAMPLE_SOURCE),
            outlet=outlets["telegraph"],
            title=EXAMPLE_TITLE,
            body=(
                "Volunteers in a Cotswold village say a hand-painted hedgehog crossing has "
                "saved this year's fete, after a rescue centre threatened to withdraw its stall."
                "\n\n"
                "The crossing, built from old pallets over a weekend, lets hedgehogs pass under "
                "the marquee field without meeting the tombola.\n\n" + _body(rng)
            ),
            published_at=EXAMPLE_PUBLISHED,
        )
    ]
    for spec in OUTLETS:
        for _ in range(ITEMS_PER_OUTLET):
            title = _headline(rng)
            title = title[0].upper() + title[1:]
            slug = _unique_slug(title, used)
            when = ANCHOR - timedelta(seconds=rng.randrange(int(SPREAD.total_seconds())))
            source_url = _source_url(spec, slug=slug, when=when, rng=rng)
            items.append(
                ContentItem(
                    slug=slug,
                    source_url=source_url,
                    source_domain=host_of(source_url),
                    outlet=outlets[spec.slug],
                    title=title,
                    body=_body(rng),
                    published_at=when,
                )
            )
    return items


class Command(BaseCommand):
    help = "Create (or complete) the demo catalogue: outlets, verified domains and articles."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            outlets: dict[str, Outlet] = {}
            new_outlets = new_domains = 0
            for spec in OUTLETS:
                outlet = Outlet.objects.filter(slug=spec.slug).first()
                if outlet is None:
                    new_outlets += 1
                    outlet = Outlet(slug=spec.slug, name=spec.name, is_partner=spec.is_partner)
                    trust_record_save(record=outlet, actor=ACTOR)
                outlets[spec.slug] = outlet
                for name in spec.domains:
                    domain = OutletDomain.objects.filter(domain=name).first()
                    staff_only = name in spec.staff_mail_domains
                    if domain is None:
                        new_domains += 1
                        domain = OutletDomain(
                            outlet=outlet,
                            domain=name,
                            verified_at=VERIFIED_AT,
                            verification_method=DomainVerification.STAFF_ATTESTATION,
                            verification_note="a demo outlet's domain, attested by the seed",
                            staff_mail_only=staff_only,
                        )
                        trust_record_save(record=domain, actor=ACTOR)
                    elif domain.outlet_id == outlet.pk and domain.staff_mail_only != staff_only:
                        # A catalogue seeded before the outlet's attestation was recorded.
                        domain.staff_mail_only = staff_only
                        trust_record_save(record=domain, actor=ACTOR, fields=["staff_mail_only"])
                for email in spec.rights_contacts:
                    if not RightsContact.objects.filter(outlet=outlet, email=email).exists():
                        contact = RightsContact(outlet=outlet, email=email)
                        trust_record_save(record=contact, actor=ACTOR)
            items = demo_items(outlets)
            existing_slugs = set(
                ContentItem.objects.filter(slug__in=[i.slug for i in items]).values_list(
                    "slug", flat=True
                )
            )
            existing_sources = set(
                ContentItem.objects.filter(
                    source_url__in=[i.source_url for i in items]
                ).values_list("source_url", flat=True)
            )
            missing = [
                i
                for i in items
                if i.slug not in existing_slugs and i.source_url not in existing_sources
            ]
            ContentItem.objects.bulk_create(missing, batch_size=500)

        if options["verbosity"] < 1:
            return
        example = ContentItem.objects.get(slug=EXAMPLE_SLUG)
        domain_names = [d for spec in OUTLETS for d in spec.domains]
        self.stdout.write(
            f"demo catalogue: {len(OUTLETS)} outlets ({new_outlets} new), "
            f"{len(domain_names)} verified domains ({new_domains} new), "
            f"{len(items)} content items ({len(missing)} new); "
            f"{ContentItem.objects.count()} content items in the catalogue"
        )
        self.stdout.write(f"example public URL: {example.public_url}")
        self.stdout.write(f"example source URL: {example.source_url}")
