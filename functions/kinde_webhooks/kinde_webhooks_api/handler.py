"""KindeWebhookFunction handler: ``POST /webhooks/kinde``.

Kinde sends each event as a JWT body signed by the environment's keys (the same JWKS as access
tokens). Order of work: verify the token, accepting no more than Kinde's own decoder (anything
unsigned, forged or unreadable records nothing); read the event (``type``, ``event_id``, a
``timestamp`` not in the future); ignore an event older than the deduplication window; skip an
event already processed (by its signed ``event_id``: the ``webhook-id`` header is not signed, a
replayer chooses it, so it is only logged); act; and only then mark the event processed, so a
failure half-way is retried by Kinde.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import build_resolver, raw_body
from planguard.auth import get_verifier
from planguard.errors import BadRequest
from planguard.request_parsing import header

from kinde_webhooks_api.deliveries import WINDOW_SECONDS, get_deliveries
from kinde_webhooks_api.events import WebhookEvent
from kinde_webhooks_api.removals import HANDLERS
from kinde_webhooks_api.webhook_token import verify_webhook

logger = Logger()
app = build_resolver()

LOGGED_HEADER_LENGTH = 256


def received() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body={"received": True})


@app.post("/webhooks/kinde")
def receive() -> Response[Any]:
    token = raw_body(app.current_event).decode("utf-8", errors="replace").strip()
    if not token:
        raise BadRequest("The body must be the webhook's JWT (Content-Type: application/jwt).")
    claims = verify_webhook(token, get_verifier())
    now = time.time()
    event = WebhookEvent.from_claims(claims, now)
    context = {
        "type": event.type,
        "event_id": event.event_id,
        "webhook_id": (header(app.current_event.headers, "webhook-id") or "")[:LOGGED_HEADER_LENGTH],
    }
    if event.is_stale(now, WINDOW_SECONDS):
        # 200, not a 4xx: Kinde would retry it for 36 hours, and acting on it could undo what
        # happened since (its deduplication record may be gone).
        logger.info("webhook ignored: older than the deduplication window", extra=context)
        return received()
    deliveries = get_deliveries()
    if deliveries.seen(event.event_id):
        logger.info("webhook replayed: already processed", extra=context)
        return received()
    handle = HANDLERS.get(event.type)
    if handle is None:
        logger.info("webhook type not handled", extra=context)
    else:
        outcome = handle(event)
        logger.info("webhook processed", extra={**context, **outcome})
    if not deliveries.mark(event.event_id, event.type, event.occurred_at):
        logger.info("webhook processed concurrently by another delivery", extra=context)
    return received()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
