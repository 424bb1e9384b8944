"""The accounts use cases: where the caller's Kinde entitlement meets the store.

Every route of AccountsFunction is one call here. Which limit binds, why an add is refused and
when a hold ends early are the limit rule's (``planguard.limits``); what is decided here is when to
ask Kinde again, past the cache and at most once per user every few seconds: when a cached answer
refused an add that a fresher one might allow (an upgrade applied), and when an active hold refused
it (Kinde's entitlements list may show a plan applied since the hold was placed: the hold is then
replaced by the fresh limit, and the add decided against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from planguard.accounts_store import Account, AccountRepository, Page
from planguard.auth import Principal
from planguard.counter_item import Counter
from planguard.entitlements import AccountNow, Entitlement, KindeAccountApi
from planguard.errors import EntitlementUnavailable
from planguard.limits import refusal, refused_by_hold, refuses_without_writing, replacement, shown_limit
from planguard.prefetch import Prefetched
from planguard.settings import FEATURE_KEY
from planguard.together import join, start
from planguard.usage_counter import CounterConditionFailed

from accounts_api.idempotency import IdempotencyTable, request_data

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class NewAccount:
    name: str
    account_number: str


class AccountsService:
    """``deadline``: when the request's invocation ends (``time.monotonic()``; None outside
    Lambda), so a call to Kinde never outlives it."""

    def __init__(
        self,
        repository: AccountRepository,
        kinde: KindeAccountApi,
        idempotency: IdempotencyTable | None = None,
    ) -> None:
        self.repository = repository
        self.kinde = kinde
        self._idempotency = idempotency

    # -- reads -------------------------------------------------------------------------------
    def list(
        self,
        principal: Principal,
        limit: int,
        cursor: str | None,
        deadline: float | None,
        prefetched: Prefetched = None,
    ) -> dict[str, Any]:
        """The page, the counter and the entitlement are independent reads: all three at once."""
        counter = start(self.repository.counter, principal.user_id)
        entitlement = start(self._shown_entitlement, principal, deadline, prefetched)
        try:
            page: Page = self.repository.list_page(principal.user_id, limit, cursor)
        finally:
            join([counter, entitlement])
        return {
            "items": [account.to_json() for account in page.items],
            "usage": _usage(counter.result(), entitlement.result()),
            "nextCursor": page.next_cursor,
        }

    def get(self, principal: Principal, account_id: str) -> Account:
        return self.repository.get(principal.user_id, account_id)

    def usage(
        self, principal: Principal, deadline: float | None, prefetched: Prefetched = None
    ) -> dict[str, Any]:
        """``{used, limit, limitSource}``: the counter and the entitlement read at once; Kinde
        being down degrades the limit, never the answer."""
        entitlement = start(self._shown_entitlement, principal, deadline, prefetched)
        try:
            counter = self.repository.counter(principal.user_id)
        finally:
            join([entitlement])
        return _usage(counter, entitlement.result())

    # -- writes ------------------------------------------------------------------------------
    def add(
        self,
        principal: Principal,
        account: NewAccount,
        deadline: float | None,
        *,
        idempotency_key: str | None = None,
    ) -> Account:
        """Create within the plan limit; with an ``Idempotency-Key`` a retry answers the first result."""
        if idempotency_key is None or self._idempotency is None:
            return self._add(principal, account, deadline)
        request = request_data(principal.user_id, idempotency_key, account.name, account.account_number)
        stored = self._idempotency.run_once(
            self._add_request, request=request, deadline=deadline, principal=principal
        )
        return Account.from_json(stored)

    def update(
        self, principal: Principal, account_id: str, name: str | None, account_number: str | None
    ) -> Account:
        return self.repository.update(principal.user_id, account_id, name, account_number)

    def delete(self, principal: Principal, account_id: str) -> None:
        self.repository.delete(principal.user_id, account_id)

    # -- internals ---------------------------------------------------------------------------
    def _add_request(
        self, request: dict[str, Any], deadline: float | None, principal: Principal
    ) -> dict[str, Any]:
        """The add as the idempotency table runs it: its stored answer is the account's JSON."""
        body = request["body"]
        return self._add(principal, NewAccount(body["name"], body["accountNumber"]), deadline).to_json()

    def _add(self, principal: Principal, account: NewAccount, deadline: float | None) -> Account:
        entitlement = self._entitlement(principal, deadline)
        try:
            created = self._create(principal, account, entitlement)
        except CounterConditionFailed as refused:
            fresh = self._fresher(principal, entitlement, refused.counter, deadline)
            if fresh is None:
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise refusal(entitlement, refused.counter) from None
            try:
                created = self._create(principal, account, fresh)
            except CounterConditionFailed as again:
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise refusal(fresh, again.counter) from None
        metrics.add_metric(name="AccountsCreated", unit=MetricUnit.Count, value=1)
        return created

    def _fresher(
        self, principal: Principal, entitlement: Entitlement, counter: Counter, deadline: float | None
    ) -> Entitlement | None:
        """A fresher answer worth trying the refused add again with, or None: the refusal stands."""
        if refused_by_hold(entitlement, counter):
            return self._after_hold(principal, counter, deadline)
        if entitlement.source != "cache":
            return None
        # The cached answer may predate an upgrade: ask Kinde once before saying no.
        fresh = self._refreshed(principal, deadline)
        if fresh is None or (fresh.limit, fresh.missing) == (entitlement.limit, entitlement.missing):
            return None
        return fresh

    def _after_hold(
        self, principal: Principal, counter: Counter, deadline: float | None
    ) -> Entitlement | None:
        """An active hold refused the add: has Kinde applied a plan since it was placed? Then the
        hold is replaced by the fresh limit (one write, conditioned on the hold being the same) and
        the fresh entitlement is returned for the add to be tried again, whose own condition
        decides against whatever hold is there now. None: the refusal stands (no such plan, the
        re-read budget spent, or Kinde failing: a hold's refusal never becomes a 503)."""
        if counter.hold_from is None:
            return None
        now = self._account_now(principal, deadline)
        if now is None:
            return None
        new = replacement(counter.hold_from, now.plans, now.entitlement.limit, self.kinde.cache_seconds)
        if new is None:
            return None
        replaced = self.repository.replace_hold(principal.user_id, counter.hold_from, new)
        logger.info(
            "hold replaced: Kinde applied a plan after it was placed" if replaced else "hold moved meanwhile",
            extra={"plan": new.plan, "limit": new.limit, "hold_limit": counter.hold_limit},
        )
        return now.entitlement

    def _create(self, principal: Principal, account: NewAccount, entitlement: Entitlement) -> Account:
        if refuses_without_writing(entitlement):
            raise CounterConditionFailed(self.repository.counter(principal.user_id))
        return self.repository.create(
            principal.user_id, account.name, account.account_number, entitlement.limit
        )

    def _entitlement(self, principal: Principal, deadline: float | None) -> Entitlement:
        try:
            return self.kinde.entitlement(principal.user_id, principal.token, FEATURE_KEY, deadline)
        except EntitlementUnavailable as error:
            self._unavailable(error)

    @staticmethod
    def _unavailable(error: EntitlementUnavailable) -> NoReturn:
        metrics.add_metric(name="EntitlementErrors", unit=MetricUnit.Count, value=1)
        logger.warning("entitlement unavailable", extra={"detail": error.detail})
        raise error

    def _shown_entitlement(
        self, principal: Principal, deadline: float | None, prefetched: Prefetched
    ) -> Entitlement | None:
        """The entitlement a read shows; None when Kinde is unavailable."""
        try:
            if isinstance(prefetched, EntitlementUnavailable):
                self._unavailable(prefetched)
            if prefetched is not None:
                return prefetched
            return self._entitlement(principal, deadline)
        except EntitlementUnavailable:
            return None

    def _account_now(self, principal: Principal, deadline: float | None) -> AccountNow | None:
        """Kinde's entitlements list past the cache, within the same re-read budget; None when
        not asked, or when Kinde fails."""
        try:
            return self.kinde.account_refreshed(principal.user_id, principal.token, FEATURE_KEY, deadline)
        except EntitlementUnavailable as error:
            logger.warning("entitlements list re-read failed", extra={"detail": error.detail})
            return None

    def _refreshed(self, principal: Principal, deadline: float | None) -> Entitlement | None:
        """Kinde's answer past the cache, at most once per user per few seconds; None when not
        asked, or when Kinde fails (the cached refusal stands rather than becoming a 503)."""
        try:
            return self.kinde.refreshed(principal.user_id, principal.token, FEATURE_KEY, deadline)
        except EntitlementUnavailable as error:
            logger.warning("entitlement re-read failed", extra={"detail": error.detail})
            return None


def _usage(counter: Counter, entitlement: Entitlement | None) -> dict[str, Any]:
    if entitlement is None:
        return {"used": counter.count, "limit": None, "limitSource": "unavailable"}
    limit, source = shown_limit(entitlement.limit, entitlement.source, counter.hold_limit)
    return {"used": counter.count, "limit": limit, "limitSource": source}
