"""Suppression: standing rules that keep removed content from being (re)published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from rights import audit, clock
from rights.db import AnyOf
from rights.errors import DomainError
from rights.models import ContentItem, Suppression, SuppressionKind, TakedownRequest
from rights.models.enforcement import PREFIX_HOST
from rights.normalise import (
    NormaliseError,
    article_key,
    base_host,
    host_of,
    normalise_domain,
    normalise_url,
    normalise_url_and_key,
    spelling_keys,
)
from rights.selectors import domain_held_elsewhere, item_held_elsewhere
from rights.services.trust import public_slug


def suppression_create(
    *,
    kind: str,
    value: str,
    actor: str,
    case: TakedownRequest | None = None,
    content_item: ContentItem | None = None,
    reason: str = "",
) -> Suppression:
    """Create the rule, or return the active one already standing for the same value."""
    with transaction.atomic():
        rule, created = Suppression.objects.get_or_create(
            kind=kind,
            value=value,
            lifted_at__isnull=True,
            defaults={"case": case, "content_item": content_item, "reason": reason},
        )
        if created:
            audit.append(
                stream=case.audit_stream() if case is not None else audit.SYSTEM_STREAM,
                actor=actor,
                action="suppression.created",
                data={
                    "id": rule.pk,
                    "kind": kind,
                    "item": content_item.pk if content_item else None,
                    # Staff's words may name people: the trail keeps a keyed digest only.
                    **({"reason_digest": audit.text_digest(reason)} if reason else {}),
                },
            )
    return rule


def check_rule_value(*, kind: str, value: str) -> str:
    """The rule's value as `may_publish` compares it, or DomainError saying what is wrong."""
    try:
        if kind == SuppressionKind.DOMAIN:
            # A public suffix is nobody's domain: a rule for it would stop whole registries.
            return normalise_domain(value)
        if kind in (SuppressionKind.EXACT, SuppressionKind.PREFIX):
            return normalise_url(value)
    except NormaliseError as exc:
        raise DomainError(f"the value {exc}", field="value") from exc
    raise DomainError(f"unknown kind of rule {kind!r}", field="kind")


def suppression_add(*, kind: str, value: str, reason: str, user: Any) -> Suppression:
    """A rule staff make by hand, with the reason for it (audited on the system stream).

    Raises DomainError when the value is not a URL or domain, the reason is missing, or an
    active rule already stands for the same value."""
    reason = reason.strip()
    if not reason:
        raise DomainError("say why the rule is needed", field="reason")
    value = check_rule_value(kind=kind, value=value)
    with transaction.atomic():
        if Suppression.objects.filter(kind=kind, value=value, lifted_at__isnull=True).exists():
            raise DomainError(f"an active rule already suppresses {value}", field="value")
        return suppression_create(kind=kind, value=value, actor=f"staff:{user.pk}", reason=reason)


def suppression_lift(
    *, rule: Suppression, actor: str, reason: str, user: Any | None = None
) -> bool:
    """Lift the rule (the row stays, marked lifted, with who and why); False if it already was.

    Audited on the case's stream when the rule came from a case, else on the system stream.
    """
    reason = reason.strip()
    if not reason:
        raise DomainError("say why the rule is lifted", field="reason")
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().get(pk=rule.pk)
        if locked.lifted_at is not None:
            return False
        locked.lifted_at = clock.now()
        locked.lifted_by = user
        locked.lift_reason = reason
        locked.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        audit.append(
            stream=locked.case.audit_stream() if locked.case else audit.SYSTEM_STREAM,
            actor=actor,
            action="suppression.lifted",
            data={
                "id": locked.pk,
                "kind": locked.kind,
                "reason_digest": audit.text_digest(reason),
                "staff": user.pk if user is not None else None,
            },
        )
    return True


def suppressions_release(*, case: TakedownRequest, actor: str) -> None:
    """Lift the rules standing for `case`, except those another case's removal still needs."""
    rules = (
        Suppression.objects.filter(lifted_at__isnull=True)
        .filter(Q(case=case) | Q(content_item__targets__case=case))
        .distinct()
        .values_list("pk", flat=True)
    )
    for rule_id in list(rules):
        with transaction.atomic():
            # Locked before the check, so two restores sharing a rule decide one after the other.
            rule = Suppression.objects.select_for_update().get(pk=rule_id)
            if rule.kind == SuppressionKind.DOMAIN:
                needed = domain_held_elsewhere(domain=rule.value, case_id=case.pk)
            else:
                needed = rule.content_item_id is not None and item_held_elsewhere(
                    content_item_id=rule.content_item_id, case_id=case.pk
                )
            if not needed:
                suppression_lift(rule=rule, actor=actor, reason="the case was restored")


class RuleRef(NamedTuple):
    """The rule that blocks a URL, as the publication check names it (the row's other fields,
    the reason among them, stay in the database)."""

    pk: int
    kind: str
    value: str


@dataclass(frozen=True)
class Verdict:
    """May one URL be published, and if not, the rule that blocks it (None: the URL itself is
    not one we could ever publish, e.g. not an http(s) URL)."""

    allowed: bool
    rule: RuleRef | None = None
    problem: str = ""


ALLOWED = Verdict(allowed=True)


