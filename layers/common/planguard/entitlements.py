"""Kinde Account API client, called with the signed-in user's own token.

What it asks: one feature's entitlement (cached per user), the current plan, and, when a refusal
might be stale, a fresh answer past the cache, at most once per user every few seconds. How each
call is made and bounded is ``planguard.kinde_http``'s.

The entitlements list (``GET {issuer}/account_api/v1/entitlements``) is read one page at a time:
each page carries ``data.plans[{key, subscribed_on}]`` and ``data.entitlements[...]``, paged by
``metadata.has_more`` / ``next_page_starting_after`` (docs/KINDE.md). Read leniently: a plan whose
``subscribed_on`` cannot be read keeps its key with no time (a hold then simply runs to its end),
and anything that is not the shape above is left out rather than guessed at.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import urllib3

from planguard.errors import EntitlementUnavailable
from planguard.kinde_http import MAX_ATTEMPTS, MAX_WAIT_SECONDS, bounded_get, http_pool, read_json
from planguard.request_parsing import epoch_seconds
from planguard.settings import get_settings

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_WAIT_SECONDS",
    "AccountNow",
    "Entitlement",
    "KindeAccountApi",
    "get_account_api",
]

logger = logging.getLogger(__name__)

UNLIMITED_SENTINEL = 2_147_483_647  # some tenants report "unlimited" as INT32_MAX
CACHE_MAX_USERS = 2048
# A user hammering "add" at their limit must not become one Kinde call per attempt.
REFRESH_INTERVAL_SECONDS = 5.0
MAX_LIST_PAGES = 20  # the entitlements list of one user; more is a list we cannot trust to end


# -- the entitlements list, one page at a time -----------------------------------------------------
Plan = tuple[str, float | None]  # (plan key, subscribed_on in epoch seconds or None)


@dataclass(frozen=True)
class ListPage:
    plans: list[Plan]
    entitlements: list[dict[str, Any]]
    next_cursor: str | None  # None: the last page


def subscribed_at(value: object) -> float | None:
    """``subscribed_on`` (ISO-8601) as epoch seconds; a time without a zone is UTC; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return epoch_seconds(value.strip())


def read_page(payload: dict[str, Any]) -> ListPage:
    """One page of the list: its plans, its entitlements, and where the next page starts.

    Raises ``ValueError`` when the page says there is more but not where: what is missing could be
    the very entitlement asked for, so the list cannot be read as complete.
    """
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    plans: list[Plan] = [
        (plan["key"], subscribed_at(plan.get("subscribed_on")))
        for plan in data.get("plans") or []
        if isinstance(plan, dict) and isinstance(plan.get("key"), str) and plan["key"]
    ]
    entitlements = [item for item in data.get("entitlements") or [] if isinstance(item, dict)]
    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("has_more") is not True:
        return ListPage(plans, entitlements, None)
    cursor = metadata.get("next_page_starting_after")
    if not isinstance(cursor, str) or not cursor:
        raise ValueError("the entitlements list has more pages but no next_page_starting_after")
    return ListPage(plans, entitlements, cursor)


def feature_entitlement(entitlements: list[dict[str, Any]], feature_key: str) -> dict[str, Any] | None:
    """The entitlement for ``feature_key`` (``feature_key``, or the older ``feature_code``)."""
    for entitlement in entitlements:
        if feature_key in (entitlement.get("feature_key"), entitlement.get("feature_code")):
            return entitlement
    return None


@dataclass(frozen=True)
class Entitlement:
    """A user's limit for one feature: ``limit=None`` is unlimited."""

    limit: int | None
    missing: bool = False
    source: Literal["kinde", "cache"] = "kinde"


