"""Partner webhooks: endpoints, the events they are told, and delivery from the outbox.

A partner outlet registers one endpoint. Each event of a case its API filed (channel `api`,
outlet = the partner) becomes an outbox row (`Notification`, transport `webhook`) and a
`WebhookDelivery` in the same transaction as the event: `notify` calls `events_record` for every
event it is told of, so no caller has to remember the partner. The worker's `notification_send`
claims the row under a lease and calls `delivery_send`, which signs the stored body per the
Standard Webhooks specification and POSTs it. A 2xx is delivered; anything else (a 3xx
included: redirects are not followed), a timeout or a refused connection is retried with the
outbox's backoff until PARTNER_WEBHOOK_MAX_ATTEMPTS, then the delivery is a dead letter that
staff put back in line. The message id is made once, so every repeat carries the same one.

The guard against server-side request forgery runs at registration and again at every delivery:
the host is resolved, every address it resolves to must be public (not private, loopback,
link-local, multicast, reserved or unspecified; an IPv4-mapped IPv6 address is judged as the
IPv4 address it maps), and the connection goes to the address that was checked, so a DNS answer
that changes between the check and the call (rebinding) is never used. TLS still verifies the
certificate for the host name, which is also the Host header. Decimal, octal and hexadecimal
spellings of an address are resolved like any other name, so they are judged by the address they
mean. PARTNER_WEBHOOK_ALLOW_LOOPBACK lets tests and local runs use this machine (loopback only,
and then plain http too).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from standardwebhooks.webhooks import Webhook

from rights import audit, clock
from rights.dispatch import enqueue
from rights.errors import DomainError
from rights.models import (
    Audience,
    Channel,
    Notification,
    Outlet,
    StatementOfReasons,
    TakedownRequest,
    Target,
    Transport,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)
from rights.presenters import Viewer, case_present, iso
from rights.removal import RemovalFailed
from rights.removal.webhook import http_post
from rights.services.outbox import outbox_add
from rights.states import CaseState
from rights.task_names import TaskName

logger = logging.getLogger(__name__)

# The outbox's message kinds (rights.services.notifications.SUBJECTS) a partner is told of, as
# the event types it receives. A trusted request is approved at intake: its "received" is also
# its "approved". A staff approval tells the requester nothing (the removal follows), so it is
# notified to the partner alone (Audience.PARTNER).
EVENTS: dict[str, str] = {
    "received": "case.received",
    "approved": "case.approved",
    "removed": "case.removed",
    "disabled": "case.disabled",
    "rejected": "case.rejected",
    "restored": "case.restored",
    "breach": "case.breached",
    "not_found": "case.not_found",
    "withdrawn": "case.withdrawn",
}
APPROVED = EVENTS["approved"]
EVENT_TYPES = tuple(EVENTS.values())
SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
MAX_URL = 2048
# What is kept of a partner's answer: enough to tell a proxy's error page from their own.
EXCERPT = 200
# An endpoint's answer is read up to this much (and the rest dropped) before the call ends.
MAX_RESPONSE = 16 * 1024


class EndpointRefused(DomainError):
    code = "endpoint_refused"


class DeadLetter(Exception):
    """The transport gives up on this outbox row: it is not retried until staff retry it."""


class DeliveryFailed(Exception):
    """This attempt failed; the outbox retries with backoff. The message is safe to store."""


def _secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _message_id() -> str:
    return "msg_" + secrets.token_hex(13)


# --- The guard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    url: str
    host: str
    port: int
    # Every address the host resolved to, each checked; the call connects to the first.
    addresses: tuple[str, ...]


def _carried(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a packet to `ip` really reaches: the IPv4 address an IPv4-mapped, 6to4 or
    Teredo IPv6 address carries (judged as itself, 2002:7f00:1:: is 127.0.0.1)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.teredo is not None:
            return ip.teredo[1]
    return ip


def _address_refusal(text: str) -> str | None:
    """Why an endpoint may not be at this address; None when it may."""
    ip = _carried(ipaddress.ip_address(text.split("%", 1)[0]))
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_loopback:
        return None if settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved address"  # shared (carrier-grade NAT), documentation, benchmarking
    return None


def _loopback_only(addresses: tuple[str, ...]) -> bool:
    for text in addresses:
        ip = _carried(ipaddress.ip_address(text.split("%", 1)[0]))
        if not ip.is_loopback:
            return False
    return True


def check_endpoint_url(url: str) -> Destination:
    """Refuse (EndpointRefused, field `url`) an endpoint we must not call; the checked
    destination otherwise. Resolves the host: its every address must be allowed."""
    if not isinstance(url, str) or not url.strip():
        raise EndpointRefused("Give the endpoint's URL.", field="url")
    url = url.strip()
    if len(url) > MAX_URL:
        raise EndpointRefused(f"The URL is longer than {MAX_URL} characters.", field="url")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise EndpointRefused("The URL contains spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise EndpointRefused("This is not a valid URL.", field="url") from None
    allow_http = settings.PARTNER_WEBHOOK_ALLOW_LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise EndpointRefused("The endpoint must be an https URL.", field="url")
    if not host:
        raise EndpointRefused("The URL has no host.", field="url")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("The URL must not carry a user name or password.", field="url")
    if parts.fragment:
        raise EndpointRefused("The URL must not have a #fragment.", field="url")
    if port == 0:
        raise EndpointRefused("Port 0 is not a port an endpoint listens on.", field="url")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise EndpointRefused(f"The host {host!r} cannot be resolved.", field="url") from None
    # IPv4 first: a name with both (localhost, say) is called where most servers listen.
    found = [str(info[4][0]) for info in infos]
    addresses = tuple(dict.fromkeys(sorted(found, key=lambda a: ":" in a)))
    if not addresses:
        raise EndpointRefused(f"The host {host!r} cannot be resolved.", field="url")
    for address in addresses:
        refusal = _address_refusal(address)
        if refusal is not None:
            raise EndpointRefused(
                f"The host {host!r} resolves to {refusal}; endpoints must be on the public "
                "internet.",
                field="url",
            )
    if parts.scheme == "http" and not _loopback_only(addresses):
        raise EndpointRefused("The endpoint must be an https URL.", field="url")
    return Destination(url=url, host=host, port=port, addresses=addresses)


# --- Endpoints ------------------------------------------------------------------------------


def _endpoint_audit(outlet: Outlet, actor: str, action: str, destination: Destination) -> None:
    # The host, and a keyed digest of the whole URL (its path or query may hold a token of the
    # partner's); never the secret.
    audit.append(
        stream=outlet.audit_stream(),
        actor=actor,
        action=action,
        data={"host": destination.host, "url_digest": audit.text_digest(destination.url)},
    )


def endpoint_register(*, outlet: Outlet, url: str, actor: str) -> tuple[WebhookEndpoint, str]:
    """Register (or move) the outlet's endpoint. Answers the endpoint and its secret when one
    was made now (a first registration), else an empty string: moving keeps the secret."""
    if not outlet.is_partner:
        raise DomainError("Only a partner outlet may have a webhook endpoint.", field="outlet")
    destination = check_endpoint_url(url)
    now = clock.now()
    with transaction.atomic():
        Outlet.objects.select_for_update().get(pk=outlet.pk)
        endpoint = WebhookEndpoint.objects.filter(outlet=outlet).first()
        secret = ""
        if endpoint is None:
            secret = _secret()
            endpoint = WebhookEndpoint.objects.create(
                outlet=outlet, url=destination.url, secret=secret, secret_rotated_at=now
            )
            _endpoint_audit(outlet, actor, "webhook.endpoint_registered", destination)
        elif endpoint.url != destination.url:
            endpoint.url = destination.url
            endpoint.save(update_fields=["url", "updated_at"])
            _endpoint_audit(outlet, actor, "webhook.endpoint_changed", destination)
    return endpoint, secret


def endpoint_rotate_secret(*, outlet: Outlet, actor: str) -> tuple[WebhookEndpoint, str]:
    """A new secret for the outlet's endpoint, answered once; the old one stops signing now."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(outlet=outlet).first()
        if endpoint is None:
            raise DomainError("No webhook endpoint is registered.", code="not_found")
        secret = _secret()
        endpoint.secret = secret
        endpoint.secret_rotated_at = clock.now()
        endpoint.save(update_fields=["secret", "secret_rotated_at", "updated_at"])
        audit.append(
            stream=outlet.audit_stream(),
            actor=actor,
            action="webhook.secret_rotated",
            data={"endpoint": endpoint.pk},
        )
    return endpoint, secret


