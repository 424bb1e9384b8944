"""The Lambda runtime, locally: the context object, the events handlers receive, and the sandbox.

``python -m local.lambda_runtime CONFIG_JSON`` is one function's sandbox (started by
``local.functions`` with the function's own environment): it imports the handler once, then
answers invocations. Messages are JSON lines: requests on stdin, replies on a private copy of
stdout; file descriptor 1 itself is pointed at stderr, so whatever the handler prints reaches the
console, never the protocol pipe.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import os
import signal
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any


@dataclass
class LocalContext:
    """A Lambda-like context: request id, ARN, memory and a real remaining-time clock."""

    function_name: str
    timeout_seconds: int = 10
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

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
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw_query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as API Gateway builds it."""
    now = datetime.now(UTC)
    lower_headers = {name.lower(): value for name, value in (headers or {}).items()}
    is_base64 = False
    text_body: str | None = None
    if isinstance(body, bytes):
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, is_base64 = base64.b64encode(body).decode(), True
    else:
        text_body = body
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lower_headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": lower_headers.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lower_headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if text_body:
        event["body"] = text_body
    return event


DEV_TOKEN_PLACEHOLDER = "DEV_TOKEN"


def stamp_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """A copy of a sample event with ``DEV_TOKEN`` in its headers replaced by a real token."""
    stamped = copy.deepcopy(event)
    for name, value in list((stamped.get("headers") or {}).items()):
        if isinstance(value, str) and DEV_TOKEN_PLACEHOLDER in value:
            stamped["headers"][name] = value.replace(DEV_TOKEN_PLACEHOLDER, token)
    return stamped


def needs_token(event: dict[str, Any]) -> bool:
    return DEV_TOKEN_PLACEHOLDER in json.dumps(event.get("headers") or {})


DEV_WEBHOOK_PLACEHOLDER = "DEV_WEBHOOK"


def webhook_placeholder(event: dict[str, Any]) -> tuple[str, str] | None:
    """``(type, user)`` of a sample webhook whose body is ``DEV_WEBHOOK <type> <user>``: its JWT is
    signed fresh by the stand-in (a committed one would be signed by nobody's key)."""
    body = event.get("body")
    if not isinstance(body, str) or not body.startswith(DEV_WEBHOOK_PLACEHOLDER):
        return None
    _, event_type, user = [*body.split(), "", ""][:3]
    return event_type, user


def plan_selection_event(
    user_id: str,
    current_plan: str | None,
    requested_plan: str,
    *,
    kinde_domain: str,
    org_code: str = "org_dev",
) -> dict[str, Any]:
    """Kinde's ``user:plan_selection`` workflow event (KINDE.md), as the stand-in sends it."""
    billing: dict[str, Any] = {"requestedPlanCode": requested_plan}
    if current_plan is not None:
        billing["currentPlanCode"] = current_plan
    return {
        "request": {"userAgent": "plan-guard-local", "ip": "127.0.0.1"},
        "context": {
            "domains": {"kindeDomain": kinde_domain},
            "billing": billing,
            "user": {"id": user_id},
            "organization": {"code": org_code},
            "workflow": {"trigger": "user:plan_selection"},
        },
    }


# -- the sandbox: one process, one handler, imported once ----------------------------------------
def _error(exc: BaseException) -> dict[str, Any]:
    """Lambda's error shape."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _send(out: IO[str], message: dict[str, Any]) -> None:
    try:
        line = json.dumps(message, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        line = json.dumps(
            {"ok": False, "error": {"errorType": "Runtime.MarshalError", "errorMessage": str(exc)}}
        )
    out.write(line + "\n")
    out.flush()


def sandbox(config: dict[str, Any]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a sandbox ends
    # Powertools warns on every request without custom metrics; CloudWatch would not show it.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the handler must not read the protocol pipe
    # Lambda's path: the function's code, then its layers, then the runtime (site-packages).
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    keep = [p for p in sys.path if p not in ("", root, os.getcwd()) and not p.startswith(root + "/layers")]
    sys.path[:] = [*config["paths"], *keep]
    module_name, _, attribute = config["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # as Lambda reports an init failure
        _send(out, {"ready": False, "error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}})
        return 1
    _send(out, {"ready": True})
    for line in requests:
        request = json.loads(line)
        context = LocalContext(config["function"], config["timeout"], config["memory"], request["requestId"])
        try:
            _send(out, {"ok": True, "result": handler(request["event"], context)})
        except Exception as exc:
            traceback.print_exc()
            _send(out, {"ok": False, "error": _error(exc)})
    return 0


if __name__ == "__main__":
    sys.exit(sandbox(json.loads(sys.argv[1])))
