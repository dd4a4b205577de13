"""Suppression: standing rules that keep removed content from being (re)published."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q

from rights import audit, clock
from rights.models import ContentItem, Suppression, SuppressionKind, TakedownRequest
from rights.normalise import NormaliseError, article_key, normalise_url, prefix_key, spellings
from rights.selectors import domain_held_elsewhere, item_held_elsewhere


def suppression_create(
    *,
    kind: str,
    value: str,
    actor: str,
    case: TakedownRequest | None = None,
    content_item: ContentItem | None = None,
) -> Suppression:
    """Create the rule, or return the active one already standing for the same value."""
    with transaction.atomic():
        rule, created = Suppression.objects.get_or_create(
            kind=kind,
            value=value,
            lifted_at__isnull=True,
            defaults={"case": case, "content_item": content_item},
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
                },
            )
    return rule


def suppression_lift(*, rule: Suppression, actor: str) -> None:
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().get(pk=rule.pk)
        if locked.lifted_at is not None:
            return
        locked.lifted_at = clock.now()
        locked.save(update_fields=["lifted_at"])
        audit.append(
            stream=locked.case.audit_stream() if locked.case else audit.SYSTEM_STREAM,
            actor=actor,
            action="suppression.lifted",
            data={"id": locked.pk},
        )


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
                suppression_lift(rule=rule, actor=actor)


def may_publish(url: str) -> bool:
    """May the crawler (re)publish `url`? False when any active rule covers it.

    "The same article" means what it means to intake: every everyday spelling of a suppressed
    URL (scheme, `www.`, AMP and mobile hosts, trailing slash, AMP edition) is suppressed too,
    through the same `spellings` that resolution uses. Three queries, whatever the rules.
    """
    try:
        key = normalise_url(url)
    except NormaliseError:
        return False
    active = Suppression.objects.filter(lifted_at__isnull=True)
    if active.filter(kind=SuppressionKind.EXACT, value__in=spellings(key)).exists():
        return False
    labels = (urlsplit(key).hostname or "").lower().split(".")
    domains = [".".join(labels[i:]) for i in range(len(labels))]
    if active.filter(kind=SuppressionKind.DOMAIN, value__in=domains).exists():
        return False
    article = article_key(key)
    host = article.split("/", 1)[0]
    prefixes = active.filter(kind=SuppressionKind.PREFIX).filter(
        Q(value__contains=f"://{host}/")
        | Q(value__contains=f".{host}/")
        | Q(value__endswith=f"://{host}")
        | Q(value__endswith=f".{host}")
    )
    return not any(
        article.startswith(prefix_key(prefix))
        for prefix in prefixes.values_list("value", flat=True)
    )
