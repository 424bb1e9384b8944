"""Kinde Account API client, called with the signed-in user's own token.

Why not urllib3's ``Retry``: it honours ``Retry-After`` only on some statuses, ignores
``RateLimit-Reset``, may sleep for hours and knows nothing of the Lambda's remaining time. The
loop here is bounded on every axis: attempts, each wait, and the time the invocation has left.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import urllib3

from planguard.errors import EntitlementUnavailable, Unauthorized
from planguard.http_pool import http_pool
from planguard.settings import get_settings

logger = logging.getLogger(__name__)

UNLIMITED_SENTINEL = 2_147_483_647  # some tenants report "unlimited" as INT32_MAX
CONNECT_TIMEOUT_SECONDS = 1.5
READ_TIMEOUT_SECONDS = 3.0
MAX_ATTEMPTS = 3
MAX_WAIT_SECONDS = 2.0
SAFETY_MARGIN_SECONDS = 1.0
CACHE_MAX_USERS = 2048
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Kinde refusing the caller's own token: the token is no good, a retry cannot help.
TOKEN_REFUSED_STATUSES = frozenset({401, 403})
DEFAULT_REMAINING_SECONDS = 30.0  # outside Lambda (scripts, tests): no deadline to respect
# A user hammering "add" at their limit must not become one Kinde call per attempt.
REFRESH_INTERVAL_SECONDS = 5.0


@dataclass(frozen=True)
class Entitlement:
    """A user's limit for one feature: ``limit=None`` is unlimited."""

    limit: int | None
    missing: bool = False
    source: Literal["kinde", "cache"] = "kinde"


