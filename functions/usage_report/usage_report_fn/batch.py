"""A batch of stream records: one report per customer whose count changed, and which records
Lambda must deliver again (partial batch response).

Lambda retries a stream from the lowest sequence number returned, so a failed customer returns the
first record that changed its count: the retry then holds that change and everything after it.
A removed counter (the customer deleted) reports 0 once, best effort: Kinde may have forgotten
the customer already, and nothing would ever make a retry succeed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from planguard.errors import EntitlementUnavailable

from usage_report_fn.changes import Report, reports
from usage_report_fn.reporter import Sent, UsageReporter

logger = logging.getLogger(__name__)

# A report takes at most a few bounded Kinde calls; one not started with less time left than
# this is left for the retry rather than cut off by the invocation's end.
MIN_SECONDS_PER_REPORT = 10.0


@dataclass
class BatchResult:
    sent: list[tuple[Report, str]] = field(default_factory=list)  # (report, agreement id)
    skipped: list[tuple[Report, str]] = field(default_factory=list)  # (report, why)
    failed: list[Report] = field(default_factory=list)
    dropped: list[Report] = field(default_factory=list)  # removals Kinde could not take: not retried

    def batch_item_failures(self) -> list[dict[str, str]]:
        return [{"itemIdentifier": report.retry_from} for report in self.failed]


def report_batch(
    records: Iterable[Mapping[str, Any]],
    reporter: UsageReporter,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> BatchResult:
    result = BatchResult()
    for report in reports(records):
        if deadline is not None and deadline - clock() < MIN_SECONDS_PER_REPORT:
            result.failed.append(report)
            continue
        fields = {"customer": str(report.customer), "value": report.value}
        try:
            outcome = reporter.report(report.customer, report.value, deadline)
        except EntitlementUnavailable as fault:
            logger.warning("usage report failed: Kinde unavailable (%s)", fault.detail, extra=fields)
            (result.dropped if report.removed else result.failed).append(report)
            continue
        if isinstance(outcome, Sent):
            logger.info("usage reported", extra={**fields, "agreement": outcome.agreement_id})
            result.sent.append((report, outcome.agreement_id))
        else:
            logger.warning("usage report skipped: %s", outcome.reason, extra=fields)
            result.skipped.append((report, outcome.reason))
    return result
