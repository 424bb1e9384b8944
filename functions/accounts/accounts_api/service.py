"""The accounts use cases: where the caller's Kinde entitlement meets the store.

Every route of AccountsFunction is one call here. An add is decided by the layer in one call
(``planguard.add_decision.decide_add``: the entitlement, the write, the re-read, the hold's
replacement, the refusal); here its outcome becomes metrics and the answer. The reads (list,
``/usage``) show the counter against the entitlement (``planguard.limit_rule.shown_limit``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from planguard.accounts_store import Account, AccountRepository, Page, get_repository
from planguard.add_decision import Added, Customer, Refused, Unavailable, decide_add
from planguard.auth import Principal
from planguard.entitlements import Entitlement, KindeAccountApi, get_account_api
from planguard.errors import EntitlementUnavailable, UserDeleted
from planguard.limit_rule import excess, shown_limit
from planguard.parallel_reads import join, start
from planguard.settings import FEATURE_KEY, get_settings
from planguard.usage_counter import Counter

from accounts_api.cold_overlap import Prefetched
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
        counter = start(self.repository.usage.shown, principal.user_id, principal.issued_at)
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
            counter = self.repository.usage.shown(principal.user_id, principal.issued_at)
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
        prefetched: Prefetched = None,
    ) -> Account:
        """Create within the plan limit; with an ``Idempotency-Key`` a retry answers the first result.
        ``prefetched``: the entitlement as a cold container read it beside the key-set fetch."""
        if idempotency_key is None or self._idempotency is None:
            return self._add(principal, account, deadline, prefetched)
        request = request_data(principal.user_id, idempotency_key, account.name, account.account_number)
        stored = self._idempotency.run_once(
            self._add_request, request=request, deadline=deadline, principal=principal, prefetched=prefetched
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
        self, request: dict[str, Any], deadline: float | None, principal: Principal, prefetched: Prefetched
    ) -> dict[str, Any]:
        """The add as the idempotency table runs it: its stored answer is the account's JSON."""
        body = request["body"]
        new = NewAccount(body["name"], body["accountNumber"])
        return self._add(principal, new, deadline, prefetched).to_json()

    def _add(
        self, principal: Principal, account: NewAccount, deadline: float | None, prefetched: Prefetched
    ) -> Account:
        """The add, decided by the layer in one call; here only its outcome becomes metrics."""
        customer = Customer(principal.user_id, principal.token, principal.issued_at)
        outcome = decide_add(
            self.repository,
            self.kinde,
            customer,
            account.name,
            account.account_number,
            feature_key=FEATURE_KEY,
            deadline=deadline,
            known=prefetched,
        )
        match outcome:
            case Added(account=created):
                metrics.add_metric(name="AccountsCreated", unit=MetricUnit.Count, value=1)
                return created
            case Refused(error=error):
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise error
            case Unavailable(error=unavailable):
                self._unavailable(unavailable)

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


def _usage(counter: Counter, entitlement: Entitlement | None) -> dict[str, Any]:
    """What a read shows of the usage; over the limit (a plan applied after the user added more)
    it also says how many to remove (``excess``). A user Kinde deleted sees nothing."""
    if counter.deleted:
        raise UserDeleted()
    if entitlement is None:
        return {"used": counter.count, "limit": None, "limitSource": "unavailable"}
    limit, source = shown_limit(entitlement.limit, entitlement.source, counter.hold_limit)
    over = excess(counter.count, limit)
    return {
        "used": counter.count,
        "limit": limit,
        "limitSource": source,
        **({"excess": over} if over else {}),
    }


@functools.cache
def service() -> AccountsService:
    """One per container: its clients, caches and idempotency table live across warm requests."""
    settings = get_settings()
    table = settings.idempotency_table_name
    idempotency = IdempotencyTable(table, settings.dynamodb_endpoint_url) if table else None
    return AccountsService(get_repository(), get_account_api(), idempotency)
