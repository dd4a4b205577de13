"""Read queries. Writes live in rights.services."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from rights.models import ContentItem, TakedownRequest
from rights.workflow import CLOSED_CASE_STATES


def content_item_by_slug(slug: str) -> ContentItem:
    return get_object_or_404(ContentItem.objects.select_related("outlet"), slug=slug)


def case_by_reference(reference: str) -> TakedownRequest | None:
    return (
        TakedownRequest.objects.select_related("requester", "outlet")
        .filter(reference=reference.strip().upper())
        .first()
    )


def case_list(*, open_only: bool = False) -> QuerySet[TakedownRequest]:
    cases = TakedownRequest.objects.order_by("-received_at")
    if open_only:
        cases = cases.exclude(state__in=CLOSED_CASE_STATES)
    return cases
