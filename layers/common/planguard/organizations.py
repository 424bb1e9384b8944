"""Organization mode: whose accounts a request acts for, and the organization's limit.

Kinde bills organizations in B2B: every member signed in to one (the access token's ``org_code``)
shares its accounts, count, hold and limit. Two rules guard who may act:

- a token with no ``org_code``, or naming Kinde's default organization (``is_default``: Kinde puts
  every user it cannot place there, so unrelated users would share one list) or a code in
  ``EXCLUDED_ORG_CODES``, is 403 ``NO_ORGANIZATION``;
- with ``ACCOUNTS_WRITE_PERMISSION`` set, adding, editing and deleting need that permission in the
  token's ``permissions`` (the member's role permissions in that organization); reading needs
  membership only.

The limit comes from the Management API (the Account API does not answer an organization's plan
entitlements): the organization's billing customer id, then that customer's entitlement for
``KINDE_FEATURE_CODE`` with its plans. ``OrganizationEntitlements`` is the add decision's
entitlement source for organizations, with the same rules as the Account API client's for users:
the limit cached per organization for ``ENTITLEMENT_CACHE_SECONDS``, at most one re-read past the
cache per organization every few seconds, and Kinde failing raising ``EntitlementUnavailable``.
A found billing customer id is kept for the container's life (it never changes); a missing one is
not kept, so an organization that subscribes later is seen at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from planguard.entitlements import CACHE_MAX_USERS, REFRESH_INTERVAL_SECONDS, AccountNow, Entitlement, Plan
from planguard.errors import EntitlementUnavailable, Forbidden, NoOrganization
from planguard.ids import is_kinde_id
from planguard.kinde_management import KindeRejected, get_management_api
from planguard.settings import Settings, get_settings


# -- what is read of the Management API (planguard.kinde_management's client answers these) --------
class KindeOrganization(Protocol):
    @property
    def is_default(self) -> bool: ...

    @property
    def billing_customer_id(self) -> str | None: ...


class KindePlan(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def subscribed_on(self) -> datetime | None: ...


class KindeCustomerEntitlement(Protocol):
    @property
    def limit(self) -> int | None: ...

    @property
    def missing(self) -> bool: ...

    @property
    def plans(self) -> Sequence[KindePlan]: ...


class ManagementReads(Protocol):
    """The two reads: faults raise ``EntitlementUnavailable`` (Kinde down, slow, unreadable)."""

    def organization(self, code: str, deadline: float | None) -> KindeOrganization | None: ...

    def customer_entitlement(
        self, customer_id: str, feature_code: str, deadline: float | None
    ) -> KindeCustomerEntitlement: ...


@dataclass(frozen=True)
class OrganizationInfo:
    """What Plan Guard keeps of an organization: whether it is Kinde's default one, and its
    billing customer id (None: not a billing customer, yet)."""

    is_default: bool
    billing_customer_id: str | None


@dataclass(frozen=True)
class Member:
    """A request in organization mode: the member (``user_id``, their ``token``) acting for the
    organization ``org_code``, and whether they may add, edit and delete its accounts."""

    org_code: str
    user_id: str
    token: str
    can_write: bool

    def require_write(self) -> None:
        if not self.can_write:
            raise Forbidden()


class OrganizationEntitlements:
    """The organizations' limits from the Management API (an ``add_decision.EntitlementSource``:
    its ``user_id`` is the organization code, and the token is not used)."""

    def __init__(
        self,
        api: ManagementReads,
        *,
        feature_code: str,
        cache_seconds: int = 60,
        missing_unlimited: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.feature_code = feature_code
        self.cache_seconds = cache_seconds
        self.missing_unlimited = missing_unlimited
        self.clock = clock
        self._organizations: OrderedDict[str, OrganizationInfo] = OrderedDict()
        self._cache: OrderedDict[str, tuple[float, AccountNow]] = OrderedDict()
        self._refreshed: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    # -- the organization ------------------------------------------------------------------------
    def organization(
        self, code: str, deadline: float | None, *, fresh: bool = False
    ) -> OrganizationInfo | None:
        """Kinde's answer for ``code`` (None: Kinde has no such organization), kept for the
        container's life: an organization never stops being the default one, and its billing
        customer id never changes. ``fresh`` asks again when it named no billing customer yet (an
        organization that subscribes later is seen at its next entitlement read)."""
        with self._lock:
            known = self._organizations.get(code)
        if known is not None and (known.billing_customer_id is not None or known.is_default or not fresh):
            return known
        try:
            found = self.api.organization(code, deadline)
        except KindeRejected as refused:  # e.g. the application lacks read:organizations
            raise EntitlementUnavailable(detail=str(refused)) from None
        if found is None:
            return None
        info = OrganizationInfo(found.is_default, found.billing_customer_id)
        with self._lock:
            self._organizations[code] = info
            self._organizations.move_to_end(code)
            while len(self._organizations) > CACHE_MAX_USERS:
                self._organizations.popitem(last=False)
        return info

    # -- the entitlement source ------------------------------------------------------------------
    def entitlement(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> Entitlement:
        """The organization's limit; raises ``EntitlementUnavailable`` when Kinde fails."""
        return self.standing(user_id, deadline).entitlement

    def standing(self, code: str, deadline: float | None = None) -> AccountNow:
        """The organization's entitlement and plans: as cached (``source`` "cache"), else read
        and cached. Raises ``EntitlementUnavailable`` when Kinde fails."""
        return self._cached(code) or self._read(code, deadline)

    def refreshed(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> Entitlement | None:
        """Kinde's answer past the cache, or None when this organization was re-read in the last
        ``REFRESH_INTERVAL_SECONDS``."""
        if not self._may_refresh(user_id):
            return None
        return self._read(user_id, deadline).entitlement

    def account_refreshed(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> AccountNow | None:
        """The entitlement and the plans with their ``subscribed_on``, past the cache, within the
        same re-read budget as ``refreshed``."""
        if not self._may_refresh(user_id):
            return None
        return self._read(user_id, deadline)

    def current_plan(self, code: str, deadline: float | None = None) -> str | None:
        """The organization's first plan, or None (no billing customer, or no plan)."""
        plans = self.standing(code, deadline).plans
        return plans[0][0] if plans else None

    def clear_cache(self) -> None:
        with self._lock:
            self._organizations.clear()
            self._cache.clear()
            self._refreshed.clear()

    # -- internals -------------------------------------------------------------------------------
    def _read(self, code: str, deadline: float | None) -> AccountNow:
        info = self.organization(code, deadline, fresh=True)
        if info is None or info.billing_customer_id is None:
            result = AccountNow(self._missing(), ())
        else:
            try:
                answer = self.api.customer_entitlement(info.billing_customer_id, self.feature_code, deadline)
            except KindeRejected as refused:  # e.g. the application lacks read:billing_entitlements
                raise EntitlementUnavailable(detail=str(refused)) from None
            result = AccountNow(self._entitlement(answer), _plans(answer))
        self._store(code, result)
        return result

    def _entitlement(self, answer: KindeCustomerEntitlement) -> Entitlement:
        return self._missing() if answer.missing else Entitlement(limit=answer.limit)

    def _missing(self) -> Entitlement:
        return Entitlement(limit=None if self.missing_unlimited else 0, missing=True)

    def _may_refresh(self, code: str) -> bool:
        now = self.clock()
        with self._lock:
            last = self._refreshed.get(code)
            if last is not None and now - last < REFRESH_INTERVAL_SECONDS:
                return False
            self._refreshed[code] = now
            self._refreshed.move_to_end(code)
            while len(self._refreshed) > CACHE_MAX_USERS:
                self._refreshed.popitem(last=False)
        return True

    def _cached(self, code: str) -> AccountNow | None:
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            hit = self._cache.get(code)
            if hit is None or hit[0] <= self.clock():
                return None
            found = hit[1].entitlement
            return AccountNow(Entitlement(found.limit, found.missing, source="cache"), hit[1].plans)

    def _store(self, code: str, result: AccountNow) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[code] = (self.clock() + self.cache_seconds, result)
            self._cache.move_to_end(code)
            while len(self._cache) > CACHE_MAX_USERS:
                self._cache.popitem(last=False)


def _plans(answer: KindeCustomerEntitlement) -> tuple[Plan, ...]:
    return tuple(
        (plan.code, plan.subscribed_on.timestamp() if plan.subscribed_on is not None else None)
        for plan in answer.plans
    )


def member(
    user_id: str,
    token: str,
    claims: Mapping[str, Any],
    deadline: float | None,
    *,
    settings: Settings | None = None,
    source: OrganizationEntitlements | None = None,
) -> Member:
    """Who a request in organization mode acts for; 403 ``NO_ORGANIZATION`` when the token names
    no organization that may be a customer."""
    settings = settings or get_settings()
    code = claims.get("org_code")
    if not is_kinde_id(code) or code in settings.excluded_org_codes:
        raise NoOrganization()
    info = (source or get_organization_entitlements()).organization(code, deadline)
    if info is None or info.is_default:
        raise NoOrganization()
    needed = settings.accounts_write_permission
    permissions = claims.get("permissions")
    granted = isinstance(permissions, list) and needed in permissions
    return Member(code, user_id, token, can_write=needed is None or granted)


@functools.cache
def get_organization_entitlements() -> OrganizationEntitlements:
    """One per container: the organizations and limits it caches live across warm invocations."""
    settings = get_settings()
    api = get_management_api()
    if api is None:  # the settings refuse organization mode without an M2M client
        raise EntitlementUnavailable(detail="organization mode needs KINDE_M2M_CLIENT_ID")
    return OrganizationEntitlements(
        api,
        feature_code=settings.kinde_feature_code,
        cache_seconds=settings.entitlement_cache_seconds,
        missing_unlimited=settings.missing_entitlement == "unlimited",
    )
