"""AccountsFunction handler: routes of DESIGN.md §2 owned by the accounts API.

Thin by design: parse, authenticate, call ``AccountsService``, shape the response. Errors are
raised as ``ApiError`` and mapped to HTTP by the shared resolver.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import authenticate, build_resolver, json_body, parse_model, query_int, remaining_seconds
from planguard.auth import Principal
from planguard.entitlements import get_account_api
from planguard.errors import BadRequest, IdempotencyInProgress, IdempotencyKeyReused, ServiceUnavailable
from planguard.headers import header
from planguard.repository import dynamodb_client, get_repository
from planguard.settings import get_settings

from accounts_api.models import CreateAccountRequest, UpdateAccountRequest
from accounts_api.service import AccountsService

logger = Logger()
metrics = Metrics()
app = build_resolver()

PAGE_DEFAULT, PAGE_MAX = 50, 100
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@functools.cache
def service() -> AccountsService:
    return AccountsService(get_repository(), get_account_api())


_remaining_seconds = remaining_seconds(app)


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/accounts")
def list_accounts() -> Response[Any]:
    principal = authenticate(app.current_event)
    params = app.current_event.query_string_parameters
    limit = query_int(params, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    cursor = (params or {}).get("cursor")
    if cursor is not None and not cursor:
        raise BadRequest("The cursor is not valid.")
    page = service().repository.list_page(principal.user_id, limit, cursor)
    return _json(
        200,
        {
            "items": [account.to_json() for account in page.items],
            "usage": service().usage(principal, _remaining_seconds),
            "nextCursor": page.next_cursor,
        },
    )


@functools.cache
def _idempotent_create() -> tuple[Any, IdempotencyConfig]:
    """Powertools idempotency around create, keyed by (user, Idempotency-Key), body validated."""
    settings = get_settings()
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name or "",
        boto3_client=dynamodb_client(settings.dynamodb_endpoint_url),
    )
    config = IdempotencyConfig(
        event_key_jmespath="[user, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=24 * 3600,
    )

    @idempotent_function(data_keyword_argument="request", config=config, persistence_store=persistence)  # type: ignore[untyped-decorator]
    def create(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        body = request["body"]
        account = service().add(principal, body["name"], body["accountNumber"], _remaining_seconds)
        return account.to_json()

    return create, config


@app.post("/accounts")
def create_account() -> Response[Any]:
    principal = authenticate(app.current_event)
    payload = parse_model(CreateAccountRequest, json_body(app.current_event))
    key = header(app.current_event.headers, "idempotency-key")
    if key is None or not get_settings().idempotency_table_name:
        account = service().add(principal, payload.name, payload.account_number, _remaining_seconds)
        return _json(201, account.to_json())
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("The Idempotency-Key header must be 1-255 visible ASCII characters.")
    body = {"name": payload.name, "accountNumber": payload.account_number}
    create, config = _idempotent_create()
    if context := getattr(app, "lambda_context", None):
        config.register_lambda_context(context)
    try:
        result = create(request={"user": principal.user_id, "key": key, "body": body}, principal=principal)
    except IdempotencyValidationError:
        raise IdempotencyKeyReused() from None
    except IdempotencyAlreadyInProgressError:
        raise IdempotencyInProgress() from None
    except IdempotencyPersistenceLayerError:  # its table throttled or unreachable: nothing created
        logger.exception("idempotency store unavailable")
        raise ServiceUnavailable() from None
    return _json(201, result)


@app.get("/accounts/<account_id>")
def get_account(account_id: str) -> Response[Any]:
    principal = authenticate(app.current_event)
    return _json(200, service().repository.get(principal.user_id, account_id).to_json())


@app.patch("/accounts/<account_id>")
def update_account(account_id: str) -> Response[Any]:
    principal = authenticate(app.current_event)
    payload = parse_model(UpdateAccountRequest, json_body(app.current_event))
    account = service().repository.update(principal.user_id, account_id, payload.name, payload.account_number)
    return _json(200, account.to_json())


@app.delete("/accounts/<account_id>")
def delete_account(account_id: str) -> Response[str]:
    principal = authenticate(app.current_event)
    service().repository.delete(principal.user_id, account_id)
    return Response(status_code=204, body="")


@app.get("/usage")
def get_usage() -> Response[Any]:
    principal = authenticate(app.current_event)
    return _json(200, {"tracked_accounts": service().usage(principal, _remaining_seconds)})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
