"""Partner webhooks through the whole stack: a real worker and beat deliver every event of a
partner's API cases to a real endpoint on loopback that verifies each signature with
`standardwebhooks`, fails for a while (after storing what it got), then recovers. The broker
loses every message published before the workers start: the sweeper finds the work again."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from rights.models import Notification, TakedownRequest, WebhookDelivery
from rights.states import CaseState
from tests.integration.test_webhooks import PartnerReceiver, api_submit, partner, register
from tests.reliability.conftest import requires_postgres
from tests.stack import Stack, redis_client, wait_for

pytestmark = [requires_postgres, pytest.mark.stack]


@pytest.fixture
def receiver() -> Iterator[PartnerReceiver]:
    running = PartnerReceiver()
    yield running
    running.close()


@pytest.fixture
def hooked_stack(
    transactional_db: None,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
    request: pytest.FixtureRequest,
) -> Stack:
    """The stack, with workers that may call this machine (the endpoint is on loopback)."""
    monkeypatch.setenv("PARTNER_WEBHOOK_ALLOW_LOOPBACK", "1")
    monkeypatch.setenv("PARTNER_WEBHOOK_TIMEOUT", "1")
    settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK = True
    stack: Stack = request.getfixturevalue("stack")
    return stack


def test_every_event_delivered_signed_once_acknowledged_with_one_id(
    hooked_stack: Stack, receiver: PartnerReceiver
) -> None:
    outlet, first = partner("herald")
    register(outlet, receiver)
    # Down for the first calls, whenever they come: each of them stored, none acknowledged.
    receiver.fail_first = 6
    references = [api_submit(outlet, first).reference]
    for n in range(2):
        item = type(first).objects.create(
            outlet=outlet,
            slug=f"herald-more-{n}",
            source_url=f"https://www.herald.example/news/more-{n}/",
            source_domain="www.herald.example",
            title="More",
            body="Body.",
            published_at=first.published_at,
        )
        references.append(api_submit(outlet, item).reference)
    # Every fast-path message is lost: only the sweeper (beat) can hand the work out.
    redis_client().flushdb()
    hooked_stack.start_worker()
    hooked_stack.start_beat()
    expected = {
        (event, reference)
        for reference in references
        for event in ("case.received", "case.approved", "case.removed")
    }

    wait_for(
        lambda: (
            TakedownRequest.objects.filter(
                reference__in=references, state=CaseState.REMOVED
            ).count()
            == len(references)
            and WebhookDelivery.objects.filter(outlet=outlet, state="delivered").count()
            == len(expected)
        ),
        timeout=40,
        what="every event delivered",
    )
    assert receiver.bad_signatures == 0
    # Every event reached the partner, none was lost and none invented.
    assert set(receiver.events()) == expected
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for call in receiver.seen:
        ids[(call["type"], call["data"]["reference"])].add(call["id"])
    # Repeats happened (the endpoint failed after storing), and each carried its event's one id.
    assert len(receiver.seen) > len(expected)
    assert all(len(found) == 1 for found in ids.values()), ids
    stored = dict(
        WebhookDelivery.objects.filter(outlet=outlet).values_list("message_id", "event_type")
    )
    assert {next(iter(found)) for found in ids.values()} == set(stored)
    assert Notification.objects.filter(transport="webhook", sent_at__isnull=True).count() == 0
    assert (
        max(Notification.objects.filter(transport="webhook").values_list("attempts", flat=True)) > 1
    )
