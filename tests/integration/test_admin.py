"""The staff console: every page renders, state is read-only, the audit trail is view-only."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rights import audit
from rights.errors import DomainError
from rights.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditStream,
    ContentItem,
    Outlet,
    OutletDomain,
    Requester,
    Suppression,
    SuppressionKind,
    TakedownRequest,
    Target,
)
from rights.services.catalogue import trust_record_save
from rights.services.intake import IntakeResult
from rights.services.suppression import suppression_create
from tests.factories import ContentItemFactory

MODELS: list[type[models.Model]] = [
    Outlet,
    OutletDomain,
    ContentItem,
    Requester,
    TakedownRequest,
    Target,
    Suppression,
    AuditEvent,
    AuditCheckpoint,
    AuditStream,
]
VIEW_ONLY = [TakedownRequest, Target, Suppression, AuditEvent, AuditCheckpoint, AuditStream]
# Suppression rules are added by the `admin` role through the audited service, with a reason;
# once made, they are as read-only as the rest (lifted by an action, never edited or deleted).
ADDED_THROUGH_A_SERVICE = {Suppression}


def admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:rights_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def rows(item: ContentItem, submit: Any) -> dict[str, Any]:
    """A few rows of every model, made the way the service makes them."""
    trusted: IntakeResult = submit(
        email="ed@telegraph.co.uk", urls=[item.source_url], channel="staff", email_verified=True
    )
    review: IntakeResult = submit(
        email="someone@gmail.com",
        urls=[item.public_url, "https://www.telegraph.co.uk/news/not-ours/"],
    )
    suppression = Suppression.objects.create(
        kind="exact", value=item.source_url, case=trusted.case, content_item=item
    )
    checkpoint = audit.checkpoint_create()
    assert checkpoint is not None
    return {
        "item": item,
        "trusted": trusted.case,
        "review": review.case,
        "suppression": suppression,
        "checkpoint": checkpoint,
    }


def test_admin_index(admin_client: Client, rows: dict[str, Any]) -> None:
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    for model in MODELS:
        assert admin_url(model, "changelist") in response.content.decode()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_and_change_page_renders(
    admin_client: Client, rows: dict[str, Any], model: type[models.Model]
) -> None:
    objects = list(model._default_manager.all()[:3])
    assert objects, f"the fixture made no {model.__name__}"
    changelist = admin_client.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    for obj in objects:
        page = admin_client.get(admin_url(model, "change", obj.pk))
        assert page.status_code == 200, obj
    search = admin_client.get(admin_url(model, "changelist"), {"q": "telegraph"})
    assert search.status_code == 200


@pytest.mark.parametrize("model", VIEW_ONLY, ids=lambda m: m.__name__)
def test_view_only_models_cannot_be_added_changed_or_deleted(
    admin_client: Client, rows: dict[str, Any], model: type[models.Model]
) -> None:
    obj = model._default_manager.first()
    assert obj is not None
    before = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}

    if model not in ADDED_THROUGH_A_SERVICE:
        assert admin_client.get(admin_url(model, "add")).status_code == 403
        assert admin_client.post(admin_url(model, "add"), {}).status_code == 403
    page = admin_client.get(admin_url(model, "change", obj.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(admin_url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.get(admin_url(model, "delete", obj.pk)).status_code == 403
    assert admin_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    changelist = admin_client.get(admin_url(model, "changelist"))
    assert "delete_selected" not in changelist.content.decode()
    bulk = admin_client.post(
        admin_url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302, 403)

    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields} == before
    assert model._default_manager.filter(pk=obj.pk).exists()


def test_audit_event_admin_is_read_only(admin_client: Client, rows: dict[str, Any]) -> None:
    events = AuditEvent.objects.count()
    event = AuditEvent.objects.first()
    assert event is not None
    response = admin_client.post(
        admin_url(AuditEvent, "change", event.pk),
        {"actor": "mallory", "action": "case.removed", "stream": event.stream, "seq": event.seq},
    )
    assert response.status_code == 403
    assert AuditEvent.objects.count() == events
    assert AuditEvent.objects.filter(actor="mallory").count() == 0
    assert audit.verify().events == events


def test_audit_events_filter_by_stream_kind(admin_client: Client, rows: dict[str, Any]) -> None:
    response = admin_client.get(admin_url(AuditEvent, "changelist"), {"kind": "case:"})
    assert response.status_code == 200
    expected = AuditEvent.objects.filter(stream__startswith="case:").count()
    assert expected > 0
    assert response.context["cl"].result_count == expected


def test_content_status_is_read_only(admin_client: Client, rows: dict[str, Any]) -> None:
    item: ContentItem = rows["item"]
    page = admin_client.get(admin_url(ContentItem, "change", item.pk))
    form = page.context["adminform"].form
    assert "status" not in form.fields
    assert "source_url" not in form.fields  # identity of the item, referred to by cases
    assert "title" in form.fields

    response = admin_client.post(
        admin_url(ContentItem, "change", item.pk),
        {
            "title": "A corrected headline",
            "outlet": item.outlet_id,
            "published_at_0": item.published_at.strftime("%Y-%m-%d"),
            "published_at_1": item.published_at.strftime("%H:%M:%S"),
            "body": item.body,
            "status": "removed",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert item.title == "A corrected headline"
    assert item.status == "live"


def test_adding_content_normalises_the_source_url(admin_client: Client, outlet: Outlet) -> None:
    response = admin_client.post(
        admin_url(ContentItem, "add"),
        {
            "title": "A new article",
            "slug": "a-new-article",
            "source_url": "HTTPS://WWW.Telegraph.co.uk/news/a-new-article/?utm_source=x#top",
            "outlet": outlet.pk,
            "published_at_0": "2026-11-20",
            "published_at_1": "09:00:00",
            "body": "Text.",
        },
    )
    assert response.status_code == 302
    item = ContentItem.objects.get(slug="a-new-article")
    assert item.source_url == "https://www.telegraph.co.uk/news/a-new-article/"
    assert item.source_domain == "www.telegraph.co.uk"
    assert item.status == "live"

    refused = admin_client.post(
        admin_url(ContentItem, "add"),
        {
            "title": "Bad",
            "slug": "bad",
            "source_url": "ftp://example.com/x",
            "published_at_0": "2026-11-20",
            "published_at_1": "09:00:00",
        },
    )
    assert refused.status_code == 200
    assert "source_url" in refused.context["adminform"].form.errors


def test_only_the_case_page_shows_the_requester_email(
    admin_client: Client, rows: dict[str, Any]
) -> None:
    changelist = admin_client.get(admin_url(TakedownRequest, "changelist")).content.decode()
    assert rows["trusted"].reference in changelist
    assert "ed@telegraph.co.uk" not in changelist
    assert "someone@gmail.com" not in changelist
    # The case page shows it once, beside the requester's history (staff only, for deciding).
    page = admin_client.get(admin_url(TakedownRequest, "change", rows["review"].pk))
    html = page.content.decode()
    assert html.count("someone@gmail.com") == 1
    assert 'data-testid="requester-email">someone@gmail.com<' in html
    assert "https://www.telegraph.co.uk/news/not-ours/" in html  # the targets
    requester = admin_client.get(admin_url(Requester, "change", rows["review"].requester_id))
    assert "someone@gmail.com" in requester.content.decode()


def _changelist_queries(admin_client: Client) -> int:
    url = admin_url(TakedownRequest, "changelist")
    admin_client.get(url)  # warm the session and the content types cache
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(url).status_code == 200
    return len(queries)


def test_case_changelist_query_count_does_not_grow_with_cases(
    admin_client: Client, submit: Any, outlet: Outlet, django_assert_max_num_queries: Any
) -> None:
    def add_cases(count: int) -> None:
        for _ in range(count):
            items = [ContentItemFactory.create(outlet=outlet) for _ in range(2)]
            submit(email="ed@telegraph.co.uk", urls=[i.source_url for i in items])

    add_cases(2)
    few = _changelist_queries(admin_client)
    add_cases(20)
    with django_assert_max_num_queries(few):
        response = admin_client.get(admin_url(TakedownRequest, "changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == 22
    assert few <= 12


def test_content_taken_down_cannot_be_added_again_under_another_spelling(
    admin_client: Client, outlet: Outlet
) -> None:
    suppression_create(
        kind=SuppressionKind.EXACT,
        value="https://www.telegraph.co.uk/news/article-0/",
        actor="test",
        reason="taken down",
    )
    form = {
        "title": "The same again",
        "slug": "same-again",
        "source_url": "http://telegraph.co.uk/news/article-0",
        "outlet": outlet.pk,
        "published_at_0": "2026-11-20",
        "published_at_1": "09:00:00",
        "body": "Text.",
    }
    refused = admin_client.post(admin_url(ContentItem, "add"), form)
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert "was taken down and is suppressed" in errors["source_url"][0]
    assert not ContentItem.objects.filter(slug="same-again").exists()
    # The service refuses it whatever the path (the console's change form cannot change a
    # source at all).
    with pytest.raises(DomainError) as raised:
        trust_record_save(
            record=ContentItem(
                title="x",
                slug="x",
                outlet=outlet,
                source_url="https://m.telegraph.co.uk/news/article-0/amp",
                body="x",
            ),
            actor="test",
        )
    assert raised.value.code == "suppressed"
