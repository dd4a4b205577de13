"""Partner webhooks in the staff console: endpoints registered by staff who manage partner keys
(the secret shown once, never listed), deliveries read-only, and "retry now" for dead letters
by the roles that hold it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from rights.models import AuditEvent, WebhookDelivery, WebhookDeliveryState, WebhookEndpoint
from rights.services.notifications import notification_send
from tests.integration.test_review_queue import staff_in
from tests.integration.test_webhooks import PartnerReceiver, api_submit, partner, register

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:rights_webhookendpoint_changelist")
ENDPOINT_ADD = reverse("admin:rights_webhookendpoint_add")
DELIVERIES = reverse("admin:rights_webhookdelivery_changelist")


def client_for(role: str) -> tuple[User, Client]:
    user = staff_in(role, f"{role}-hooks")
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def receiver(settings: Any) -> Any:
    settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PARTNER_WEBHOOK_TIMEOUT = 1.0
    settings.PARTNER_WEBHOOK_MAX_ATTEMPTS = 1
    running = PartnerReceiver()
    yield running
    running.close()


def test_an_admin_registers_an_endpoint_and_sees_the_secret_once(receiver: Any) -> None:
    outlet, _ = partner("herald")
    _, client = client_for("admin")

    refused = client.post(ENDPOINT_ADD, {"outlet": outlet.pk, "url": "https://192.168.0.2/x"})
    assert refused.status_code == 200
    assert "private address" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()

    shown = client.post(ENDPOINT_ADD, {"outlet": outlet.pk, "url": receiver.url})
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get(outlet=outlet)
    page = shown.content.decode()
    assert endpoint.secret in page
    assert endpoint.secret.startswith("whsec_")
    # Never again: neither the list nor the endpoint's own page shows it.
    assert endpoint.secret not in client.get(ENDPOINTS).content.decode()
    change = reverse("admin:rights_webhookendpoint_change", args=[endpoint.pk])
    assert endpoint.secret not in client.get(change).content.decode()
    assert AuditEvent.objects.filter(
        stream="outlet:herald", action="webhook.endpoint_registered"
    ).exists()


def test_only_those_who_manage_partner_keys_register_endpoints(receiver: Any) -> None:
    _, lead = client_for("lead")
    assert lead.get(ENDPOINT_ADD).status_code == 403
    assert lead.get(ENDPOINTS).status_code == 403


def test_a_lead_retries_a_dead_letter_and_a_reviewer_cannot(receiver: Any) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    receiver.fail_until = float("inf")
    delivery = WebhookDelivery.objects.get(event_type="case.received")
    notification_send(notification_id=delivery.notification_id)
    delivery.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.DEAD

    _, reviewer = client_for("reviewer")
    listed = reviewer.get(DELIVERIES, {"state": "dead", "outlet__id__exact": str(outlet.pk)})
    assert listed.status_code == 200
    assert delivery.message_id in listed.content.decode()
    choices = listed.context["action_form"]
    assert choices is None or "retry_now" not in dict(choices.fields["action"].choices)
    refused = reviewer.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.DEAD
    assert refused.status_code in {200, 302, 403}

    lead_user, lead = client_for("lead")
    lead.post(DELIVERIES, {"action": "retry_now", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.PENDING
    retried = AuditEvent.objects.get(stream="outlet:herald", action="webhook.retried")
    assert retried.actor == f"staff:{lead_user.pk}"
