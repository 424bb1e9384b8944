"""Kinde's webhooks: a JWT body signed with the stand-in's key, POSTed to the local API."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from local.kinde.keys import KeyRing
from local.web import http_request

WEBHOOK_PATH = "/webhooks/kinde"


def webhook_claims(
    event_type: str, data: dict[str, Any], *, event_id: str | None = None, age_seconds: float = 0
) -> dict[str, Any]:
    """What Kinde signs in every webhook: a new ``event_id`` (unless given) and the ``timestamp``
    of the event, ``age_seconds`` ago (negative: in the future), to try stale and future events."""
    return {
        "type": event_type,
        "event_id": event_id or f"event_{uuid.uuid4().hex}",
        "source": "admin",
        "timestamp": datetime.fromtimestamp(time.time() - age_seconds, UTC).isoformat(),
        "data": data,
    }


class Webhooks:
    """Signs webhooks and delivers them to ``api_url`` (the local API gateway; None: nowhere).
    ``sent`` keeps every body by its ``webhook-id``, for redelivery."""

    def __init__(self, keys: KeyRing, api_url: str | None) -> None:
        self.key_ring = keys
        self.api_url = api_url
        self.sent: dict[str, str] = {}
        self._lock = threading.Lock()

    def sign(
        self, event_type: str, data: dict[str, Any], *, event_id: str | None = None, age_seconds: float = 0
    ) -> str:
        """A Kinde webhook body: a JWT signed RS256 with the current key (``kid`` in the header)."""
        return self.key_ring.sign(
            webhook_claims(event_type, data, event_id=event_id, age_seconds=age_seconds)
        )

    def deliver(self, body: str, webhook_id: str | None = None) -> dict[str, Any]:
        """POST a signed webhook to the local API, as Kinde delivers it. A new ``webhook-id`` unless
        ``webhook_id`` is given (a redelivery reuses it). ``delivered`` means the API answered 2xx."""
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        with self._lock:
            self.sent[webhook_id] = body
        answer: dict[str, Any] = {"delivered": False, "webhookId": webhook_id}
        if not self.api_url:
            return {**answer, "error": "No local API to deliver to (the stand-in runs without make dev)."}
        url = f"{self.api_url}{WEBHOOK_PATH}"
        headers = {"Content-Type": "application/jwt", "webhook-id": webhook_id}
        try:
            status, response = http_request("POST", url, body.encode(), headers, timeout=60)
        except OSError as exc:
            return {**answer, "error": f"The API at {self.api_url} does not answer: {exc}"}
        answer.update(delivered=200 <= status < 300, status=status, response=response)
        if status == 404:
            answer["error"] = (
                f"The API at {self.api_url} has no POST {WEBHOOK_PATH} route: add KindeWebhookFunction "
                "with that HttpApi event to template.yaml."
            )
        return answer
