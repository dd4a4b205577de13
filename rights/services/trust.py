"""Resolution and trust: which of our articles a request names, and whether its sender speaks
for them. Reads only; intake writes what they decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db.models import F, Q

from rights.db import AnyOf
from rights.models import ContentItem, Outlet, OutletDomain, RightsContact
from rights.normalise import article_key, base_host, domain_within, host_of, spellings

# A domain lends trust only once verified, and verified means it says how (DNS TXT record or a
# named staff attestation; the model's constraint keeps the two together).
VERIFIED = Q(verified_at__isnull=False) & ~Q(verification_method="")

PUBLIC_PATH = re.compile(r"^/a/(?P<slug>[-a-zA-Z0-9_]+)/?$")


def public_slug(url: str) -> str | None:
    """The slug when `url` names our own copy (`/a/<slug>/`) under any everyday spelling of our
    host: either scheme, with or without `www.`, the trailing slash or an AMP ending, and with
    its path's escapes decoded as our web server decodes them before routing (`/a%2Fslug/` is
    served as `/a/slug/`)."""
    if base_host(host_of(url)) != base_host(host_of(settings.PUBLIC_BASE_URL)):
        return None
    path = re.sub(r"/{2,}", "/", unquote(urlsplit("//" + article_key(url)).path))
    match = PUBLIC_PATH.match(path)
    return match["slug"] if match else None


def resolve_urls(urls: Sequence[str]) -> dict[str, ContentItem | None]:
    """Map each normalised URL to the item it names, whatever everyday spelling it uses: our
    public URL, or the primary source. Two queries for any number of URLs.

    Should the catalogue hold the same article twice (two spellings of one source), the first
    URL maps to one copy and each other copy is added under its own source URL, so that no copy
    the request names is left up.
    """
    return resolve_url_groups([urls])[0]


def resolve_url_groups(groups: Sequence[Sequence[str]]) -> list[dict[str, ContentItem | None]]:
    """`resolve_urls` for each group of URLs (each request of a batch), in the same two
    queries for all of them."""
    urls = {url for group in groups for url in group}
    slugs = {url: slug for url in urls if (slug := public_slug(url)) is not None}
    by_slug = (
        {i.slug: i for i in ContentItem.objects.filter(slug__in=set(slugs.values()))}
        if slugs
        else {}
    )
    candidates = {spelling for url in urls if url not in slugs for spelling in spellings(url)}
    by_key: dict[str, list[ContentItem]] = {}
    if candidates:
        spelled = AnyOf(F("source_url"), sorted(candidates))
        for item in ContentItem.objects.filter(spelled).order_by("pk"):
            by_key.setdefault(article_key(item.source_url), []).append(item)
    return [_resolved(group, slugs, by_slug, by_key) for group in groups]


def _resolved(
    urls: Sequence[str],
    slugs: dict[str, str],
    by_slug: dict[str, ContentItem],
    by_key: dict[str, list[ContentItem]],
) -> dict[str, ContentItem | None]:
    resolved: dict[str, ContentItem | None] = {}
    extra: dict[str, ContentItem] = {}
    for url in urls:
        if url in slugs:
            resolved[url] = by_slug.get(slugs[url])
            continue
        copies = by_key.get(article_key(url), [])
        resolved[url] = copies[0] if copies else None
        for copy in copies[1:]:
            extra.setdefault(copy.source_url, copy)
    for url, item in extra.items():
        resolved.setdefault(url, item)
    return resolved


def items_of_domain(domain: str) -> list[ContentItem]:
    return list(
        ContentItem.objects.filter(
            Q(source_domain=domain) | Q(source_domain__endswith="." + domain)
        ).order_by("pk")
    )


@dataclass(frozen=True)
class Trust:
    """Why a request is trusted: the rule, and what matched, for the audit trail (identifiers
    and domains only: a rights contact is named by its id, never its address)."""

    rule: str
    outlets: tuple[str, ...]
    domains: tuple[str, ...] = ()
    contacts: tuple[int, ...] = ()

    def as_data(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "outlets": list(self.outlets),
            "domains": list(self.domains),
            "contacts": list(self.contacts),
        }


def _domain_shared(domain: str, outlet_ids: set[int]) -> bool:
    """Another outlet holds a verified domain at or under `domain`."""
    return (
        OutletDomain.objects.filter(VERIFIED)
        .filter(Q(domain=domain) | Q(domain__endswith="." + domain))
        .exclude(outlet_id__in=outlet_ids)
        .exists()
    )


def verified_domains(outlet_ids: Iterable[int]) -> dict[int, list[OutletDomain]]:
    """Each outlet's verified domains (one query), for `decide_trust`."""
    verified: dict[int, list[OutletDomain]] = {}
    wanted = set(outlet_ids)
    if not wanted:
        return verified
    for domain in (
        OutletDomain.objects.filter(VERIFIED).filter(outlet_id__in=wanted).select_related("outlet")
    ):
        verified.setdefault(domain.outlet_id, []).append(domain)
    return verified


