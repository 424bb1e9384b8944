"""UsageReportFunction handler: the accounts table's stream (counter items only), and re-sends.

Two events: a batch of stream records from the event source mapping (answered with the records to
deliver again, ``batchItemFailures``), and ``{"action": "report-usage", "startAfter"?}`` from the
schedule or by hand (every customer's current count, answered with where to resume).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.dynamodb import dynamodb_client
from planguard.settings import ConfigurationError, get_settings

from usage_report_fn.batch import report_batch
from usage_report_fn.kinde_port import get_management_api
from usage_report_fn.reporter import UsageReporter
from usage_report_fn.resend import Resender

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"planguard", "usage_report_fn"})

RESEND_ACTION = "report-usage"


@functools.cache
def reporter() -> UsageReporter:
    """One per container: the Management API client, its token and what it learnt stay warm."""
    api = get_management_api()
    if api is None:
        raise ConfigurationError(
            "UsageReportFunction needs the Management API: set KINDE_M2M_CLIENT_ID and "
            "KINDE_M2M_CLIENT_SECRET_PARAM (KINDE_M2M_CLIENT_SECRET locally)"
        )
    settings = get_settings()
    return UsageReporter(api, settings.kinde_feature_code)


@functools.cache
def resender() -> Resender:
    settings = get_settings()
    return Resender(dynamodb_client(settings.dynamodb_endpoint_url), settings.table_name, reporter())


def _count(name: str, value: int) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    if isinstance(event.get("Records"), list):
        result = report_batch(event["Records"], reporter(), deadline)
        _count("UsageReportsSent", len(result.sent))
        _count("UsageReportsSkipped", len(result.skipped))
        _count("UsageReportsFailed", len(result.failed) + len(result.dropped))
        return {"batchItemFailures": result.batch_item_failures()}
    if event.get("action") == RESEND_ACTION:
        start_after = event.get("startAfter")
        outcome = resender().run(deadline, start_after if isinstance(start_after, dict) else None)
        _count("UsageReportsSent", outcome.sent)
        _count("UsageReportsSkipped", outcome.skipped)
        _count("UsageReportsFailed", outcome.failed)
        answer = outcome.answer()
        logger.info("usage re-send run", extra=answer)
        return answer
    raise ValueError(f'not a stream batch nor {{"action": "{RESEND_ACTION}"}}: keys {sorted(event)[:10]}')
