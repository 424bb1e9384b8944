"""``make invoke``: one function, one event, on the local data (like ``sam local invoke``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from local.commands.common import ask_standin, local_stack, mint, say
from local.config import PLAN_CHECK_FUNCTION, LocalConfig, StartupError, function_environment
from local.functions import Functions
from local.lambda_runtime import stamp_token
from local.template import Template
from local.usage_stream import RESEND_ACTION, STREAM_FUNCTION


def function_for_event(template: Template, event: dict[str, Any]) -> str | None:
    """Which function an event is for: its route (API events), the plan check (Kinde's workflow),
    or the usage reports (the table's stream, or a re-send)."""
    for route in template.routes():
        if route.route_key == event.get("routeKey"):
            return route.function
    if "billing" in event.get("context", {}):
        return PLAN_CHECK_FUNCTION
    records = event.get("Records")
    from_stream = (
        isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:dynamodb"
    )
    return STREAM_FUNCTION if from_stream or event.get("action") == RESEND_ACTION else None


def invoke(config: LocalConfig, options: argparse.Namespace) -> int:
    """One function, one event, in a fresh sandbox, on the local data; like ``sam local invoke``."""
    template = config.template
    try:
        event = json.loads(Path(options.event).read_text())
    except OSError as exc:
        raise StartupError(f"cannot read the event {options.event}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StartupError(f"{options.event} is not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise StartupError(f"{options.event} must hold one JSON object, the event")
    function = options.function or function_for_event(template, event)
    if function is None:
        raise StartupError(f"cannot tell which function {options.event} is for: give FN=<LogicalId>")
    if function not in template.functions():
        raise StartupError(
            f"no function {function} in template.yaml; known: {', '.join(template.functions())}"
        )
    with local_stack(config) as (endpoints, running):
        if "DEV_TOKEN" in json.dumps(event.get("headers")):  # sample tokens would have expired
            event = stamp_token(event, mint(endpoints, options.user))
        if str(event.get("body")).startswith("DEV_WEBHOOK"):  # "DEV_WEBHOOK <type> <user>": signed fresh
            _, event_type, user = event["body"].split()
            request = {"type": event_type, "user": user, "deliver": False}
            event = {**event, "body": ask_standin(endpoints, "/dev/webhook", request)["body"]}
        env = function_environment(
            template,
            function,
            issuer=endpoints.issuer,
            dynamodb_endpoint=endpoints.dynamodb,
            overrides=endpoints.overrides,
        )
        functions = Functions(template, {function: env})
        result = functions.invoke(function, event)
        functions.stop()
    where = "make dev" if running else "the persisted local data"
    say(f"{function}: {result.duration_ms:.0f} ms against {where}")
    print(json.dumps(result.payload if result.ok else result.error, indent=2, ensure_ascii=False))
    return 0 if result.ok else 1
