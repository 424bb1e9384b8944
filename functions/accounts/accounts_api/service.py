"""The accounts use cases: where the caller's Kinde entitlement meets the repository.

Every route of AccountsFunction is one call here. The limit decision (missing entitlement, a
zero limit, unlimited, refused by the limit or by a downgrade hold, and the one fresh re-read of
an entitlement that may be stale) lives in this module and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.accounts_store import Account, AccountRepository, Page
from planguard.auth import Principal
from planguard.entitlements import Entitlement, KindeAccountApi
from planguard.errors import (
    ApiError,
    EntitlementUnavailable,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    LimitReached,
    NoEntitlement,
    ServiceUnavailable,
)
from planguard.settings import FEATURE_KEY
from planguard.usage_counter import Counter, CounterConditionFailed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

logger = Logger()
metrics = Metrics()

RemainingSeconds = Callable[[], float]
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


def _idempotency_key_prefix() -> str:
    """Powertools names records after the decorated function's module and qualified name. The
    first records were written by a function nested in the handler; this prefix keeps their keys
    valid wherever the decorated function lives now (a replay after a deploy still matches)."""
    function_name = os.getenv("AWS_LAMBDA_FUNCTION_NAME", "test-func")
    return f"{function_name}.accounts_api.handler._idempotent_create.<locals>.create"


@dataclass(frozen=True)
class NewAccount:
    name: str
    account_number: str


def hold_binds(entitlement: Entitlement, counter: Counter) -> bool:
    """An active downgrade hold is what refuses: it is full, and no larger than the entitlement."""
    hold = counter.hold_limit
    return (
        hold is not None
        and counter.count >= hold
        and (entitlement.limit is None or hold <= entitlement.limit)
    )


def refusal(entitlement: Entitlement, counter: Counter) -> ApiError:
    """Why an add was refused: the hold when it binds (the smaller limit), else the entitlement."""
    if hold_binds(entitlement, counter) and counter.hold_limit is not None:
        return LimitReached(used=counter.count, limit=counter.hold_limit)
    if entitlement.missing:
        return NoEntitlement()
    return LimitReached(used=counter.count, limit=entitlement.limit or 0)


class AccountsService:
    def __init__(
        self,
        repository: AccountRepository,
        kinde: KindeAccountApi,
        idempotency: Callable[[], DynamoDBPersistenceLayer] | None = None,
    ) -> None:
        """``idempotency`` builds the store on the first request with an ``Idempotency-Key``:
        Powertools' idempotency imports boto3, which a request without one never needs."""
        self.repository = repository
        self.kinde = kinde
        self._idempotency = idempotency
        self._add_once: Callable[..., dict[str, Any]] | None = None

    def _idempotent_add(self) -> Callable[..., dict[str, Any]]:
        """Powertools idempotency around the add, keyed by (user, Idempotency-Key), body validated."""
        if self._add_once is None:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
                IdempotencyConfig,
                idempotent_function,
            )

            assert self._idempotency is not None
            self._idempotency_config = IdempotencyConfig(
                event_key_jmespath="[user, key]",
                payload_validation_jmespath="body",
                expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            )
            self._add_once = idempotent_function(
                data_keyword_argument="request",
                config=self._idempotency_config,
                persistence_store=self._idempotency(),
                key_prefix=_idempotency_key_prefix(),
            )(self._add_request)
        return self._add_once

    # -- reads -------------------------------------------------------------------------------
    def list(
        self, principal: Principal, limit: int, cursor: str | None, remaining: RemainingSeconds
    ) -> dict[str, Any]:
        page: Page = self.repository.list_page(principal.user_id, limit, cursor)
        return {
            "items": [account.to_json() for account in page.items],
            "usage": self.usage(principal, remaining),
            "nextCursor": page.next_cursor,
        }

    def get(self, principal: Principal, account_id: str) -> Account:
        return self.repository.get(principal.user_id, account_id)

    def usage(self, principal: Principal, remaining: RemainingSeconds) -> dict[str, Any]:
        """``{used, limit, limitSource}``: Kinde being down degrades the limit, never the answer;
        an active downgrade hold below the entitlement is the limit that binds."""
        counter = self.repository.counter(principal.user_id)
        try:
            entitlement = self._entitlement(principal, remaining)
        except EntitlementUnavailable:
            return {"used": counter.count, "limit": None, "limitSource": "unavailable"}
        hold = counter.hold_limit
        if hold is not None and (entitlement.limit is None or hold < entitlement.limit):
            return {"used": counter.count, "limit": hold, "limitSource": "hold"}
        return {"used": counter.count, "limit": entitlement.limit, "limitSource": entitlement.source}

    # -- writes ------------------------------------------------------------------------------
    def add(
        self,
        principal: Principal,
        account: NewAccount,
        remaining: RemainingSeconds,
        *,
        idempotency_key: str | None = None,
        lambda_context: LambdaContext | None = None,
    ) -> Account:
        """Create within the plan limit; with an ``Idempotency-Key`` a retry answers the first result."""
        if idempotency_key is None or self._idempotency is None:
            return self._add(principal, account, remaining)
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        add_once = self._idempotent_add()
        if lambda_context is not None:  # lets a crashed request's record expire with the invocation
            self._idempotency_config.register_lambda_context(lambda_context)
        request = {
            "user": principal.user_id,
            "key": idempotency_key,
            "body": {"name": account.name, "accountNumber": account.account_number},
        }
        try:
            return Account.from_json(add_once(request=request, principal=principal, remaining=remaining))
        except IdempotencyValidationError:
            raise IdempotencyKeyReused() from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyInProgress() from None
        except IdempotencyPersistenceLayerError:  # its table throttled or unreachable: nothing created
            logger.exception("idempotency store unavailable")
            raise ServiceUnavailable() from None

    def update(
        self, principal: Principal, account_id: str, name: str | None, account_number: str | None
    ) -> Account:
        return self.repository.update(principal.user_id, account_id, name, account_number)

    def delete(self, principal: Principal, account_id: str) -> None:
        self.repository.delete(principal.user_id, account_id)

    # -- internals ---------------------------------------------------------------------------
    def _add_request(
        self, request: dict[str, Any], principal: Principal, remaining: RemainingSeconds
    ) -> dict[str, Any]:
        body = request["body"]
        return self._add(principal, NewAccount(body["name"], body["accountNumber"]), remaining).to_json()

    def _add(self, principal: Principal, account: NewAccount, remaining: RemainingSeconds) -> Account:
        entitlement = self._entitlement(principal, remaining)
        try:
            created = self._create(principal, account, entitlement)
        except CounterConditionFailed as refused:
            fresh = None
            if entitlement.source == "cache" and not hold_binds(entitlement, refused.counter):
                # The cached answer may predate an upgrade: ask Kinde once before saying no.
                fresh = self._refreshed(principal, remaining)
            if fresh is None or (fresh.limit, fresh.missing) == (entitlement.limit, entitlement.missing):
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise refusal(entitlement, refused.counter) from None
            try:
                created = self._create(principal, account, fresh)
            except CounterConditionFailed as again:
                metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
                raise refusal(fresh, again.counter) from None
        metrics.add_metric(name="AccountsCreated", unit=MetricUnit.Count, value=1)
        return created

    def _create(self, principal: Principal, account: NewAccount, entitlement: Entitlement) -> Account:
        if entitlement.limit == 0:  # nothing can pass; no write (a new user has no counter to fail)
            raise CounterConditionFailed(self.repository.counter(principal.user_id))
        return self.repository.create(
            principal.user_id, account.name, account.account_number, entitlement.limit
        )

    def _entitlement(self, principal: Principal, remaining: RemainingSeconds) -> Entitlement:
        try:
            return self.kinde.entitlement(principal.user_id, principal.token, FEATURE_KEY, remaining)
        except EntitlementUnavailable as error:
            metrics.add_metric(name="EntitlementErrors", unit=MetricUnit.Count, value=1)
            logger.warning("entitlement unavailable", extra={"detail": error.detail})
            raise

    def _refreshed(self, principal: Principal, remaining: RemainingSeconds) -> Entitlement | None:
        """Kinde's answer past the cache, at most once per user per few seconds; None when not
        asked, or when Kinde fails (the cached refusal stands rather than becoming a 503)."""
        try:
            return self.kinde.refreshed(principal.user_id, principal.token, FEATURE_KEY, remaining)
        except EntitlementUnavailable as error:
            logger.warning("entitlement re-read failed", extra={"detail": error.detail})
            return None
