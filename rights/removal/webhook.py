"""The webhook backend: tells the aggregator's CMS to act on its copy of the article.

Each call is a signed JSON POST with an `Idempotency-Key` header. 2xx is success, and so are 404
and 410 for `disable` and `remove` (already gone). Another 4xx, except 408 and 429, is a refusal
for good (`RemovalRefused`: a dead letter for staff). Anything else, and any network error,
raises `RemovalFailed` for the engine to retry with backoff.

REMOVAL_WEBHOOK_TIMEOUT bounds the whole call, not each read: a CMS that trickles its answer a
byte at a time is cut off when the time is up, by a watchdog that shuts the socket down under
whatever read is waiting. Only the first MAX_RESPONSE bytes of an answer are read. The
standard library's http.client is used rather than requests because it lets us hold the socket
from before the TLS handshake to the last byte; requests gives it out only once the answer's
headers are in. (Name resolution is the one step left to the system resolver's own timeouts;
proxies from the environment are not used: the CMS is an internal service.)
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import certifi
from django.conf import settings

from rights.models import Target
from rights.removal import RemovalFailed, RemovalRefused

ALREADY_GONE = {404, 410}
# 4xx answers that are about this moment, not this request: worth repeating.
TRANSIENT_CLIENT_ERRORS = {408, 429}
# We only need the status; a CMS may say a little more, never everything it likes.
MAX_RESPONSE = 64 * 1024


class WebhookBackend:
    name = "webhook"
    local = False

    def apply(self, *, target: Target, action: str, key: str) -> None:
        item = target.content_item
        body = json.dumps(
            {
                "action": action,
                "idempotency_key": key,
                "case": target.case.reference,
                "target": target.pk,
                "content": (
                    {
                        "slug": item.slug,
                        "public_url": item.public_url,
                        "source_url": item.source_url,
                    }
                    if item is not None
                    else None
                ),
                "url": target.url,
            },
            sort_keys=True,
        ).encode("utf-8")
        signature = hmac.new(
            settings.REMOVAL_WEBHOOK_SECRET.encode("utf-8"), body, hashlib.sha256
        ).hexdigest()
        status = webhook_post(
            settings.REMOVAL_WEBHOOK_URL,
            body,
            {
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "X-Signature-SHA256": signature,
            },
            timeout=float(settings.REMOVAL_WEBHOOK_TIMEOUT),
        )
        if 200 <= status < 300:
            return
        if action != "restore" and status in ALREADY_GONE:
            return  # already gone there: nothing left to disable or remove
        if 400 <= status < 500 and status not in ALREADY_GONE | TRANSIENT_CLIENT_ERRORS:
            raise RemovalRefused(f"webhook refused with HTTP {status}")
        raise RemovalFailed(f"webhook answered HTTP {status}")


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class _Watchdog:
    """Shuts the current socket down when the time is up, waking any read that waits on it."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer = threading.Timer(max(0.0, seconds), self._cut)
        self._timer.daemon = True

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
        if self.expired.is_set():
            self._cut()

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        self.expired.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            # The plain socket's shutdown, also for a TLS socket: it only ends the connection,
            # under the TLS object of a read that is running in another thread.
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


@dataclass(frozen=True)
class Answer:
    status: int
    # The first bytes of the answer's body (at most `keep` of those read).
    excerpt: bytes


def webhook_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    max_response: int = MAX_RESPONSE,
) -> int:
    """POST `body` to `url` and return the answer's status code.

    The whole exchange (connect, TLS, request, the answer's headers and up to `max_response`
    bytes of its body) ends within `timeout` seconds, or `RemovalFailed` is raised.
    """
    return http_post(url, body, headers, timeout=timeout, max_response=max_response).status


def http_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    max_response: int = MAX_RESPONSE,
    connect_to: str | None = None,
    keep: int = 0,
) -> Answer:
    """`webhook_post`, answering the status and the first `keep` bytes of the body.

    `connect_to` is the IP address to connect to instead of resolving the URL's host again (the
    partner webhooks' guard resolved and checked it): the TLS handshake (SNI, certificate) and the
    Host header still name the URL's host. Redirects are never followed: a 3xx is the answer.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + timeout
    watchdog = _Watchdog(timeout)
    watchdog.start()
    connection: http.client.HTTPConnection | None = None
    sock: socket.socket | None = None
    try:
        sock = socket.create_connection((connect_to or host, port), timeout=timeout)
        watchdog.watch(sock)
        if tls:
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
            watchdog.watch(sock)
        connection = (
            http.client.HTTPSConnection(host, port)
            if tls
            else http.client.HTTPConnection(host, port)
        )
        connection.sock = sock  # connected already: http.client will not connect again
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        received = 0
        kept = b""
        while received < max_response:
            chunk = response.read1(min(8192, max_response - received))
            if not chunk:
                break
            if len(kept) < keep:
                kept += chunk[: keep - len(kept)]
            received += len(chunk)
        if watchdog.expired.is_set():
            raise RemovalFailed(f"webhook call took longer than {timeout:g} s")
        return Answer(status=response.status, excerpt=kept)
    except RemovalFailed:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watchdog.expired.is_set() or isinstance(exc, TimeoutError):
            raise RemovalFailed(f"webhook call took longer than {timeout:g} s") from exc
        raise RemovalFailed(f"webhook unreachable: {type(exc).__name__}") from exc
    finally:
        watchdog.stop()
        if connection is not None:
            connection.close()
        elif sock is not None:
            sock.close()