@dataclass(frozen=True)
class AccountNow:
    """What Kinde shows of a user right now: one feature's entitlement and the user's plans with
    when each was applied (``subscribed_on``, epoch seconds, None when unusable)."""

    entitlement: Entitlement
    plans: tuple[Plan, ...]


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
        self.clock = clock  # time.monotonic-like: the cache and re-read budget (tests move it)
        self._sleep = sleep
        self._cache: OrderedDict[tuple[str, str], tuple[float, Entitlement]] = OrderedDict()
        self._refreshed: OrderedDict[str, float] = OrderedDict()  # per user: one budget for every re-read
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
        this user was already re-read in the last ``REFRESH_INTERVAL_SECONDS``."""
        if not self._may_refresh(user_id):
            return None
        return self._fetch_entitlement(user_id, token, feature_key, deadline)

    def account_refreshed(
        self,
        user_id: str,
        token: str,
        feature_key: str,
        deadline: float | None = None,
    ) -> AccountNow | None:
        """The entitlements list read fresh, every page (cache bypassed; the feature's entitlement
        found there is cached), or None when this user was already re-read in the last
        ``REFRESH_INTERVAL_SECONDS`` (the same budget as ``refreshed``). Raises
        ``EntitlementUnavailable`` when Kinde fails or the list cannot be read to its end."""
        if not self._may_refresh(user_id):
            return None
        plans: list[Plan] = []
        entitlements: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            url = f"{self.base_url}/account_api/v1/entitlements"
            if cursor is not None:
                url += f"?starting_after={quote(cursor, safe='')}"
            response = bounded_get(self._http, url, token, deadline, self._sleep)
            if response.status == 404:
                raise EntitlementUnavailable(detail="Account API has no entitlements list")
            try:
                page = read_page(read_json(response))
            except ValueError as error:
                raise EntitlementUnavailable(detail=str(error)) from None
            plans.extend(page.plans)
            entitlements.extend(page.entitlements)
            if page.next_cursor is None:
                break
            if page.next_cursor == cursor:
                raise EntitlementUnavailable(detail="the entitlements list repeats a page")
            cursor = page.next_cursor
        else:
            raise EntitlementUnavailable(detail=f"the entitlements list has over {MAX_LIST_PAGES} pages")
        result = self._entitlement_from(feature_entitlement(entitlements, feature_key), feature_key)
        self._store(user_id, feature_key, result)
        return AccountNow(result, tuple(plans))

    def _may_refresh(self, user_id: str) -> bool:
        """Spend this user's re-read budget: at most one per ``REFRESH_INTERVAL_SECONDS``."""
        now = self.clock()
        with self._lock:
            last = self._refreshed.get(user_id)
            if last is not None and now - last < REFRESH_INTERVAL_SECONDS:
                return False
            self._refreshed[user_id] = now
            self._refreshed.move_to_end(user_id)
            while len(self._refreshed) > CACHE_MAX_USERS:
                self._refreshed.popitem(last=False)
        return True

    def fetch_unstored(self, token: str, feature_key: str, deadline: float | None = None) -> Entitlement:
        """Kinde's answer for the token's user, not cached: for a token not verified yet, which
        must never fill the cache (``remember`` it once the token verified)."""
        url = f"{self.base_url}/account_api/v1/entitlement/{quote(feature_key, safe='')}"
        response = bounded_get(self._http, url, token, deadline, self._sleep)
        if response.status == 404:
            return self._missing()
        data = read_json(response).get("data")
        found = data.get("entitlement") if isinstance(data, dict) else None
        return self._entitlement_from(found, feature_key)

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
        payload = read_json(bounded_get(self._http, url, token, deadline, self._sleep))
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

    def _entitlement_from(self, entitlement: Any, feature_key: str) -> Entitlement:
        """One entitlement object as Kinde sends it (None or another feature's: missing)."""
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
            if hit is None or hit[0] <= self.clock():
                return None
            return Entitlement(limit=hit[1].limit, missing=hit[1].missing, source="cache")

    def _store(self, user_id: str, feature_key: str, result: Entitlement) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[(user_id, feature_key)] = (self.clock() + self.cache_seconds, result)
            self._cache.move_to_end((user_id, feature_key))
            while len(self._cache) > CACHE_MAX_USERS:
                self._cache.popitem(last=False)


@functools.cache
def get_account_api() -> KindeAccountApi:
    """One client per container: its session and per-user cache live across warm invocations."""
    settings = get_settings()
    return KindeAccountApi(
        settings.kinde_issuer_url,
        cache_seconds=settings.entitlement_cache_seconds,
        missing_unlimited=settings.missing_entitlement == "unlimited",
    )
