"""The Lambda runtime, locally: the context object, the events handlers receive, and the sandbox.

``python -m local.lambda_runtime PATH...`` is one function's sandbox, started by ``local.functions``
with the function's environment (``_HANDLER``, ``AWS_LAMBDA_FUNCTION_*``) and its code and layer
folders: it imports the handler once, then answers JSON lines, requests on stdin, replies on a
private copy of stdout; file descriptor 1 goes to stderr, so what the handler prints is logged.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from local import ROOT


@dataclass
class LocalContext:
    """A Lambda context: what Powertools reads, and a real remaining-time clock."""

    function_name: str
    timeout_seconds: int = 10
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str,
    path_parameters: dict[str, str] | None,
    query: dict[str, str] | None,
    raw_query: str,
    headers: dict[str, str],
    body: bytes | None,
    source_ip: str,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as API Gateway builds it."""
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        try:
            event["body"] = body.decode()
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def plan_selection_event(
    user_id: str,
    current_plan: str | None,
    requested_plan: str,
    kinde_domain: str,
    org_code: str = "org_dev",
) -> dict[str, Any]:
    """Kinde's ``user:plan_selection`` workflow event, as the stand-in sends it (``org_code``: the
    organization whose plan changes, or the user's own organization for a user's plan)."""
    return {
        "request": {"userAgent": "plan-guard-local", "ip": "127.0.0.1"},
        "context": {
            "domains": {"kindeDomain": kinde_domain},
            "billing": {"currentPlanCode": current_plan, "requestedPlanCode": requested_plan},
            "user": {"id": user_id},
            "organization": {"code": org_code},
            "workflow": {"trigger": "user:plan_selection"},
        },
    }


def stamp_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """A copy of a sample event with ``DEV_TOKEN`` in its headers replaced by a real token."""
    stamped = copy.deepcopy(event)
    stamped["headers"] = {name: value.replace("DEV_TOKEN", token) for name, value in event["headers"].items()}
    return stamped


def _error(exc: BaseException) -> dict[str, Any]:
    """Lambda's error shape."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def sandbox(paths: list[str]) -> int:
    # Powertools warns on every request without custom metrics; CloudWatch would not show it.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False) + "\n")
        out.flush()

    # Lambda's path: the function's code, then its layers, then the runtime (not this repository).
    sys.path[:] = [
        *paths,
        *(p for p in sys.path if p not in ("", str(ROOT)) and not p.startswith(f"{ROOT}/layers")),
    ]
    module_name, _, attribute = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # as Lambda reports an init failure
        send({"ready": False, "error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}})
        return 1
    send({"ready": True})
    name, timeout = os.environ["AWS_LAMBDA_FUNCTION_NAME"], int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"])
    memory = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
    for line in sys.stdin.buffer:
        request = json.loads(line)
        context = LocalContext(name, timeout, memory, request["requestId"])
        try:
            send({"ok": True, "result": handler(request["event"], context)})
        except Exception as exc:
            traceback.print_exc()
            send({"ok": False, "error": _error(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(sandbox(sys.argv[1:]))