def publication_verdicts(urls: Sequence[str]) -> list[Verdict]:
    """For each of `urls`, in order: may the crawler (re)publish it, and if not, which rule
    blocks it. The one check: `may_publish` is this for a single URL.

    "The same article" means what it means to intake: two URLs are the same article when their
    `article_key`s are equal (scheme, `www.`, AMP and mobile hosts, trailing and doubled
    slashes, AMP edition), so an exact rule blocks every URL with its key, and every URL one of
    whose `spellings` has its key (`spelling_keys`: no other key, but for stacked spellings
    such as `www.m.` hosts and `/amp/amp` paths). Our own copy of an article
    (`PUBLIC_BASE_URL/a/<slug>/`, any spelling) is blocked by what blocks its source. One query
    per batch, whatever its size and whatever the rules (and one more when the batch
    names our own copies); when several rules cover a URL, an exact rule is named before a
    domain rule, and a domain rule before a prefix; among several exact rules for one article,
    the oldest.
    """
    keys: list[str | None] = []
    problems: dict[int, str] = {}
    # Each normalised URL's article key; `base_host` of each host, computed once a batch.
    articles: dict[str, str] = {}
    base_hosts: dict[str, str] = {}
    for index, url in enumerate(urls):
        try:
            key, article = normalise_url_and_key(url, base_hosts=base_hosts)
        except NormaliseError as exc:
            keys.append(None)
            problems[index] = str(exc)
            continue
        keys.append(key)
        articles[key] = article
    valid = set(articles)
    if not valid:
        return [Verdict(allowed=False, problem=problem) for problem in problems.values()]
    sources = _sources_of_our_copies(articles, base_hosts)
    for source in sources.values():
        articles.setdefault(source, article_key(source, base_hosts=base_hosts))
    # The rare URL some spelling of which keys differently (see `spelling_keys`).
    plain_hosts: dict[str, bool] = {}
    also = {
        url: extra
        for url, article in articles.items()
        if (extra := spelling_keys(url, article, plain_hosts=plain_hosts))
    }
    domains = {host: _domains_of(host) for host in base_hosts}
    # One query for the three kinds, through two partial indexes of the active rules: the key
    # of each URL's article and of each domain above its host (exact and domain rules: an
    # article key always holds a `/`, a domain never does), and the prefix rules on the hosts.
    wanted = {
        *articles.values(),
        *(k for extra in also.values() for k in extra),
        *(d for group in domains.values() for d in group),
    }
    netlocs = {article.split("/", 1)[0] for article in articles.values()}
    rows = (
        Suppression.objects.filter(lifted_at__isnull=True)
        .filter(
            Q(AnyOf(F("key"), wanted))
            | (Q(kind=SuppressionKind.PREFIX) & Q(AnyOf(PREFIX_HOST, netlocs)))
        )
        .order_by("pk")
        .values_list("pk", "kind", "value", "key")
    )
    exact: dict[str, RuleRef] = {}
    domain: dict[str, RuleRef] = {}
    prefixes: dict[str, list[tuple[str, RuleRef]]] = {}
    for pk, kind, value, rule_key in rows:
        rule = RuleRef(pk, kind, value)
        if kind == SuppressionKind.EXACT:
            exact.setdefault(rule_key, rule)
        elif kind == SuppressionKind.DOMAIN:
            domain[rule_key] = rule
        else:
            prefixes.setdefault(rule_key.split("/", 1)[0], []).append((rule_key, rule))

    def blocking(key: str) -> RuleRef | None:
        article = articles[key]
        found = exact.get(article)
        if found is None and key in also:
            found = next((exact[k] for k in also[key] if k in exact), None)
        if found is None and domain:
            found = next((domain[d] for d in domains[host_of(key)] if d in domain), None)
        if found is None and prefixes:
            near = prefixes.get(article.split("/", 1)[0], ())
            found = next((rule for prefix, rule in near if article.startswith(prefix)), None)
        return found

    # One verdict for each URL of the batch, and for each rule (they are immutable).
    answers: dict[str, Verdict] = {}
    refusals: dict[int, Verdict] = {}
    for key in valid:
        # Our copy is blocked by what blocks its source, and else like any URL.
        found = blocking(sources[key]) if key in sources else None
        if found is None:
            found = blocking(key)
        if found is None:
            answers[key] = ALLOWED
        elif (refusal := refusals.get(found.pk)) is not None:
            answers[key] = refusal
        else:
            answers[key] = refusals[found.pk] = Verdict(allowed=False, rule=found)
    return [
        answers[key] if key is not None else Verdict(allowed=False, problem=problems[index])
        for index, key in enumerate(keys)
    ]


def _sources_of_our_copies(articles: dict[str, str], base_hosts: dict[str, str]) -> dict[str, str]:
    """The source URL of each item whose own copy one of `articles`' URLs names (one query,
    none when no URL is on our host: `base_hosts` holds the batch's hosts)."""
    ours = base_host(host_of(settings.PUBLIC_BASE_URL))
    if ours not in base_hosts.values():
        return {}
    slugs = {
        url: slug
        for url, article in articles.items()
        if ours in article.split("/", 1)[0] and (slug := public_slug(url)) is not None
    }
    if not slugs:
        return {}
    by_slug = dict(
        ContentItem.objects.filter(slug__in=set(slugs.values())).values_list("slug", "source_url")
    )
    return {url: by_slug[slug] for url, slug in slugs.items() if slug in by_slug}


def _domains_of(host: str) -> list[str]:
    """A host and every domain above it (a domain rule covers them all)."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def may_publish(url: str) -> bool:
    """May the crawler (re)publish `url`? False when any active rule covers it, or when it is no
    URL we could publish. The batch check (`publication_verdicts`) for one URL."""
    return publication_verdicts([url])[0].allowed
