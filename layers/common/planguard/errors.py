"""The error catalogue clients rely on, and its one mapping to an HTTP response.

Every failure a client can see is an ``ApiError``; handlers raise them and never build error
bodies themselves. ``to_http_response`` is the single place that turns one into
``{"error": {"code", "message", ...extra}}`` with its status and headers.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

JSON_HEADERS = {"Content-Type": "application/json"}

LIMIT_REACHED_MESSAGE = (
    "You\u2019ve reached your tracked accounts limit ({limit}). Remove one or upgrade your plan to add more."
)
ENTITLEMENT_ERROR_MESSAGE = "We could not verify your plan entitlements right now. Please try again."


class ApiError(Exception):
    """An error with a stable code that clients can act on."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Something went wrong."

    def __init__(
        self,
        message: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.extra = extra or {}
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class BadRequest(ApiError):
    status = 400
    code = "BAD_REQUEST"
    default_message = "The request is malformed."


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"
    default_message = "A valid access token is required."

    def __init__(self, message: str | None = None, *, token_given: bool = True) -> None:
        # RFC 6750 §3: no error code when the request carried no credentials at all.
        challenge = 'Bearer realm="plan-guard"' + (', error="invalid_token"' if token_given else "")
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class LimitReached(ApiError):
    status = 403
    code = "LIMIT_REACHED"

    def __init__(self, used: int, limit: int) -> None:
        super().__init__(
            LIMIT_REACHED_MESSAGE.format(limit=limit), extra={"usage": {"used": used, "limit": limit}}
        )


class NoEntitlement(ApiError):
    status = 403
    code = "NO_ENTITLEMENT"
    default_message = "Your plan does not include tracked accounts."


class NoOrganization(ApiError):
    """Organization mode: the token names no organization, or one that is never a customer
    (Kinde's default organization, where every unplaced user lands, or an excluded code)."""

    status = 403
    code = "NO_ORGANIZATION"
    default_message = "Sign in to an organization to use tracked accounts."


class Forbidden(ApiError):
    """Organization mode with a write permission configured: the member's token lacks it."""

    status = 403
    code = "FORBIDDEN"
    default_message = "You do not have permission to change this organization's tracked accounts."


class UserDeleted(ApiError):
    """Kinde deleted this user: their tokens, still valid for a while, are refused."""

    status = 403
    code = "USER_DELETED"
    default_message = "This user was deleted. Their tokens can no longer be used."


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"
    default_message = "Not found."


class DuplicateAccountNumber(ApiError):
    status = 409
    code = "DUPLICATE_ACCOUNT_NUMBER"
    default_message = "You already track an account with this account number."


class IdempotencyInProgress(ApiError):
    status = 409
    code = "IDEMPOTENCY_IN_PROGRESS"
    default_message = "A request with this Idempotency-Key is still being processed. Retry shortly."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class ValidationFailed(ApiError):
    status = 422
    code = "VALIDATION_ERROR"
    default_message = "The request is invalid."

    def __init__(self, fields: list[dict[str, str]], message: str | None = None) -> None:
        super().__init__(message, extra={"fields": fields})


class IdempotencyKeyReused(ApiError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was already used with a different request body."


class EntitlementUnavailable(ApiError):
    status = 503
    code = "ENTITLEMENT_ERROR"
    default_message = ENTITLEMENT_ERROR_MESSAGE

    def __init__(self, retry_after_seconds: int = 5, detail: str | None = None) -> None:
        super().__init__(headers={"Retry-After": str(max(1, retry_after_seconds))})
        self.detail = detail


class ServiceUnavailable(ApiError):
    """Storage throttled, contended or unreachable past our retries. Counts stay exact (every
    change is one transaction); only when DynamoDB's answer was lost may the change have applied,
    so a client's retry can meet 404 or DUPLICATE_ACCOUNT_NUMBER, never a wrong count."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is busy right now. Please try again."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def to_http_response(error: ApiError) -> dict[str, Any]:
    """The API Gateway (payload 2.0) response for an error: the one error-to-HTTP mapping."""
    return {
        "statusCode": error.status,
        "headers": {**JSON_HEADERS, **error.headers},
        "body": json.dumps(error.body(), ensure_ascii=False, separators=(",", ":")),
    }
