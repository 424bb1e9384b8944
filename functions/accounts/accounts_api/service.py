"""Account use cases: where the caller's Kinde entitlement meets the repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from planguard.auth import Principal
from planguard.entitlements import Entitlement, KindeAccountApi
from planguard.errors import EntitlementUnavailable, LimitReached, NoEntitlement
from planguard.repository import Account, AccountRepository
from planguard.settings import FEATURE_KEY

logger = Logger()
metrics = Metrics()

RemainingSeconds = Callable[[], float]


class AccountsService:
    def __init__(self, repository: AccountRepository, kinde: KindeAccountApi) -> None:
        self.repository = repository
        self.kinde = kinde

    def _entitlement(self, principal: Principal, remaining: RemainingSeconds) -> Entitlement:
        try:
            return self.kinde.entitlement(principal.user_id, principal.token, FEATURE_KEY, remaining)
        except EntitlementUnavailable as error:
            metrics.add_metric(name="EntitlementErrors", unit=MetricUnit.Count, value=1)
            logger.warning("entitlement unavailable", extra={"detail": error.detail})
            raise

    def add(
        self, principal: Principal, name: str, account_number: str, remaining: RemainingSeconds
    ) -> Account:
        entitlement = self._entitlement(principal, remaining)
        if entitlement.missing and entitlement.limit == 0:
            raise NoEntitlement()
        try:
            account = self.repository.create(principal.user_id, name, account_number, entitlement.limit)
        except LimitReached:
            metrics.add_metric(name="LimitReached", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name="AccountsCreated", unit=MetricUnit.Count, value=1)
        return account

    def usage(self, principal: Principal, remaining: RemainingSeconds) -> dict[str, Any]:
        """``{used, limit, limitSource}``: Kinde being down degrades the limit, never the answer."""
        used = self.repository.usage_count(principal.user_id)
        try:
            entitlement = self._entitlement(principal, remaining)
        except EntitlementUnavailable:
            return {"used": used, "limit": None, "limitSource": "unavailable"}
        return {"used": used, "limit": entitlement.limit, "limitSource": entitlement.source}