class KindeAccountApi:
    """Reads entitlements and plans; caches the limit per user for ``cache_seconds``."""

    def __init__(
        self,
        issuer_url: str,
        *,
        cache_seconds: int = 60,
        missing_unlimited: bool = False,
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = issuer_url.removesuffix("/")
        self.cache_seconds = cache_seconds
        self.missing_unlimited = missing_unlimited
        # urllib3 directly: botocore already loaded it, so Kinde calls cost no import of their own.
        # The container's one pool, shared with the JWKS fetch (same host, kept-alive connections).
        self._http = http or http_pool()
        self._clock = clock
        self._sleep = sleep
        self._cache: OrderedDict[tuple[str, str], tuple[float, Entitlement]] = OrderedDict()
        self._refreshed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    # -- entitlement -------------------------------------------------------------------------
    def entitlement(
        self,
        user_id: str,
        token: str,
        feature_key: str,
        deadline: float | None = None,
    ) -> Entitlement:
        """The user's limit for ``feature_key``; raises ``EntitlementUnavailable`` when Kinde fails.

        ``deadline``: when the caller's invocation ends, on ``time.monotonic()``'s clock (None: no
        invocation, e.g. a script); no call or retry outlives it.
        """
        cached = self._cached(user_id, feature_key)
        if cached is not None:
            return cached
        return self._fetch_entitlement(user_id, token, feature_key, deadline)

    def refreshed(
        self,
        user_id: str,
        token: str,
        feature_key: str,
        deadline: float | None = None,
    ) -> Entitlement | None:
        """A fresh answer from Kinde past the cache (a plan may have just changed), or None when
        this user's entitlement was already refreshed in the last ``REFRESH_INTERVAL_SECONDS``."""
        key, now = (user_id, feature_key), self._clock()
        with self._lock:
            last = self._refreshed.get(key)
            if last is not None and now - last < REFRESH_INTERVAL_SECONDS:
                return None
            self._refreshed[key] = now
            self._refreshed.move_to_end(key)
            while len(self._refreshed) > CACHE_MAX_USERS:
                self._refreshed.popitem(last=False)
        return self._fetch_entitlement(user_id, token, feature_key, deadline)

    def fetch_unstored(self, token: str, feature_key: str, deadline: float | None = None) -> Entitlement:
        """Kinde's answer for the token's user, not cached: for a token not verified yet, which
        must never fill the cache (``remember`` it once the token verified)."""
        url = f"{self.base_url}/account_api/v1/entitlement/{quote(feature_key, safe='')}"
        response = self._get(url, token, deadline)
        if response.status == 404:
            return self._missing()
        return self._parse_entitlement(self._json(response), feature_key)

    def remember(self, user_id: str, feature_key: str, result: Entitlement) -> None:
        """Cache an answer of ``fetch_unstored`` once its token verified as ``user_id``'s."""
        self._store(user_id, feature_key, result)

    def _fetch_entitlement(
        self, user_id: str, token: str, feature_key: str, deadline: float | None
    ) -> Entitlement:
        result = self.fetch_unstored(token, feature_key, deadline)
        self._store(user_id, feature_key, result)
        return result

    def current_plan(self, token: str, deadline: float | None = None) -> str | None:
        """The key of the user's first plan (``data.plans[0].key``), or None when there is none."""
        url = f"{self.base_url}/account_api/v1/entitlements?page_size=1"
        payload = self._json(self._get(url, token, deadline))
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        plans = data.get("plans") if isinstance(data, dict) else None
        if isinstance(plans, list):
            for plan in plans:
                if isinstance(plan, dict) and isinstance(plan.get("key"), str) and plan["key"]:
                    return str(plan["key"])
        return None

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._refreshed.clear()

    # -- internals ---------------------------------------------------------------------------
    def _missing(self) -> Entitlement:
        return Entitlement(limit=None if self.missing_unlimited else 0, missing=True)

    def _parse_entitlement(self, payload: dict[str, Any], feature_key: str) -> Entitlement:
        data = payload.get("data")
        entitlement = data.get("entitlement") if isinstance(data, dict) else None
        if not isinstance(entitlement, dict) or entitlement.get("feature_key") not in (None, feature_key):
            return self._missing()
        raw = entitlement.get("entitlement_limit_max")
        if raw is None:
            return Entitlement(limit=None)
        # Python's json reads NaN, Infinity and 1e400 (inf); int() of those raises, so check first.
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or (isinstance(raw, float) and not math.isfinite(raw))
            or raw < 0
            or raw != int(raw)
        ):
            raise EntitlementUnavailable(detail=f"unexpected entitlement_limit_max {raw!r:.40}")
        limit = int(raw)
        return Entitlement(limit=None if limit >= UNLIMITED_SENTINEL else limit)

    def _cached(self, user_id: str, feature_key: str) -> Entitlement | None:
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            hit = self._cache.get((user_id, feature_key))
            if hit is None or hit[0] <= self._clock():
                return None
            return Entitlement(limit=hit[1].limit, missing=hit[1].missing, source="cache")

    def _store(self, user_id: str, feature_key: str, result: Entitlement) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[(user_id, feature_key)] = (self._clock() + self.cache_seconds, result)
            self._cache.move_to_end((user_id, feature_key))
            while len(self._cache) > CACHE_MAX_USERS:
                self._cache.popitem(last=False)

    @staticmethod
    def _json(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
        try:
            payload = json.loads(response.data)
        except (ValueError, RecursionError):  # RecursionError: an absurdly deep document
            raise EntitlementUnavailable(detail="Account API answered with invalid JSON") from None
        if not isinstance(payload, dict):
            raise EntitlementUnavailable(detail="Account API answered with a non-object")
        return payload

    def _get(self, url: str, token: str, deadline: float | None) -> urllib3.BaseHTTPResponse:
        """GET with bounded retries; a final 2xx/404 is returned, 401/403 is the caller's token
        refused (``Unauthorized``), anything else raises ``EntitlementUnavailable``."""
        wait = 0.0
        response: urllib3.BaseHTTPResponse | None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            budget = _remaining(deadline) - SAFETY_MARGIN_SECONDS
            read_timeout = min(READ_TIMEOUT_SECONDS, budget - CONNECT_TIMEOUT_SECONDS)
            if read_timeout <= 0.1:
                raise EntitlementUnavailable(int(wait) or 1, detail="no time left to call Kinde")
            try:
                response = self._http.request(
                    "GET",
                    url,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=read_timeout),
                    retries=False,
                    redirect=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                detail = f"{type(exc).__name__} calling the Account API"
                response = None
            else:
                status = response.status
                if status < 300 or status == 404:
                    return response
                detail = f"Account API answered {status}"
                if status in TOKEN_REFUSED_STATUSES:
                    logger.info("%s: the caller's token was refused", detail)
                    raise Unauthorized()
                if status not in RETRYABLE_STATUSES:
                    logger.warning(detail)
                    raise EntitlementUnavailable(detail=detail)
            wait = self._wait_before_retry(response, attempt)
            out_of_time = (
                deadline is not None
                and _remaining(deadline) - wait - SAFETY_MARGIN_SECONDS < CONNECT_TIMEOUT_SECONDS + 0.5
            )
            if attempt == MAX_ATTEMPTS or wait > MAX_WAIT_SECONDS or out_of_time:
                logger.warning("%s; giving up after %d attempt(s)", detail, attempt)
                raise EntitlementUnavailable(max(1, round(wait)), detail=detail)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
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


@functools.cache
def get_account_api() -> KindeAccountApi:
    """One client per container: its session and per-user cache live across warm invocations."""
    settings = get_settings()
    return KindeAccountApi(
        settings.kinde_issuer_url,
        cache_seconds=settings.entitlement_cache_seconds,
        missing_unlimited=settings.missing_entitlement == "unlimited",
    )
