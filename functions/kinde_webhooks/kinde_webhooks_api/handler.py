"""KindeWebhookFunction handler: ``POST /webhooks/kinde``.

Kinde sends each event as a JWT body signed by the environment's keys (the same JWKS as access
tokens). Order of work: verify the signature first (anything unsigned, forged or unreadable
records nothing), then skip a delivery already processed (``webhook-id``, else ``event_id``),
then act, and only then mark the delivery processed, so a failure half-way is retried by Kinde.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import build_resolver, raw_body
from planguard.auth import get_verifier
from planguard.errors import BadRequest
from planguard.headers import header
from planguard.ids import is_kinde_id
from planguard.repository import get_repository
from planguard.webhook_deliveries import get_deliveries

logger = Logger()
app = build_resolver()

MAX_DELIVERY_ID = 256


def user_deleted(data: dict[str, Any]) -> dict[str, Any]:
    """Every tracked account, guard, counter and hold of the user goes."""
    user = data.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not is_kinde_id(user_id):
        raise BadRequest("user.deleted must carry data.user.id, a Kinde user id.")
    removed = get_repository().delete_user(user_id)
    return {"user_id": user_id, "accounts_removed": removed}


HANDLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"user.deleted": user_deleted}


@app.post("/webhooks/kinde")
def receive() -> Response[Any]:
    token = raw_body(app.current_event).decode("utf-8", errors="replace").strip()
    if not token:
        raise BadRequest("The body must be the webhook's JWT (Content-Type: application/jwt).")
    claims = get_verifier().verify_webhook(token)
    event_type, event_id, data = claims.get("type"), claims.get("event_id"), claims.get("data")
    if not isinstance(event_type, str) or not isinstance(event_id, str) or not event_id:
        raise BadRequest("The webhook must carry a type and an event_id.")
    delivery = header(app.current_event.headers, "webhook-id") or event_id
    if len(delivery) > MAX_DELIVERY_ID:
        raise BadRequest("The webhook-id header is too long.")
    context = {"type": event_type, "event_id": event_id, "delivery": delivery}
    deliveries = get_deliveries()
    if deliveries.seen(delivery):
        logger.info("webhook replayed: already processed", extra=context)
        return Response(status_code=200, content_type="application/json", body={"received": True})
    handle = HANDLERS.get(event_type)
    if handle is None:
        logger.info("webhook type not handled", extra=context)
    else:
        outcome = handle(data if isinstance(data, dict) else {})
        logger.info("webhook processed", extra={**context, **outcome})
    deliveries.mark(delivery, event_type)
    return Response(status_code=200, content_type="application/json", body={"received": True})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
