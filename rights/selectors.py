"""Read queries. Writes live in rights.services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from rights.models import ContentItem, TakedownRequest, Target
from rights.workflow import CLOSED_CASE_STATES

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class _TargetCount(TypedDict):
        target_count: int

    # A case as `case_summaries` returns it (for type checkers only; django_stubs_ext is a
    # development dependency).
    CaseSummary = WithAnnotations[TakedownRequest, _TargetCount]


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


def case_detail(reference: str) -> TakedownRequest | None:
    """A case with its targets and their items, in three queries whatever the size."""
    return (
        TakedownRequest.objects.select_related("requester", "outlet")
        .prefetch_related(
            Prefetch(
                "targets",
                queryset=Target.objects.select_related("content_item").order_by("id"),
            )
        )
        .filter(reference=reference.strip().upper())
        .first()
    )


def case_summaries(*, open_only: bool = False) -> QuerySet[CaseSummary]:
    """`case_list`, newest first, with each case's `target_count` (one query, no N+1)."""
    return (
        case_list(open_only=open_only)
        .annotate(target_count=Count("targets"))
        .order_by("-received_at", "-pk")
    )