def endpoint_remove(*, outlet: Outlet, actor: str) -> bool:
    """Forget the outlet's endpoint; deliveries still owed become dead letters when their turn
    comes. False when there was none."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(outlet=outlet).first()
        if endpoint is None:
            return False
        audit.append(
            stream=outlet.audit_stream(),
            actor=actor,
            action="webhook.endpoint_removed",
            data={"endpoint": endpoint.pk, "host": urlsplit(endpoint.url).hostname or ""},
        )
        endpoint.delete()
    return True


# --- Events ---------------------------------------------------------------------------------


def _statement(case: TakedownRequest) -> dict[str, Any] | None:
    """The public parts of the decision's statement of reasons (not the facts, which may name
    people)."""
    statement = (
        StatementOfReasons.objects.filter(case=case, round=case.appeal_round)
        .order_by("-decided_at", "-pk")
        .first()
    )
    if statement is None:
        return None
    return {
        "measure": statement.measure,
        "ground": statement.ground,
        "reasons": statement.reasons,
        "redress": statement.redress,
        "automated_decision": statement.automated_decision,
        "decided_at": iso(statement.decided_at),
    }


def event_payload(
    case: TakedownRequest, event_type: str, now: datetime, targets: list[Target] | None = None
) -> dict[str, Any]:
    """The body of one event: the case as its partner sees it through the API (reference,
    state, each URL's state, deadline, decision), no requester's details. `targets`: the
    case's, with their items, in key order, when already read."""
    if targets is None:
        targets = list(case.targets.select_related("content_item").order_by("pk"))
    outlet = Outlet(pk=case.outlet_id)
    data = case_present(case, targets=targets, viewer=Viewer.partner(outlet)).as_dict()
    if event_type == "case.rejected":
        data["statement_of_reasons"] = _statement(case)
    return {"type": event_type, "timestamp": iso(now), "data": data}


def events_record(
    *, cases: Sequence[TakedownRequest], kind: str, occurrences: Sequence[str]
) -> int:
    """Put the partners' deliveries for this event of these cases in the outbox (in the
    caller's transaction), in constant queries; how many were new. Only for cases a partner's
    API filed, and only while it has an endpoint. Each case's occurrence (in the same order)
    names the event as the outbox's own key does, so a repeat adds nothing."""
    event_type = EVENTS.get(kind)
    if event_type is None:
        return 0
    filed = {
        case.pk: occurrence
        for case, occurrence in zip(cases, occurrences, strict=True)
        if case.channel == Channel.API and case.outlet_id is not None
    }
    if not filed:
        return 0
    listening = set(
        WebhookEndpoint.objects.filter(
            outlet_id__in={case.outlet_id for case in cases if case.pk in filed}
        ).values_list("outlet_id", flat=True)
    )
    fresh = list(
        TakedownRequest.objects.filter(pk__in=list(filed), outlet_id__in=listening).order_by("pk")
    )
    if not fresh:
        return 0
    held: dict[int, list[Target]] = {}
    for target in (
        Target.objects.filter(case__in=fresh).select_related("content_item").order_by("pk")
    ):
        held.setdefault(target.case_id, []).append(target)
    now = clock.now()
    rows: list[tuple[Notification, WebhookDelivery]] = []
    for case in fresh:
        types = [event_type]
        if kind == "received" and case.state == CaseState.APPROVED:
            types.append(APPROVED)
        for name in types:
            notification = Notification(
                key=f"{case.reference}:{name}:{Audience.PARTNER}:{filed[case.pk]}",
                kind=name,
                audience=Audience.PARTNER,
                case=case,
                transport=Transport.WEBHOOK,
                next_attempt_at=now,
            )
            delivery = WebhookDelivery(
                outlet_id=case.outlet_id or 0,  # filed by a partner: never None here
                message_id=_message_id(),
                event_type=name,
                payload=event_payload(case, name, now, held.get(case.pk, [])),
                give_up_after=settings.PARTNER_WEBHOOK_MAX_ATTEMPTS,
            )
            rows.append((notification, delivery))
    # One transaction: the sending is published on commit, when its delivery row is there too.
    with transaction.atomic():
        added = {row.key for row in outbox_add([notification for notification, _ in rows])}
        deliveries = []
        for notification, delivery in rows:
            if notification.key in added:
                delivery.notification = notification
                deliveries.append(delivery)
        WebhookDelivery.objects.bulk_create(deliveries)
    return len(deliveries)


# --- Delivery -------------------------------------------------------------------------------


def sign(*, secret: str, message_id: str, moment: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (signed with the `standardwebhooks`
    package, the specification's own implementation)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, moment, body),
    }


def body_of(delivery: WebhookDelivery) -> str:
    """The exact bytes sent (as text): the same on every attempt."""
    return json.dumps(delivery.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _excerpt(raw: bytes) -> str:
    """What is kept of an answer: printable text only (a NUL cannot even be stored)."""
    text = raw[:EXCERPT].decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else " " for c in text)[:EXCERPT]


def _record(delivery: WebhookDelivery, status: int | None, excerpt: bytes, state: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_status=status,
        last_response=_excerpt(excerpt),
        last_attempt_at=clock.now(),
        state=state,
    )


def _fail(delivery: WebhookDelivery, attempts: int, reason: str, *, final: bool = False) -> None:
    """Raise for a failed attempt: a dead letter once the attempts are spent (or `final`)."""
    if final or attempts >= delivery.give_up_after:
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                state=WebhookDeliveryState.DEAD, dead_at=clock.now()
            )
            audit.append(
                stream=delivery.outlet.audit_stream(),
                actor="system:outbox",
                action="webhook.dead",
                data={
                    "message_id": delivery.message_id,
                    "event": delivery.event_type,
                    "attempts": attempts,
                },
            )
        raise DeadLetter(reason)
    raise DeliveryFailed(reason)


def delivery_send(notification: Notification) -> None:
    """The outbox's webhook transport: one signed attempt of one delivery. Returns when the
    partner answered 2xx; raises DeliveryFailed (retry) or DeadLetter (give up) otherwise."""
    delivery = WebhookDelivery.objects.select_related("outlet").get(notification=notification)
    if delivery.state == WebhookDeliveryState.DEAD:
        # A stale or redelivered task message for a dead letter: only staff put it back in line.
        raise DeadLetter("a dead letter waits for staff")
    attempts = notification.attempts
    endpoint = WebhookEndpoint.objects.filter(outlet_id=delivery.outlet_id).first()
    if endpoint is None:
        _record(delivery, None, b"", WebhookDeliveryState.PENDING)
        _fail(delivery, attempts, "no endpoint is registered", final=True)
        return
    try:
        destination = check_endpoint_url(endpoint.url)
    except EndpointRefused as exc:
        _record(delivery, None, b"", WebhookDeliveryState.PENDING)
        # An address that is refused now may be a DNS answer that changes back: retried.
        _fail(delivery, attempts, exc.message)
        return
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "rights-webhooks/1",
        **sign(
            secret=endpoint.secret, message_id=delivery.message_id, moment=clock.now(), body=body
        ),
    }
    try:
        answer = http_post(
            destination.url,
            body.encode("utf-8"),
            headers,
            timeout=float(settings.PARTNER_WEBHOOK_TIMEOUT),
            max_response=MAX_RESPONSE,
            connect_to=destination.addresses[0],
            keep=EXCERPT,
        )
    except RemovalFailed as exc:
        _record(delivery, None, b"", WebhookDeliveryState.PENDING)
        _fail(delivery, attempts, str(exc))
        return
    if 200 <= answer.status < 300:
        _record(delivery, answer.status, answer.excerpt, WebhookDeliveryState.DELIVERED)
        return
    _record(delivery, answer.status, answer.excerpt, WebhookDeliveryState.PENDING)
    _fail(delivery, attempts, f"endpoint answered HTTP {answer.status}")


