"""UsageCountFunction handler: the routes Kinde's plan-change workflow calls.

    GET  /api/users/accounts/count/{kindeId}        → {"kindeId","count"}  (the seed's URL and body)
    POST /api/users/accounts/count/{kindeId}/hold   → the downgrade hold   (usage API key only)
    GET  /api/organizations/accounts/count/{orgCode}       → {"orgCode","count"}
    POST /api/organizations/accounts/count/{orgCode}/hold  → the organization's downgrade hold

Only the deployment's kind of customer is served (``BILLING_CUSTOMER``); the other's are 404.

It sits on Kinde's plan-change path, so its cold start must stay close to a bare boto3 client's:
a plain function over the raw payload 2.0 event (no Powertools resolver, no request models, no
``requests``, no pydantic, no boto3), a stdlib JSON log line instead of Powertools Logger, and PyJWT / SSM
imported only on the code paths that need them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from planguard.errors import (
    JSON_HEADERS,
    ApiError,
    BadRequest,
    NotFound,
    to_http_response,
)
from planguard.ids import is_kinde_id
from planguard.json_logs import json_logger
from planguard.settings import get_settings
from planguard.usage_counter import ID_FIELD

from usage_count_api.routes import ROUTES

NO_STORE = {"Cache-Control": "no-store"}
BAD_KINDE_ID = "The user id must be 1-128 letters, digits, '_', ':', '.' or '-'."
BAD_ORG_CODE = "The organization code must be 1-128 letters, digits, '_', ':', '.' or '-'."
BAD_ID = {"kindeId": BAD_KINDE_ID, "orgCode": BAD_ORG_CODE}


logger = json_logger("planguard.usage_count")
_cold_start = True


def _ok(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {**JSON_HEADERS, **NO_STORE},
        "body": json.dumps(body, separators=(",", ":")),
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch on the template's route key; every failure is the error body, never a trace."""
    global _cold_start  # noqa: PLW0603 - one flag per container, like Powertools' cold_start
    started = time.perf_counter()
    request_context = event.get("requestContext") or {}
    route_key = event.get("routeKey") or request_context.get("routeKey")
    fields: dict[str, Any] = {
        "cold_start": _cold_start,
        "function_request_id": getattr(context, "aws_request_id", None),
        "correlation_id": request_context.get("requestId"),
        "route": route_key,
    }
    _cold_start = False
    try:
        route, kind = ROUTES.get(route_key, (None, None)) if isinstance(route_key, str) else (None, None)
        if route is None or kind is None or kind != get_settings().billing_customer:
            raise NotFound()
        field = ID_FIELD[kind]
        customer_id = (event.get("pathParameters") or {}).get(field)
        if not is_kinde_id(customer_id):  # organization codes follow the same rule
            raise BadRequest(BAD_ID[field])
        fields[field] = customer_id
        response = _ok(route(customer_id, kind, event, fields))
    except ApiError as error:
        fields.update(code=error.code, detail=getattr(error, "detail", None))
        response = to_http_response(error)
        response["headers"].update(NO_STORE)
    except Exception:
        logger.exception("unhandled error", extra={"fields": fields})
        response = to_http_response(ApiError())
        response["headers"].update(NO_STORE)
    fields.update(status=response["statusCode"], duration_ms=round((time.perf_counter() - started) * 1000, 1))
    logger.info("usage count", extra={"fields": fields})
    return response
