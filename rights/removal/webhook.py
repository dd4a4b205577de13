"""The webhook backend: tells the aggregator's CMS to act on its copy of the article.

Each call is a signed JSON POST with an `Idempotency-Key` header, under a connect and read
timeout. 2xx is success, and so are 404 and 410 for `disable` and `remove` (already gone).
Anything else,
and any network error, raises `RemovalFailed` for the engine to retry with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import requests
from django.conf import settings

from rights.models import Target
from rights.removal import RemovalFailed

ALREADY_GONE = {404, 410}


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
        timeout = settings.REMOVAL_WEBHOOK_TIMEOUT
        try:
            response = requests.post(
                settings.REMOVAL_WEBHOOK_URL,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                    "X-Signature-SHA256": signature,
                },
                timeout=(min(3.0, timeout), timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise RemovalFailed(f"webhook unreachable: {type(exc).__name__}") from exc
        if 200 <= response.status_code < 300:
            return
        if action != "restore" and response.status_code in ALREADY_GONE:
            return  # already gone there: nothing left to disable or remove
        raise RemovalFailed(f"webhook answered HTTP {response.status_code}")