def delivery_retry(*, delivery_id: int, actor: str) -> WebhookDelivery:
    """Staff put a dead letter back in line: tried again at once, then with backoff, for
    another PARTNER_WEBHOOK_MAX_ATTEMPTS attempts."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("outlet", "notification")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            raise DomainError("no such webhook delivery", code="not_found")
        if delivery.state != WebhookDeliveryState.DEAD:
            raise DomainError(f"webhook delivery {delivery.message_id} is not a dead letter")
        notification = delivery.notification
        delivery.state = WebhookDeliveryState.PENDING
        delivery.dead_at = None
        delivery.give_up_after = notification.attempts + settings.PARTNER_WEBHOOK_MAX_ATTEMPTS
        delivery.save(update_fields=["state", "dead_at", "give_up_after"])
        Notification.objects.filter(pk=notification.pk).update(
            next_attempt_at=clock.now(), lease_until=None
        )
        audit.append(
            stream=delivery.outlet.audit_stream(),
            actor=actor,
            action="webhook.retried",
            data={"message_id": delivery.message_id, "event": delivery.event_type},
        )
        enqueue(TaskName.NOTIFICATION_SEND, notification.pk)
    return delivery


def partner_deliveries(outlet: Outlet) -> QuerySet[WebhookDelivery]:
    """The outlet's own deliveries, newest first: the only query the partner API lists."""
    return (
        WebhookDelivery.objects.filter(outlet=outlet).select_related("notification").order_by("-pk")
    )
