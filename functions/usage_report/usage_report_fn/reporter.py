"""One customer's count to Kinde: the customer's billing id, its agreement, then ``meter_usage``.

``absolute`` reports make a retry or a duplicate harmless (Kinde keeps the last value sent). A
customer Kinde cannot bill for the feature (no billing customer, no agreement carrying it, or a
report Kinde refuses) is skipped, never retried: a retry cannot change Kinde's answer, and the
scheduled re-send reports it again once it can be billed. Kinde down (5xx, 429, a timeout) raises
``EntitlementUnavailable`` for the caller to retry.

Kinde calls are what a report costs: the customer id is kept for the container's life once found
(it does not change), the agreement for a short while (a plan change makes a new one, and a
refused report re-reads it once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from usage_report_fn.changes import Customer
from usage_report_fn.kinde_port import AgreementLike, KindeRejected, ManagementApi

logger = logging.getLogger(__name__)

AGREEMENT_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Sent:
    agreement_id: str


@dataclass(frozen=True)
class Skipped:
    reason: str


Outcome = Sent | Skipped


def current_agreement(agreements: Sequence[AgreementLike], now: datetime) -> AgreementLike | None:
    """The agreement that has not expired; of several, an open-ended one, else the one that lasts
    longest."""
    live = [a for a in agreements if a.expires_on is None or a.expires_on > now]
    return max(live, key=lambda a: (a.expires_on is None, a.expires_on or now), default=None)


class UsageReporter:
    """Per container: the Management API client and what it learnt (customer ids, agreements)."""

    def __init__(
        self,
        api: ManagementApi,
        feature_code: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        agreement_seconds: float = AGREEMENT_CACHE_SECONDS,
    ) -> None:
        self._api = api
        self.feature_code = feature_code
        self._clock = clock
        self._now = wall_clock
        self._agreement_seconds = agreement_seconds
        self._customer_ids: dict[Customer, str] = {}
        self._agreements: dict[str, tuple[str, float]] = {}  # customer id -> (agreement id, until)

    def report(self, customer: Customer, value: int, deadline: float | None) -> Outcome:
        """Send ``value`` as the customer's ``absolute`` usage of the feature."""
        try:
            customer_id = self._customer_id(customer, deadline)
            if customer_id is None:
                return Skipped("no billing customer in Kinde")
            agreement = self._agreement(customer_id, deadline, fresh=False)
            if agreement is None:
                return Skipped(f"no agreement carrying {self.feature_code}")
            try:
                self._api.meter_usage(agreement, self.feature_code, value, deadline)
            except KindeRejected as refused:
                # A plan change ends the agreement we kept: read it once more, then try again.
                logger.info("Kinde refused the report (%s): reading the agreement again", refused.status)
                fresh = self._agreement(customer_id, deadline, fresh=True)
                if fresh is None:
                    return Skipped(f"no agreement carrying {self.feature_code}")
                if fresh == agreement:  # the same agreement: Kinde's answer would not change
                    raise
                self._api.meter_usage(fresh, self.feature_code, value, deadline)
                agreement = fresh
        except KindeRejected as refused:
            return Skipped(f"Kinde refused it ({refused.status}: {refused.message[:200]})")
        return Sent(agreement)

    def _customer_id(self, customer: Customer, deadline: float | None) -> str | None:
        if (known := self._customer_ids.get(customer)) is not None:
            return known
        if customer.kind == "organization":
            organization = self._api.organization(customer.id, deadline)
            found = organization.billing_customer_id if organization is not None else None
        else:
            found = self._api.user_customer_id(customer.id, deadline)
        if found:  # a customer who subscribes later is seen at once: a missing id is not kept
            self._customer_ids[customer] = found
        return found or None

    def _agreement(self, customer_id: str, deadline: float | None, *, fresh: bool) -> str | None:
        kept = self._agreements.get(customer_id)
        if kept is not None and not fresh and kept[1] > self._clock():
            return kept[0]
        agreement = current_agreement(
            self._api.agreements(customer_id, self.feature_code, deadline), self._now()
        )
        if agreement is None:
            self._agreements.pop(customer_id, None)
            return None
        self._agreements[customer_id] = (agreement.id, self._clock() + self._agreement_seconds)
        return agreement.id
