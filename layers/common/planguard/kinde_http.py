"""How Plan Guard calls Kinde over HTTP: the container's one connection pool, one bounded GET against
Kinde's Account API, and reading its JSON answer.

The pool serves every call to Kinde (the JWKS and the Account API). Both live on the issuer's host,
so a warm container reuses one kept-alive connection (one TLS handshake per container, not per
request). ``maxsize`` lets a cold start fetch the JWKS and an entitlement at the same time without a
connection being thrown away. No retries or redirects of its own: the callers own both.

Why not urllib3's ``Retry``: it honours ``Retry-After`` only on some statuses, ignores
``RateLimit-Reset``, may sleep for hours and knows nothing of the Lambda's remaining time. The
loop here is bounded on every axis: attempts, each wait, and the time the invocation has left.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import urllib3

from planguard.errors import EntitlementUnavailable, Unauthorized

logger = logging.getLogger("planguard.entitlements")

CONNECT_TIMEOUT_SECONDS = 1.5
READ_TIMEOUT_SECONDS = 3.0
MAX_ATTEMPTS = 3
MAX_WAIT_SECONDS = 2.0
SAFETY_MARGIN_SECONDS = 1.0
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Kinde refusing the caller's own token: the token is no good, a retry cannot help.
TOKEN_REFUSED_STATUSES = frozenset({401, 403})
DEFAULT_REMAINING_SECONDS = 30.0  # outside Lambda (scripts, tests): no deadline to respect
MAX_CONNECTIONS_PER_HOST = 4


@functools.cache
def http_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(maxsize=MAX_CONNECTIONS_PER_HOST, retries=False)


def read_json(response: urllib3.BaseHTTPResponse, api: str = "Account API") -> dict[str, Any]:
    """The answer's JSON object; anything else is Kinde answering what we cannot read."""
    try:
        payload = json.loads(response.data)
    except (ValueError, RecursionError):  # RecursionError: an absurdly deep document
        raise EntitlementUnavailable(detail=f"{api} answered with invalid JSON") from None
    if not isinstance(payload, dict):
        raise EntitlementUnavailable(detail=f"{api} answered with a non-object")
    return payload


def bounded_get(
    http: urllib3.PoolManager,
    url: str,
    token: str,
    deadline: float | None,
    sleep: Callable[[float], None],
) -> urllib3.BaseHTTPResponse:
    """GET with bounded retries; a final 2xx/404 is returned, 401/403 is the caller's token
    refused (``Unauthorized``), anything else raises ``EntitlementUnavailable``.

    ``deadline``: when the caller's invocation ends, on ``time.monotonic()``'s clock (None: no
    invocation, e.g. a script); no call or retry outlives it.
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    response = bounded_request(
        http, "GET", url, deadline, sleep, headers=headers, answered=TOKEN_REFUSED_STATUSES | {404}
    )
    if response.status in TOKEN_REFUSED_STATUSES:
        logger.info("Account API answered %d: the caller's token was refused", response.status)
        raise Unauthorized()
    return response


def bounded_request(
    http: urllib3.PoolManager,
    method: str,
    url: str,
    deadline: float | None,
    sleep: Callable[[float], None],
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    answered: frozenset[int] = frozenset({404}),
    api: str = "Account API",
) -> urllib3.BaseHTTPResponse:
    """One request with bounded retries (a POST too: callers send only what is safe to repeat);
    a final 2xx, or a status in ``answered``, is returned for the caller to read; a 429 or 5xx
    past the bounds, a timeout, or any other status raises ``EntitlementUnavailable``. ``api``
    names the API in the log lines and details (never the URL's secrets: there are none, nor
    the headers or the body)."""
    wait = 0.0
    response: urllib3.BaseHTTPResponse | None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        budget = _remaining(deadline) - SAFETY_MARGIN_SECONDS
        read_timeout = min(READ_TIMEOUT_SECONDS, budget - CONNECT_TIMEOUT_SECONDS)
        if read_timeout <= 0.1:
            raise EntitlementUnavailable(int(wait) or 1, detail="no time left to call Kinde")
        try:
            response = http.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=read_timeout),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            detail = f"{type(exc).__name__} calling the {api}"
            response = None
        else:
            status = response.status
            if status < 300 or status in answered:
                return response
            detail = f"{api} answered {status}"
            if status not in RETRYABLE_STATUSES:
                logger.warning(detail)
                raise EntitlementUnavailable(detail=detail)
        wait = _wait_before_retry(response, attempt)
        out_of_time = (
            deadline is not None
            and _remaining(deadline) - wait - SAFETY_MARGIN_SECONDS < CONNECT_TIMEOUT_SECONDS + 0.5
        )
        if attempt == MAX_ATTEMPTS or wait > MAX_WAIT_SECONDS or out_of_time:
            logger.warning("%s; giving up after %d attempt(s)", detail, attempt)
            raise EntitlementUnavailable(max(1, round(wait)), detail=detail)
        sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_before_retry(response: urllib3.BaseHTTPResponse | None, attempt: int) -> float:
    """Seconds to wait: the server's ``Retry-After``/``RateLimit-Reset``, else jittered backoff."""
    if response is not None:
        for header in ("Retry-After", "RateLimit-Reset"):
            value = (response.headers.get(header) or "").strip()
            if value.isascii() and value.isdigit():
                return float(value)
    return random.uniform(0.1, 0.25 * 2**attempt)  # noqa: S311 - jitter, not crypto


def _remaining(deadline: float | None) -> float:
    """Seconds until ``deadline`` (the real monotonic clock: the invocation's time is real time)."""
    return deadline - time.monotonic() if deadline is not None else DEFAULT_REMAINING_SECONDS
