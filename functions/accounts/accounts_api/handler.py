"""AccountsFunction handler: the tracked-account routes.

Thin by design: each route is authenticate → parse → one ``AccountsService`` call → response.
The request models (pydantic) are imported by the write routes only: a read never pays for them.
Errors are raised as ``ApiError`` and mapped to HTTP by the shared resolver.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import authenticate, build_resolver, invocation_deadline, json_body, parse_model, query_int
from planguard.auth import Principal
from planguard.errors import BadRequest
from planguard.request_parsing import header
from planguard.settings import FEATURE_KEY

from accounts_api.cold_overlap import Prefetched, authenticate_minting, authenticate_prefetching
from accounts_api.service import NewAccount, service

logger = Logger()
metrics = Metrics()
app = build_resolver()

PAGE_DEFAULT, PAGE_MAX = 50, 100
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body)


def _caller() -> tuple[Principal, Prefetched, float | None]:
    """The verified caller, what a cold container read of their entitlement beside the key-set
    fetch (``accounts_api.cold_overlap``; not in organization mode, whose limit is not the
    user's), and when the invocation ends."""
    deadline = invocation_deadline(app)
    if service().organizations is not None:
        return authenticate_minting(app.current_event.headers, deadline), None, deadline
    principal, entitlement = authenticate_prefetching(
        app.current_event.headers, service().kinde, FEATURE_KEY, deadline
    )
    return principal, entitlement, deadline


@app.get("/accounts")
def list_accounts() -> Response[Any]:
    principal, entitlement, deadline = _caller()
    params = app.current_event.query_string_parameters
    limit = query_int(params, "limit", PAGE_DEFAULT, 1, PAGE_MAX)
    cursor = (params or {}).get("cursor")
    if cursor is not None and not cursor:
        raise BadRequest("The cursor is not valid.")
    return _json(200, service().list(principal, limit, cursor, deadline, entitlement))


@app.post("/accounts")
def create_account() -> Response[Any]:
    from accounts_api.models import CreateAccountRequest  # noqa: PLC0415 - pydantic, for writes only

    principal, entitlement, deadline = _caller()
    payload = parse_model(CreateAccountRequest, json_body(app.current_event))
    key = header(app.current_event.headers, "idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("The Idempotency-Key header must be 1-255 visible ASCII characters.")
    new = NewAccount(payload.name, payload.account_number)
    account = service().add(principal, new, deadline, idempotency_key=key, prefetched=entitlement)
    return _json(201, account.to_json())


@app.get("/accounts/<id>")
def get_account(id: str) -> Response[Any]:
    principal = authenticate(app.current_event)
    return _json(200, service().get(principal, id, invocation_deadline(app)).to_json())


@app.patch("/accounts/<id>")
def update_account(id: str) -> Response[Any]:
    from accounts_api.models import UpdateAccountRequest  # noqa: PLC0415 - pydantic, for writes only

    principal = authenticate(app.current_event)
    payload = parse_model(UpdateAccountRequest, json_body(app.current_event))
    changed = service().update(principal, id, payload.name, payload.account_number, invocation_deadline(app))
    return _json(200, changed.to_json())


@app.delete("/accounts/<id>")
def delete_account(id: str) -> Response[str]:
    principal = authenticate(app.current_event)
    service().delete(principal, id, invocation_deadline(app))
    return Response(status_code=204, body="")


@app.get("/usage")
def get_usage() -> Response[Any]:
    principal, entitlement, deadline = _caller()
    return _json(200, service().usage_view(principal, deadline, entitlement))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
