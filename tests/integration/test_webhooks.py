"""Partner webhooks in-process: which events become deliveries, signing, retries, dead letters,
redirects, slow endpoints, the guard against private addresses, and the partner's API.

Each call goes to a real HTTP server on loopback (`PartnerReceiver`) that verifies every
signature with the `standardwebhooks` package, as a partner would. The whole stack (a real
worker and beat, a failing then recovering endpoint) is in tests/reliability/test_webhook_stack.py.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rights.models import (
    AuditEvent,
    ContentItem,
    Notification,
    Outlet,
    TakedownRequest,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)
from rights.removal import webhook as webhook_client
from rights.selectors import sla_status
from rights.services import review, webhooks
from rights.services.intake import Submission, takedown_submit
from rights.services.notifications import notification_send
from rights.services.partner_keys import partner_key_create
from rights.statements import REQUIRED_STATEMENTS
from rights.states import CaseState
from tests.engine import drive
from tests.factories import ContentItemFactory, OutletDomainFactory, OutletFactory

pytestmark = pytest.mark.django_db


class PartnerReceiver:
    """A partner's endpoint on loopback. Verifies each call's signature with `standardwebhooks`
    (a bad one is answered 400 and counted), records the good ones, and answers 500 to the first
    `fail_first` calls and while `fail_until` (a monotonic time) is ahead, or stalls `hang`
    seconds, or redirects."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.lock = threading.Lock()
        self.secret = ""
        # Every call whose signature verified, and those answered 200.
        self.seen: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.elsewhere_hits = 0
        self.calls = 0
        self.fail_until = 0.0
        self.fail_first = 0
        self.hang = 0.0
        self.redirect = False
        self.answer = b"ok"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.calls += 1
                if self.path == "/elsewhere":
                    with receiver.lock:
                        receiver.elsewhere_hits += 1
                    self._answer(200)
                    return
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self._answer(400)
                    return
                if receiver.hang:
                    time.sleep(receiver.hang)
                if receiver.redirect:
                    self.send_response(307)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                call = {"id": self.headers["webhook-id"], "host": self.headers["Host"], **payload}
                with receiver.lock:
                    receiver.seen.append(call)
                    failing = receiver.fail_first > 0 or time.monotonic() < receiver.fail_until
                    receiver.fail_first = max(0, receiver.fail_first - 1)
                if failing:
                    # As a partner that stored the event and then failed to answer: the repeat
                    # that follows is a duplicate, recognised by its id.
                    self._answer(500, b"temporarily unavailable " + b"x" * 1000)
                    return
                with receiver.lock:
                    receiver.received.append(call)
                self._answer(200, receiver.answer)

            def _answer(self, status: int, text: bytes = b"ok") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):  # a caller that gave up
                    self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(r["type"], r["data"]["reference"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[PartnerReceiver]:
    running = PartnerReceiver()
    yield running
    running.close()


@pytest.fixture
def loopback(settings: Any) -> Any:
    settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PARTNER_WEBHOOK_TIMEOUT = 1.0
    return settings


def partner(slug: str) -> tuple[Outlet, ContentItem]:
    outlet = OutletFactory.create(name=slug.title(), slug=slug, is_partner=True)
    OutletDomainFactory.create(outlet=outlet, domain=f"{slug}.example")
    item = ContentItemFactory.create(
        outlet=outlet,
        source_url=f"https://www.{slug}.example/news/story/",
        source_domain=f"www.{slug}.example",
    )
    return outlet, item


def api_submit(outlet: Outlet, item: ContentItem, *, channel: str = "api") -> TakedownRequest:
    return takedown_submit(
        submission=Submission(
            channel=channel,
            outlet=outlet if channel == "api" else None,
            email=f"legal@{outlet.slug}.example",
            name="Legal desk",
            basis="copyright",
            urls=[item.source_url],
            statements=list(REQUIRED_STATEMENTS["copyright"]),
            actor="staff:test" if channel == "staff" else "",
        )
    ).case


def register(outlet: Outlet, receiver: PartnerReceiver, url: str = "") -> WebhookEndpoint:
    endpoint, secret = webhooks.endpoint_register(
        outlet=outlet, url=url or receiver.url, actor="staff:test"
    )
    receiver.secret = secret
    return endpoint


def send_all() -> None:
    """What the worker does for each claimed outbox row of the webhook transport."""
    for pk in (
        Notification.objects.filter(
            transport="webhook", sent_at__isnull=True, next_attempt_at__isnull=False
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    ):
        notification_send(notification_id=pk)


def test_each_event_of_a_partners_case_is_delivered_signed(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    case = api_submit(outlet, item)
    assert case.state == CaseState.APPROVED
    drive(case)
    send_all()

    assert receiver.bad_signatures == 0
    assert receiver.events() == [
        ("case.received", case.reference),
        ("case.approved", case.reference),
        ("case.removed", case.reference),
    ]
    removed = receiver.received[-1]
    assert removed["data"]["state"] == CaseState.REMOVED
    assert removed["data"]["targets"][0] == {
        **removed["data"]["targets"][0],
        "url": item.source_url,
        "state": "removed",
    }
    assert removed["data"]["deadline_at"]
    assert removed["host"] == f"127.0.0.1:{receiver.port}"
    # No personal data: the contact's address is nowhere in what the partner is sent.
    assert "legal@herald.example" not in json.dumps(receiver.received)
    deliveries = WebhookDelivery.objects.filter(outlet=outlet)
    assert {d.state for d in deliveries} == {WebhookDeliveryState.DELIVERED}
    assert {d.message_id for d in deliveries} == {r["id"] for r in receiver.received}
    assert all(d.message_id.startswith("msg_") and d.last_status == 200 for d in deliveries)


def test_only_the_filing_partners_api_cases_are_delivered(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    herald, herald_item = partner("herald")
    gazette, gazette_item = partner("gazette")
    register(herald, receiver)
    # The same outlet's content, filed by staff (not through its API): not the partner's case.
    staff_case = api_submit(herald, herald_item, channel="staff")
    # Another partner's case, and that partner has no endpoint: nothing is owed to anyone.
    api_submit(gazette, gazette_item)
    assert not WebhookDelivery.objects.exists()
    assert not Notification.objects.filter(transport="webhook").exists()
    assert staff_case.pk


def test_a_repeated_step_adds_no_second_delivery(loopback: Any, receiver: PartnerReceiver) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    case = api_submit(outlet, item)
    drive(case)
    drive(case)  # the engine repeating itself (a redelivered task) tells nobody twice
    assert list(WebhookDelivery.objects.order_by("pk").values_list("event_type", flat=True)) == [
        "case.received",
        "case.approved",
        "case.removed",
    ]


def test_failures_retry_with_one_id_then_dead_letter_and_staff_retry(
    loopback: Any, receiver: PartnerReceiver, admin_user: Any
) -> None:
    loopback.PARTNER_WEBHOOK_MAX_ATTEMPTS = 3
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    delivery = WebhookDelivery.objects.get(event_type="case.received")
    pk = delivery.notification_id
    receiver.fail_until = time.monotonic() + 60

    assert notification_send(notification_id=pk) is False
    delivery.refresh_from_db()
    notification = Notification.objects.get(pk=pk)
    assert delivery.state == WebhookDeliveryState.PENDING
    assert delivery.last_status == 500
    # Only a short excerpt of the answer is kept.
    assert delivery.last_response.startswith("temporarily unavailable")
    assert len(delivery.last_response) <= webhooks.EXCERPT
    assert notification.next_attempt_at is not None
    assert notification.attempts == 1

    for _ in range(2):
        Notification.objects.filter(pk=pk).update(next_attempt_at=notification.created_at)
        notification_send(notification_id=pk)
    delivery.refresh_from_db()
    notification.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.DEAD
    assert delivery.dead_at is not None
    assert notification.attempts == 3
    assert notification.next_attempt_at is None
    assert AuditEvent.objects.filter(stream="outlet:herald", action="webhook.dead").count() == 1
    # Operators see it; it is the partner's endpoint, not the promise, so it pages nobody.
    health = sla_status()
    assert health.dead_webhooks == 1
    assert not health.needs_attention
    owed = Notification.objects.filter(sent_at__isnull=True).exclude(pk=pk).count()
    assert health.unsent_notifications == owed
    # A stale task message for the dead letter calls nobody and changes nothing.
    assert notification_send(notification_id=pk) is False
    assert receiver.calls == 3
    assert Notification.objects.get(pk=pk).next_attempt_at is None

    receiver.fail_until = 0.0
    webhooks.delivery_retry(delivery_id=delivery.pk, actor=f"staff:{admin_user.pk}")
    assert notification_send(notification_id=pk) is True
    delivery.refresh_from_db()
    assert delivery.state == WebhookDeliveryState.DELIVERED
    assert AuditEvent.objects.filter(stream="outlet:herald", action="webhook.retried").exists()
    # Every attempt carried the same id; the partner saw it once, as a success.
    assert [r["id"] for r in receiver.received] == [delivery.message_id]
    assert receiver.calls == 4


def test_a_redirect_is_not_followed(loopback: Any, receiver: PartnerReceiver) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    receiver.redirect = True
    send_all()
    assert receiver.elsewhere_hits == 0
    assert set(WebhookDelivery.objects.values_list("last_status", "state")) == {(307, "pending")}


def test_a_slow_endpoint_is_cut_off_by_the_timeout(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    loopback.PARTNER_WEBHOOK_TIMEOUT = 0.3
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    receiver.hang = 2.0
    pk = WebhookDelivery.objects.get(event_type="case.received").notification_id
    started = time.monotonic()
    assert notification_send(notification_id=pk) is False
    assert time.monotonic() - started < 1.5
    notification = Notification.objects.get(pk=pk)
    assert notification.sent_at is None
    assert notification.next_attempt_at is not None
    delivery = WebhookDelivery.objects.get(notification_id=pk)
    assert delivery.last_status is None
    assert delivery.state == WebhookDeliveryState.PENDING


def test_delivery_checks_the_address_again(loopback: Any, receiver: PartnerReceiver) -> None:
    """An endpoint registered while loopback was allowed is refused when it no longer is: the
    guard runs at each delivery, before any connection."""
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    loopback.PARTNER_WEBHOOK_ALLOW_LOOPBACK = False
    send_all()
    assert receiver.calls == 0
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"pending"}


def test_a_delivery_whose_endpoint_was_removed_is_a_dead_letter(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    assert webhooks.endpoint_remove(outlet=outlet, actor="staff:test") is True
    send_all()
    assert receiver.calls == 0
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"dead"}


def test_registration_is_audited_without_the_secret(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    outlet, _ = partner("herald")
    endpoint, secret = webhooks.endpoint_register(
        outlet=outlet, url=receiver.url, actor="staff:test"
    )
    assert secret.startswith("whsec_")
    assert endpoint.secret == secret
    moved, again = webhooks.endpoint_register(
        outlet=outlet, url=receiver.url + "/v2", actor="staff:test"
    )
    assert again == ""
    assert moved.secret == secret
    _, rotated = webhooks.endpoint_rotate_secret(outlet=outlet, actor="staff:test")
    assert rotated != secret
    assert rotated.startswith("whsec_")
    events = AuditEvent.objects.filter(stream="outlet:herald").order_by("seq")
    assert [e.action for e in events] == [
        "webhook.endpoint_registered",
        "webhook.endpoint_changed",
        "webhook.secret_rotated",
    ]
    trail = json.dumps([e.data for e in events])
    assert secret[6:] not in trail
    assert rotated[6:] not in trail
    assert "/hooks" not in trail  # the URL's path is kept as a digest only


# --- The partner's API ------------------------------------------------------------------


def client_for(outlet: Outlet) -> APIClient:
    key = partner_key_create(outlet=outlet, actor="staff:test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    return client


def test_api_registers_shows_the_secret_once_and_refuses_private_addresses(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    outlet, _ = partner("herald")
    client = client_for(outlet)
    assert client.get("/api/v1/webhook/endpoint").status_code == 404

    refused = client.put(
        "/api/v1/webhook/endpoint", {"url": "https://10.0.0.7/hooks"}, format="json"
    )
    assert 400 <= refused.status_code < 500
    assert refused["Content-Type"].startswith("application/problem+json")
    assert "private address" in refused.json()["detail"]
    assert not WebhookEndpoint.objects.exists()

    misspelt = client.put(
        "/api/v1/webhook/endpoint", {"url": receiver.url, "secret": "mine"}, format="json"
    )
    assert misspelt.status_code == 422
    assert misspelt.json()["errors"][0]["field"] == "secret"
    assert not WebhookEndpoint.objects.exists()

    created = client.put("/api/v1/webhook/endpoint", {"url": receiver.url}, format="json")
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"  # shown once: kept by no cache
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    shown = client.get("/api/v1/webhook/endpoint")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json()["url"] == receiver.url
    rotated = client.post("/api/v1/webhook/endpoint/secret")
    assert rotated.status_code == 200
    assert rotated["Cache-Control"] == "no-store"
    assert rotated.json()["secret"] not in {secret, ""}
    assert client.delete("/api/v1/webhook/endpoint").status_code == 204
    assert client.delete("/api/v1/webhook/endpoint").status_code == 404


def test_deliveries_list_is_the_partners_own_and_paginated(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    herald, herald_item = partner("herald")
    gazette, gazette_item = partner("gazette")
    register(herald, receiver)
    register(gazette, receiver)
    api_submit(herald, herald_item)
    api_submit(gazette, gazette_item)
    herald_ids = set(
        WebhookDelivery.objects.filter(outlet=herald).values_list("message_id", flat=True)
    )
    gazette_ids = set(
        WebhookDelivery.objects.filter(outlet=gazette).values_list("message_id", flat=True)
    )
    assert herald_ids
    assert gazette_ids

    client = client_for(herald)
    first = client.get("/api/v1/webhook/deliveries", {"page_size": 1})
    assert first.status_code == 200
    body = first.json()
    assert len(body["results"]) == 1
    assert body["next"]
    second = client.get(body["next"])
    seen = [d["id"] for d in body["results"] + second.json()["results"]]
    assert set(seen) == herald_ids
    assert len(seen) == len(herald_ids)
    row = body["results"][0]
    assert row["state"] == "pending"
    assert row["attempts"] == 0
    assert row["next_attempt_at"]
    assert set(row) >= {"id", "event_type", "state", "attempts", "last_status", "next_attempt_at"}
    # Partner B never sees A's deliveries, whatever it asks.
    other = client_for(gazette).get("/api/v1/webhook/deliveries", {"page_size": 200}).json()
    assert {d["id"] for d in other["results"]} == gazette_ids
    bad = client.get("/api/v1/webhook/deliveries", {"cursor": "not-a-cursor"})
    assert 400 <= bad.status_code < 500
    # Forged cursors whose position is no id, or no id the database could hold.
    for position in ("abc", "9" * 30, "-1", "1e3"):
        forged = base64.urlsafe_b64encode(f"p={position}".encode()).decode()
        answer = client.get("/api/v1/webhook/deliveries", {"cursor": forged})
        assert answer.status_code == 422, (position, answer.content)
        assert answer["Content-Type"].startswith("application/problem+json")


def test_the_api_needs_a_takedowns_key(loopback: Any) -> None:
    outlet, _ = partner("herald")
    assert APIClient().get("/api/v1/webhook/deliveries").status_code == 401
    key = partner_key_create(outlet=outlet, scope="clearance", actor="staff:test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.plaintext}")
    assert client.get("/api/v1/webhook/deliveries").status_code == 403


def test_staff_decisions_reach_the_partner_with_the_statement_of_reasons(
    loopback: Any, receiver: PartnerReceiver, admin_user: Any
) -> None:
    """Content outside the partner's verified domains goes to review: the approval and the
    refusal staff decide are the partner's events too, a refusal with its public reasons."""
    herald, _ = partner("herald")
    _, elsewhere = partner("gazette")
    _, other = partner("courier")
    register(herald, receiver)
    approved = api_submit(herald, elsewhere)
    refused = api_submit(herald, other)
    assert approved.state == CaseState.IN_REVIEW
    review.case_approve(case=approved, user_id=admin_user.pk)
    review.case_reject(case=refused, user_id=admin_user.pk, reasons="Not your article.")
    send_all()

    assert receiver.bad_signatures == 0
    assert receiver.events() == [
        ("case.received", approved.reference),
        ("case.received", refused.reference),
        ("case.approved", approved.reference),
        ("case.rejected", refused.reference),
    ]
    rejection = receiver.received[-1]["data"]
    assert rejection["state"] == CaseState.REJECTED
    statement = rejection["statement_of_reasons"]
    assert statement["reasons"] == "Not your article."
    assert set(statement) == {
        "measure",
        "ground",
        "reasons",
        "redress",
        "automated_decision",
        "decided_at",
    }


def test_an_answer_with_control_characters_is_kept_as_text(
    loopback: Any, receiver: PartnerReceiver
) -> None:
    outlet, item = partner("herald")
    register(outlet, receiver)
    api_submit(outlet, item)
    receiver.answer = b"\x00stored\x00\xff" + b"z" * 5000
    send_all()
    delivery = WebhookDelivery.objects.get(event_type="case.received")
    assert delivery.state == WebhookDeliveryState.DELIVERED
    assert delivery.last_response.startswith(" stored ")
    assert len(delivery.last_response) == webhooks.EXCERPT


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": None},
        {"url": ["https://93.184.215.14/"]},
        {"url": 12},
        {"url": "https://93.184.215.14/" + "a" * 3000},
        {"url": "https://[::ffff:169.254.169.254]/"},
        {"url": "https://例え.テスト\x00/"},
        {"url": "javascript:alert(1)"},
    ],
)
def test_hostile_registrations_are_clear_4xx_and_write_nothing(
    loopback: Any, body: dict[str, Any]
) -> None:
    outlet, _ = partner("herald")
    answer = client_for(outlet).put("/api/v1/webhook/endpoint", body, format="json")
    assert 400 <= answer.status_code < 500, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")
    assert answer.json()["detail"]
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()


def test_a_body_that_is_not_json_is_a_4xx(loopback: Any) -> None:
    outlet, _ = partner("herald")
    answer = client_for(outlet).generic(
        "PUT", "/api/v1/webhook/endpoint", "{url: not json", content_type="application/json"
    )
    assert 400 <= answer.status_code < 500
    # A lone surrogate, escaped in valid JSON: no text a host name or the trail could hold.
    surrogate = client_for(outlet).generic(
        "PUT",
        "/api/v1/webhook/endpoint",
        '{"url": "https://exa\\udc80mple.com/"}',
        content_type="application/json",
    )
    assert 400 <= surrogate.status_code < 500
    assert not WebhookEndpoint.objects.exists()


def test_the_failsafe_the_breach_and_a_restore_reach_the_partner(
    loopback: Any, receiver: PartnerReceiver, admin_user: Any
) -> None:
    herald, _ = partner("herald")
    _, elsewhere = partner("gazette")
    register(herald, receiver)
    case = api_submit(herald, elsewhere)  # not the partner's content: to review, undecided
    assert case.deadline_at is not None
    with time_machine.travel(case.deadline_at + timedelta(minutes=5), tick=False):
        TakedownRequest.objects.filter(pk=case.pk).update(next_check_at=timezone.now())
        drive(case)
    case = review.case_approve(case=case, user_id=admin_user.pk)
    drive(case)
    review.case_restore(case=case, user_id=admin_user.pk, reasons="Removed in error.")
    send_all()

    assert receiver.bad_signatures == 0
    assert [event for event, _ in receiver.events()] == [
        "case.received",
        "case.disabled",
        "case.breached",
        "case.approved",
        "case.removed",
        "case.restored",
    ]
    states = [r["data"]["state"] for r in receiver.received]
    assert states[1] == CaseState.DISABLED_PENDING_REVIEW
    assert states[-1] == CaseState.RESTORED


def test_https_connects_to_the_checked_address_with_the_hosts_name(
    loopback: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS the call goes to the address the guard checked, while the handshake (SNI, the
    certificate's name) and the Host header still name the URL's host."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    subprocess.run(
        [
            "openssl",
            *request.split(),
            *["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
            *["-keyout", str(key), "-out", str(cert)],
        ],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_side.sni_callback = lambda sock, name, context: names.append(name)
    # Our test certificate is the one authority the client trusts here (certifi's otherwise).
    monkeypatch.setattr(
        webhook_client, "_tls_context", lambda: ssl.create_default_context(cafile=str(cert))
    )
    receiver = PartnerReceiver(tls=server_side)
    try:
        outlet, item = partner("herald")
        register(outlet, receiver)
        api_submit(outlet, item)
        send_all()
    finally:
        receiver.close()
    assert receiver.events()[0][0] == "case.received"
    assert names
    assert set(names) == {"localhost"}
    assert {r["host"] for r in receiver.received} == {f"localhost:{receiver.port}"}
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"delivered"}
