"""HTTP glue shared by the API functions built on Powertools' resolver.

One resolver factory registers the error mapping (every ``ApiError`` and every unexpected
exception become the error body clients rely on), so no handler formats an error itself. Request helpers
parse bodies and query strings into 4xx errors, never into 500s.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from planguard.auth import Principal, get_verifier
from planguard.errors import (
    ApiError,
    BadRequest,
    NotFound,
    ValidationFailed,
    to_http_response,
)
from planguard.request_parsing import body_bytes, is_json, media_type

_ASCII_DIGITS = re.compile(r"[0-9]{1,9}")  # str.isdigit() also takes "²", which int() refuses

if TYPE_CHECKING:
    from pydantic import BaseModel

logger = Logger()
# The layer's modules log with the standard library (the usage-count function has no Powertools
# Logger); in the resolver functions they get its JSON format and correlation id too.
copy_config_to_registered_loggers(source_logger=logger, include={"planguard"})


def error_response(error: ApiError) -> Response[str]:
    http = to_http_response(error)
    return Response(status_code=http["statusCode"], headers=http["headers"], body=http["body"])


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
    def _api_error(error: ApiError) -> Response[str]:
        if error.status >= 500:
            logger.warning(
                "request failed", extra={"code": error.code, "detail": getattr(error, "detail", None)}
            )
        return error_response(error)

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error_response(NotFound())

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(ApiError())

    return app


def invocation_deadline(app: APIGatewayHttpResolver) -> float | None:
    """When the current invocation ends, on ``time.monotonic()``'s clock; None outside Lambda.

    Read once per request and passed down as a value, so nothing below reaches back for the context.
    """
    context = getattr(app, "lambda_context", None)
    return time.monotonic() + context.get_remaining_time_in_millis() / 1000 if context else None


def authenticate(event: APIGatewayProxyEventV2) -> Principal:
    return get_verifier().authenticate(event.headers)


def raw_body(event: APIGatewayProxyEventV2) -> bytes:
    """The request body's bytes (API Gateway may base64 them): 400 when undecodable, 413 when large."""
    return body_bytes(event.body, bool(event.is_base64_encoded))


def json_body(event: APIGatewayProxyEventV2) -> Any:
    """The request body as JSON: 413 when too large, 400 when absent, not JSON or not UTF-8."""
    data = raw_body(event)
    media = media_type(event.headers)
    if media and not is_json(media):
        raise BadRequest("The request body must be JSON (Content-Type: application/json).")
    if not data.strip():
        raise BadRequest("A JSON request body is required.")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BadRequest("The request body is not valid JSON.") from None


def parse_model[M: BaseModel](model: type[M], payload: Any) -> M:
    """Validate a JSON payload; field errors become 422 ``VALIDATION_ERROR`` with ``fields``."""
    from pydantic import ValidationError  # noqa: PLC0415 - the model's import brought pydantic in

    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = [
            {
                "field": ".".join(str(part) for part in err["loc"]) or "body",
                "message": err["msg"].removeprefix("Value error, "),
            }
            for err in exc.errors()
        ]
        raise ValidationFailed(fields) from None


def query_int(params: Mapping[str, str] | None, name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None:
        return default
    if not _ASCII_DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"Query parameter '{name}' must be a whole number from {low} to {high}.")
    return int(raw)
