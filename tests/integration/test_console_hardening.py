"""The console against odd input and odd routes: a clear 400 or 404, never a 500; an unsafe
`next` after logging in lands on the console; staff's corrections of a requester audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rights.models import AuditEvent
from tests.factories import RequesterFactory, TakedownRequestFactory
from tests.integration.test_review_queue import staff_in

pytestmark = pytest.mark.django_db

QUEUE = "/admin/rights/takedownrequest/"


@pytest.fixture
def reviewer(db: None) -> Client:
    user: User = staff_in("reviewer", "rita")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{QUEUE}?state=%00", 400),
        (f"{QUEUE}?basis=%00", 400),
        (f"{QUEUE}?q=a%00b", 400),
        (f"{QUEUE}?received_at__year=99999999999", 400),
        (f"{QUEUE}?received_at__year=2026&received_at__month=13", 302),  # the admin's "?e=1"
        (f"{QUEUE}%C2%B2/change/", 404),
        (f"{QUEUE}99999999999999999999999/change/", 404),
        (f"{QUEUE}%C2%B2/evidence/", 404),
        (f"{QUEUE}99999999999999999999999/evidence/", 404),
        ("/admin/rights/requester/?q=%00", 400),
    ],
)
def test_odd_input_is_a_clear_refusal(reviewer: Client, url: str, expected: int) -> None:
    TakedownRequestFactory.create()
    assert reviewer.get(url).status_code == expected


def test_a_nul_in_a_posted_field_is_refused_before_anything_runs(reviewer: Client) -> None:
    case = TakedownRequestFactory.create()
    response = reviewer.post(
        f"{QUEUE}{case.pk}/change/", {"decision": "reject", "reject-reasons": "a\x00b"}
    )
    assert response.status_code == 400


def test_an_unsafe_next_after_logging_in_lands_on_the_console(db: None) -> None:
    user = staff_in("lead", "lena")
    user.set_password("a long and unguessable passphrase")
    user.save()
    response = Client().post(
        "/admin/login/?next=https://evil.example/",
        {
            "username": "lena",
            "password": "a long and unguessable passphrase",
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_correction_of_a_requesters_name_is_audited_by_field_name_only(db: None) -> None:
    requester = RequesterFactory.create(name="Ann Owner", organisation="")
    admin = Client()
    admin.force_login(staff_in("admin", "ada"))
    response = admin.post(
        f"/admin/rights/requester/{requester.pk}/change/",
        {"name": "Ann Ownér-Smith", "organisation": ""},
    )
    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.name == "Ann Ownér-Smith"
    event = AuditEvent.objects.get(stream=requester.actor, action="requester.edited")
    assert event.data == {"fields": ["name"]}
    assert event.actor.startswith("staff:")