def decide_trust(
    *,
    items: Sequence[ContentItem],
    outlet: Outlet | None,
    email: str,
    email_verified: bool,
    whole_domain: str = "",
    domains: Mapping[int, list[OutletDomain]] | None = None,
) -> Trust | None:
    """Whether this request is trusted (DESIGN.md "Trust"), and why; None sends it to review.

    Trust follows ownership: every item must belong to an outlet (its `outlet`) and come from
    one of that outlet's verified domains, and the requester must speak for that outlet:
    - `partner_verified_domain`: the request came with that outlet's own partner key;
    - `rights_contact`: a verified address the outlet declared as a rights contact;
    - `staff_mail_domain`: a verified address at a domain of the outlet's that it attests gives
      mailboxes to its own staff only. A portal that also hands out free mail never attests
      that, so its mailbox holders speak for nobody.
    One item the requester cannot vouch for sends the whole case to review. Domains match
    exactly or as subdomains, never as a mere suffix, and no public suffix is ever verified.
    `domains` is `verified_domains` of the items' outlets, when already read for a batch.
    """
    if not items or any(item.outlet_id is None for item in items):
        return None  # nothing, or an item of nobody's
    outlet_ids = {item.outlet_id for item in items if item.outlet_id is not None}
    if whole_domain and _domain_shared(whole_domain, outlet_ids):
        # The domain rule covers tomorrow's articles too, whoever publishes them: another
        # outlet's verified domain under it is not this requester's to take down.
        return None
    verified = domains if domains is not None else verified_domains(outlet_ids)

    def owning_domain(item: ContentItem) -> OutletDomain | None:
        return next(
            (
                d
                for d in verified.get(item.outlet_id or 0, [])
                if domain_within(item.source_domain, d.domain)
            ),
            None,
        )

    owned = {item.pk: owning_domain(item) for item in items}
    if any(domain is None for domain in owned.values()):
        return None
    slugs = tuple(sorted({d.outlet.slug for d in owned.values() if d is not None}))
    if outlet is not None and outlet.is_partner and outlet_ids == {outlet.pk}:
        return Trust(
            rule="partner_verified_domain",
            outlets=slugs,
            domains=tuple(sorted({d.domain for d in owned.values() if d is not None})),
        )
    if not email_verified or not email:
        return None
    email_domain = email.rsplit("@", 1)[-1]
    contacts = dict(
        RightsContact.objects.filter(outlet_id__in=outlet_ids, email=email).values_list(
            "outlet_id", "pk"
        )
    )
    if outlet_ids <= contacts.keys():
        return Trust(
            rule="rights_contact",
            outlets=slugs,
            contacts=tuple(sorted(contacts[o] for o in outlet_ids)),
        )
    staff_domains: dict[int, str] = {}
    for outlet_id in outlet_ids:
        match = next(
            (
                d.domain
                for d in verified.get(outlet_id, [])
                if d.staff_mail_only and domain_within(email_domain, d.domain)
            ),
            None,
        )
        if match is None:
            return None
        staff_domains[outlet_id] = match
    return Trust(
        rule="staff_mail_domain", outlets=slugs, domains=tuple(sorted(set(staff_domains.values())))
    )
