"""Every customer's current count, sent again: after an outage, after switching reports on, and
on a schedule (a lost report, or usage Kinde resets at a new billing cycle, heals by the next run).

Paged (one Scan page of counters at a time) and paced (a pause between customers: Kinde publishes
no rate limit, and list calls cost it more). A run stops before the invocation ends, or when Kinde
keeps failing, and answers where to resume (``startAfter``): the next run, given it, carries on.

A count that changes while it is being re-sent could reach Kinde after the stream's report of the
change and overwrite it with the older value: so the counter is read again after each report, and
a changed count is sent once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planguard.dynamodb import call, s
from planguard.errors import EntitlementUnavailable
from planguard.keys import USAGE_SK, counters_scan, customer_of
from planguard.usage_counter import COUNT, Counter

from usage_report_fn.changes import Customer
from usage_report_fn.reporter import Outcome, Sent, UsageReporter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # items scanned per page (the filter keeps the counters among them)
PACE_SECONDS = 0.1  # between customers: at most 10 reports a second
STOP_BEFORE_END_SECONDS = 15.0
MAX_FAILURES_IN_A_ROW = 3  # Kinde is down: stop, and let the next run resume
MAX_SENDS_PER_CUSTOMER = 3


@dataclass
class ResendResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    complete: bool = True
    resume_from: dict[str, Any] | None = None  # where an incomplete run stopped (None: the start)

    def answer(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "complete": self.complete,
            "startAfter": self.resume_from,
        }


class Resender:
    def __init__(
        self,
        db: DynamoDBClient,
        table: str,
        reporter: UsageReporter,
        *,
        pace_seconds: float = PACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db, self._table, self._reporter = db, table, reporter
        self._pace, self._clock, self._sleep = pace_seconds, clock, sleep

    def run(self, deadline: float | None, start_after: dict[str, Any] | None = None) -> ResendResult:
        result = ResendResult()
        params: dict[str, Any] = {
            **counters_scan(self._table),
            "ProjectionExpression": "PK, #c",
            "ExpressionAttributeNames": COUNT,
            "Limit": PAGE_SIZE,
        }
        done = start_after  # the key of the last counter handled
        in_a_row = 0
        while True:
            if done is not None:
                params["ExclusiveStartKey"] = done
            page = call(self._db.scan, **params)
            for item in page.get("Items", []):
                if deadline is not None and deadline - self._clock() < STOP_BEFORE_END_SECONDS:
                    result.complete, result.resume_from = False, done
                    return result
                key = {"PK": item["PK"], "SK": s(USAGE_SK)}
                owner = customer_of(item["PK"]["S"])
                if owner is not None:
                    customer = Customer(*owner)
                    try:
                        outcome = self._send(customer, key, Counter.from_item(item, 0).count, deadline)
                    except EntitlementUnavailable as fault:
                        logger.warning(
                            "usage re-send failed: Kinde unavailable (%s)",
                            fault.detail,
                            extra={"customer": str(customer)},
                        )
                        result.failed += 1
                        in_a_row += 1
                        if in_a_row >= MAX_FAILURES_IN_A_ROW:
                            result.complete, result.resume_from = False, done  # this customer, next time
                            return result
                        continue
                    in_a_row = 0
                    if isinstance(outcome, Sent):
                        result.sent += 1
                    else:
                        result.skipped += 1
                    self._sleep(self._pace)
                done = key
            if "LastEvaluatedKey" not in page:
                return result
            done = page["LastEvaluatedKey"]

    def _send(self, customer: Customer, key: dict[str, Any], value: int, deadline: float | None) -> Outcome:
        """Report ``value``; while the counter has moved on meanwhile, report its newer count."""
        for _ in range(MAX_SENDS_PER_CUSTOMER):
            fields = {"customer": str(customer), "value": value}
            outcome = self._reporter.report(customer, value, deadline)
            if not isinstance(outcome, Sent):
                logger.warning("usage re-send skipped: %s", outcome.reason, extra=fields)
                return outcome
            logger.info("usage re-sent", extra={**fields, "agreement": outcome.agreement_id})
            item = call(
                self._db.get_item,
                TableName=self._table,
                Key=key,
                ConsistentRead=True,
                ProjectionExpression="#c",
                ExpressionAttributeNames=COUNT,
            ).get("Item")
            now = Counter.from_item(item, 0).count
            if now == value:
                break
            value = now
        return outcome
