"""``make report-usage``: every customer's current count to Kinde again, as the schedule does.

UsageReportFunction on its re-send event, against the running ``make dev`` (or the saved data);
a run that stops early (time, or Kinde failing) answers where to go on, and the next one does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from local.commands.common import local_stack, say
from local.config import LocalConfig, function_environment
from local.functions import Functions
from local.usage_stream import RESEND_ACTION, STREAM_FUNCTION

MAX_RUNS = 100


def report_usage(config: LocalConfig, _options: argparse.Namespace) -> int:
    template = config.template
    totals = {"sent": 0, "skipped": 0, "failed": 0}
    with local_stack(config) as (endpoints, running):
        env = function_environment(
            template,
            STREAM_FUNCTION,
            issuer=endpoints.issuer,
            dynamodb_endpoint=endpoints.dynamodb,
            overrides=endpoints.overrides,
        )
        functions = Functions(template, {STREAM_FUNCTION: env})
        try:
            event: dict[str, Any] = {"action": RESEND_ACTION}
            for _ in range(MAX_RUNS):
                result = functions.invoke(STREAM_FUNCTION, event)
                if not result.ok:
                    say(f"{STREAM_FUNCTION} failed: {result.error_text}")
                    return 1
                answer = result.payload
                for name in totals:
                    totals[name] += int(answer.get(name, 0))
                if answer.get("complete") or not (answer.get("sent") or answer.get("skipped")):
                    break  # done, or no progress (Kinde failing): the next run starts over
                event = {"action": RESEND_ACTION, "startAfter": answer.get("startAfter")}
        finally:
            functions.stop()
    where = "make dev" if running else "the persisted local data"
    say(f"{STREAM_FUNCTION}: every count re-sent against {where}")
    print(json.dumps({**totals, "complete": bool(answer.get("complete"))}, indent=2))
    return 0 if answer.get("complete") else 1
