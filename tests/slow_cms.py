"""CMS stand-ins on loopback that misbehave at the socket level: a raw TCP server that reads each
HTTP request and answers it as told (at once, a byte at a time, after a hold, or with a huge
body), and keeps score of calls, overlapping calls and what it applied in which order.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import Counter
from typing import Any


class SlowCMS:
    """`mode`: "ok" (answer at once), "trickle" (the whole answer, status line included, one byte
    every `pace` seconds), "trickle_body" (headers at once, then the body a byte at a time),
    "huge" (a 2xx with a body of `huge_bytes`), or "hold" (answer after `release` is set, for
    actions in `hold_actions`; others at once). `status` is the status code answered.

    A call is *applied* (recorded in `applied`) when its answer has been sent in full, as a CMS
    that commits before it answers would; a call whose client hung up first is not.
    """

    def __init__(
        self,
        *,
        mode: str = "ok",
        status: int = 200,
        pace: float = 0.5,
        huge_bytes: int = 20 * 1024 * 1024,
        hold_actions: frozenset[str] = frozenset(),
    ) -> None:
        self.mode = mode
        self.status = status
        self.pace = pace
        self.huge_bytes = huge_bytes
        self.hold_actions = hold_actions
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # by idempotency key
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.applied: list[tuple[str, str]] = []  # (action, content slug), in order
        self.received: list[tuple[str, str]] = []
        self.finished = 0  # answers sent in full
        self.hung_up = 0  # answers the client did not wait for
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/takedown"
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    # --- scoring ---------------------------------------------------------------------------

    def total_calls(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    def state_of(self, slug: str) -> str | None:
        """The last action applied to a content item: what the CMS now shows."""
        with self.lock:
            actions = [action for action, applied_slug in self.applied if applied_slug == slug]
        return actions[-1] if actions else None

    def wait_received(self, action: str, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if any(a == action for a, _ in self.received):
                    return
            time.sleep(0.02)
        raise AssertionError(f"the CMS never received a {action!r} call")

    def wait_hung_up(self, timeout: float = 10) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if self.hung_up:
                    return
            time.sleep(0.02)
        raise AssertionError("the client never hung up")

    def close(self) -> None:
        self.closed = True
        self.release.set()
        with contextlib.suppress(OSError):
            self.server.close()

    # --- serving ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_request(conn)
            if request is None:
                return
            key, body = request
            action = str(body.get("action", ""))
            slug = str((body.get("content") or {}).get("slug", ""))
            with self.lock:
                self.calls[key] += 1
                self.in_flight[key] += 1
                self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
                self.received.append((action, slug))
            try:
                if self._answer(conn, action):
                    with self.lock:
                        self.finished += 1
                        self.applied.append((action, slug))
                else:
                    with self.lock:
                        self.hung_up += 1
            finally:
                with self.lock:
                    self.in_flight[key] -= 1

    def _read_request(self, conn: socket.socket) -> tuple[str, dict[str, Any]] | None:
        data = b""
        conn.settimeout(10)
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode()
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                rest += chunk
        except OSError:
            return None
        return headers.get("idempotency-key", ""), json.loads(rest[:length] or b"{}")

    def _gone(self, conn: socket.socket, wait: float) -> bool:
        """Wait up to `wait` seconds; True as soon as the client has hung up."""
        readable, _, _ = select.select([conn], [], [], wait)
        if not readable:
            return False
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _answer(self, conn: socket.socket, action: str) -> bool:
        """Send the answer as the mode says; False when the client hung up first."""
        reason = {200: "OK", 422: "Unprocessable Content", 500: "Internal Server Error"}.get(
            self.status, "Status"
        )
        body = b'{"ok": true}'
        if self.mode in {"trickle", "trickle_body"}:
            body = b'{"ok": true, "note": "' + b"." * 60 + b'"}'
        if self.mode == "huge":
            body = b"x" * self.huge_bytes
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            if self.mode == "hold" and action in self.hold_actions:
                end = time.monotonic() + 30
                while not self.release.is_set():
                    if self._gone(conn, 0.02) or time.monotonic() > end:
                        return False
            if self.mode in {"trickle", "trickle_body"}:
                answer = head + body if self.mode == "trickle" else body
                if self.mode == "trickle_body":
                    conn.sendall(head)
                for index in range(len(answer)):
                    conn.sendall(answer[index : index + 1])
                    if self._gone(conn, self.pace):
                        return False
                return True
            conn.sendall(head + body)
            return True
        except OSError:
            return False
