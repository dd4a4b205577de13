"""Suppression: standing rules that keep removed content from being (re)published."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import F, Q

from rights import audit, clock
from rights.db import AnyOf
from rights.errors import DomainError
from rights.models import ContentItem, Suppression, SuppressionKind, TakedownRequest
from rights.normalise import (
    NormaliseError,
    article_key,
    normalise_domain,
    normalise_url,
    prefix_key,
    spellings,
)
from rights.selectors import domain_held_elsewhere, item_held_elsewhere


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


@dataclass(frozen=True)
class Verdict:
    """May one URL be published, and if not, the rule that blocks it (None: the URL itself is
    not one we could ever publish, e.g. not an http(s) URL)."""

    allowed: bool
    rule: Suppression | None = None
    problem: str = ""


def publication_verdicts(urls: Sequence[str]) -> list[Verdict]:
    """For each of `urls`, in order: may the crawler (re)publish it, and if not, which rule
    blocks it. The one check: `may_publish` is this for a single URL.

    "The same article" means what it means to intake: every everyday spelling of a suppressed
    URL (scheme, `www.`, AMP and mobile hosts, trailing slash, AMP edition) is suppressed too,
    through the same `spellings` that resolution uses. One query per batch, whatever its size
    and whatever the rules; when several rules cover a URL, an exact rule is named before a
    domain rule, and a domain rule before a prefix.
    """
    keys: list[str | None] = []
    problems: list[str] = []
    for url in urls:
        try:
            keys.append(normalise_url(url))
            problems.append("")
        except NormaliseError as exc:
            keys.append(None)
            problems.append(str(exc))
    valid = [key for key in keys if key is not None]
    if not valid:
        return [Verdict(allowed=False, problem=problem) for problem in problems]
    url_spellings = {key: spellings(key) for key in valid}
    url_domains = {key: _domains_of(key) for key in valid}
    url_articles = {key: article_key(key) for key in valid}
    hosts = sorted({article.split("/", 1)[0] for article in url_articles.values()})
    near_host = Q()
    for host in hosts:
        near_host |= (
            Q(value__contains=f"://{host}/")
            | Q(value__contains=f".{host}/")
            | Q(value__endswith=f"://{host}")
            | Q(value__endswith=f".{host}")
        )
    # One query for the three kinds: each branch is an indexed lookup on (kind, value) among
    # the active rules, or, for prefixes, the few rules on the URLs' hosts.
    rules = Suppression.objects.filter(lifted_at__isnull=True).filter(
        (
            Q(kind=SuppressionKind.EXACT)
            & Q(AnyOf(F("value"), sorted({s for group in url_spellings.values() for s in group})))
        )
        | (
            Q(kind=SuppressionKind.DOMAIN)
            & Q(AnyOf(F("value"), sorted({d for group in url_domains.values() for d in group})))
        )
        | (Q(kind=SuppressionKind.PREFIX) & near_host)
    )
    exact: dict[str, Suppression] = {}
    domain: dict[str, Suppression] = {}
    prefixes: list[tuple[str, Suppression]] = []
    for rule in rules.order_by("pk"):
        if rule.kind == SuppressionKind.EXACT:
            exact[rule.value] = rule
        elif rule.kind == SuppressionKind.DOMAIN:
            domain[rule.value] = rule
        else:
            prefixes.append((prefix_key(rule.value), rule))
    verdicts = []
    for key, problem in zip(keys, problems, strict=True):
        if key is None:
            verdicts.append(Verdict(allowed=False, problem=problem))
            continue
        blocking: Suppression | None = next(
            (exact[s] for s in url_spellings[key] if s in exact), None
        )
        if blocking is None:
            blocking = next((domain[d] for d in url_domains[key] if d in domain), None)
        if blocking is None:
            article = url_articles[key]
            blocking = next((r for prefix, r in prefixes if article.startswith(prefix)), None)
        verdicts.append(Verdict(allowed=blocking is None, rule=blocking))
    return verdicts


def _domains_of(key: str) -> list[str]:
    """The host of a normalised URL and every domain above it (a domain rule covers them all)."""
    labels = (urlsplit(key).hostname or "").lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def may_publish(url: str) -> bool:
    """May the crawler (re)publish `url`? False when any active rule covers it, or when it is no
    URL we could publish. The batch check (`publication_verdicts`) for one URL."""
    return publication_verdicts([url])[0].allowed
