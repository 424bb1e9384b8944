"""A stdlib JSON-lines logger for the paths that must not pay for Powertools' import.

The usage count and the plan check's direct invoke sit on Kinde's plan-change path: one JSON
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


def json_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [_JsonLines()]
    logger.propagate = False  # the Lambda runtime's root handler would print it a second time
    level = os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper()
    logger.setLevel(level if level in logging.getLevelNamesMapping() else logging.INFO)
    return logger
