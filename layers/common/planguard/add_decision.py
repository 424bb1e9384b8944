"""How an add is decided, in one place: the entitlement, the counter's conditional write, the one
fresh re-read, the hold's replacement, and the refusal with its usage.

1. The customer's entitlement: one read (cached per customer), or the one the request already made
   (a cold container reads it beside the key-set fetch).
2. The account's transaction: its counter update carries the limit rule as a condition (the
   entitlement's limit and any active hold, ``planguard.usage_counter.add_condition``). A zero
   limit refuses before any write.
3. Refused: when the hold binds, Kinde's entitlements list is read past the cache; a plan Kinde
   applied since the hold was placed replaces the hold (one write conditioned on it being the same
   hold) and the add is tried once more against the fresh limit. When a cached entitlement refused,
   Kinde is asked once, past the cache, for a fresher one that might allow it (an upgrade just
   applied). Both re-reads share one budget per customer (``REFRESH_INTERVAL_SECONDS``), and a
   failing re-read leaves the refusal standing: it never turns into a 503.
4. Still refused: the refusal and its usage (``planguard.limit_rule.refusal``).

Whose add it is, where their entitlement comes from and where their accounts are stored are
parameters (``Customer``, ``EntitlementSource``, ``AccountStore``): the caller picks them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from planguard.errors import ApiError, EntitlementUnavailable
from planguard.limit_rule import late_step, refusal, refused_by_hold, refuses_without_writing, replacement
from planguard.usage_counter import Counter, CounterConditionFailed, UsageCounter

if TYPE_CHECKING:
    from planguard.account import Account
    from planguard.entitlements import AccountNow, Entitlement

logger = logging.getLogger(__name__)


class EntitlementSource(Protocol):
    """Where a customer's limit comes from (``planguard.entitlements.KindeAccountApi``: Kinde's
    Account API, asked with the customer's own token)."""

    @property
    def cache_seconds(self) -> int: ...

    def entitlement(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> Entitlement: ...

    def refreshed(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> Entitlement | None: ...

    def account_refreshed(
        self, user_id: str, token: str, feature_key: str, deadline: float | None = None
    ) -> AccountNow | None: ...


class AccountStore(Protocol):
    """Where the customer's accounts are written (``planguard.accounts_store.AccountRepository``)."""

    @property
    def usage(self) -> UsageCounter: ...

    def create(
        self, user_id: str, name: str, account_number: str, limit: int | None, *, issued_at: int | None = None
    ) -> Account: ...


@dataclass(frozen=True)
class Customer:
    """Whose limit an add counts against: ``id`` keys the store's partition and the entitlement
    source's cache (the Kinde user id); ``token`` is the credential the source is asked with;
    ``issued_at`` its ``iat`` (a token issued before Kinde deleted the customer is refused; None:
    not a token's add)."""

    id: str
    token: str
    issued_at: int | None = None


@dataclass(frozen=True)
class Added:
    account: Account


@dataclass(frozen=True)
class Refused:
    """Over a limit or without the entitlement: ``LimitReached`` (with its usage) or ``NoEntitlement``."""

    error: ApiError


@dataclass(frozen=True)
class Unavailable:
    """The entitlement could not be read: the add is not decided (503)."""

    error: EntitlementUnavailable


type AddOutcome = Added | Refused | Unavailable


def decide_add(
    store: AccountStore,
    source: EntitlementSource,
    customer: Customer,
    name: str,
    account_number: str,
    *,
    feature_key: str,
    deadline: float | None,
    known: Entitlement | EntitlementUnavailable | None = None,
) -> AddOutcome:
    """Create the account within the customer's limit, or say why not.

    ``known``: what this request already read of the entitlement (None: read it here).
    ``deadline``: when the invocation ends (``time.monotonic()``; None outside Lambda), so a call
    to Kinde never outlives it. Anything but a refusal (a duplicate number, a storage fault, Kinde
    refusing the token) is raised as it was.
    """
    try:
        entitlement = (
            known
            if known is not None
            else source.entitlement(customer.id, customer.token, feature_key, deadline)
        )
    except EntitlementUnavailable as error:
        return Unavailable(error)
    if isinstance(entitlement, EntitlementUnavailable):
        return Unavailable(entitlement)
    decision = _Decision(store, source, customer, feature_key, deadline)
    try:
        return Added(decision.create(name, account_number, entitlement))
    except CounterConditionFailed as refused:
        fresh = decision.fresher(entitlement, refused.counter)
        if fresh is None:
            return Refused(refusal(entitlement, refused.counter))
        try:
            return Added(decision.create(name, account_number, fresh))
        except CounterConditionFailed as again:
            return Refused(refusal(fresh, again.counter))


@dataclass(frozen=True)
class _Decision:
    store: AccountStore
    source: EntitlementSource
    customer: Customer
    feature_key: str
    deadline: float | None

    def create(self, name: str, account_number: str, entitlement: Entitlement) -> Account:
        if refuses_without_writing(entitlement):
            raise CounterConditionFailed(self.store.usage.counter(self.customer.id))
        return self.store.create(
            self.customer.id, name, account_number, entitlement.limit, issued_at=self.customer.issued_at
        )

    def fresher(self, entitlement: Entitlement, counter: Counter) -> Entitlement | None:
        """A fresher answer worth trying the refused add again with, or None: the refusal stands."""
        if refused_by_hold(entitlement, counter):
            return self.after_hold(counter)
        if entitlement.source != "cache":
            return None
        # The cached answer may predate an upgrade: ask Kinde once before saying no.
        fresh = self.refreshed()
        if fresh is None or (fresh.limit, fresh.missing) == (entitlement.limit, entitlement.missing):
            return None
        return fresh

    def after_hold(self, counter: Counter) -> Entitlement | None:
        """A hold refused the add: has Kinde applied a plan since it was placed? Then the hold is
        replaced by the fresh limit (one write, conditioned on the hold being the same) and the
        fresh entitlement is returned for the add to be tried again, whose own condition decides
        against whatever hold is there now. A hold past its end that Kinde has not replaced ends
        when Kinde's limit is at or below it (the change applied), and is extended while Kinde
        still shows a higher one (a downgrade applied late). None: the refusal stands (no such
        plan, the re-read budget spent, or Kinde failing: a hold's refusal never becomes a 503)."""
        if counter.hold_from is None:
            return None
        now = self.account_now()
        if now is None:
            return None
        new = replacement(counter.hold_from, now.plans, now.entitlement.limit, self.source.cache_seconds)
        if new is None:
            return self.after_lapse(counter, counter.hold_from, now.entitlement)
        replaced = self.store.usage.replace_hold(self.customer.id, counter.hold_from, new)
        logger.info(
            "hold replaced: Kinde applied a plan after it was placed" if replaced else "hold moved meanwhile",
            extra={"plan": new.plan, "limit": new.limit, "hold_limit": counter.hold_limit},
        )
        return now.entitlement

    def after_lapse(self, counter: Counter, hold_from: int, fresh: Entitlement) -> Entitlement | None:
        """Past its end, with no plan applied since: the hold ends if Kinde's own limit is at or
        below it (the fresh entitlement is returned for the add to be tried again), else it is
        extended and the refusal stands. A hold not yet at its end simply stands."""
        if not counter.hold_lapsed or counter.hold_limit is None:
            return None
        usage = self.store.usage
        if late_step(counter.hold_limit, fresh.limit) == "extend":
            extended = usage.extend_lapsed_hold(self.customer.id, hold_from)
            logger.info(
                "hold extended past its end: Kinde still shows a higher limit"
                if extended
                else "hold moved meanwhile",
                extra={"limit": fresh.limit, "hold_limit": counter.hold_limit},
            )
            return None
        ended = usage.end_hold(self.customer.id, hold_from)
        logger.info(
            "hold ended: Kinde shows the change applied" if ended else "hold moved meanwhile",
            extra={"limit": fresh.limit, "hold_limit": counter.hold_limit},
        )
        return fresh

    def account_now(self) -> AccountNow | None:
        """Kinde's entitlements list past the cache, within the re-read budget; None when not
        asked, or when Kinde fails."""
        return self.reread(self.source.account_refreshed, "entitlements list re-read failed")

    def refreshed(self) -> Entitlement | None:
        """Kinde's answer past the cache, at most once per customer per few seconds; None when not
        asked, or when Kinde fails (the cached refusal stands rather than becoming a 503)."""
        return self.reread(self.source.refreshed, "entitlement re-read failed")

    def reread[T](self, read: Callable[[str, str, str, float | None], T | None], failed: str) -> T | None:
        """One re-read past the cache; a failure is logged as ``failed`` and is no answer."""
        try:
            return read(self.customer.id, self.customer.token, self.feature_key, self.deadline)
        except EntitlementUnavailable as error:
            logger.warning(failed, extra={"detail": error.detail})
            return None
