"""Logging set-up shared by every function, and a stdlib JSON-lines logger for the paths that must
not pay for Powertools' import.

The usage count (on Kinde's plan-change path) and the plan check's direct invoke use it: one JSON
object per line on stdout (CloudWatch parses it), fields passed as ``extra={"fields": {...}}``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any


class _JsonLines(logging.Handler):
    """Resolved at emit time, so a test capturing stdout sees the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        line: dict[str, Any] = {
            "level": record.levelname,
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": os.environ.get("POWERTOOLS_SERVICE_NAME", "plan-guard"),
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = logging.Formatter().formatException(record.exc_info)
        sys.stdout.write(json.dumps(line, default=str) + "\n")


# The AWS SDK's DEBUG lines carry request parameters (account numbers, their normalised and hashed
# forms), response bodies (the usage keys from SSM) and signed headers (the session token).
SDK_LOGGERS = ("botocore", "boto3")


def _configured_level() -> int:
    level = os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper()
    return logging.getLevelNamesMapping().get(level, logging.INFO)


def hold_sdk_logs_at_warning() -> None:
    """The SDK logs WARNING and above (ERROR when the function is set to ERROR), whatever level
    the root logger is at: LogLevel=DEBUG is for our own lines, never the SDK's."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, _configured_level()))


def json_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [_JsonLines()]
    logger.propagate = False  # the Lambda runtime's root handler would print it a second time
    logger.setLevel(_configured_level())
    return logger
