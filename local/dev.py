"""``make dev``: the whole system on one machine, no AWS account, no Docker (DESIGN.md §6).

Starts the local stack, publishes its endpoints in ``.local/dev.json`` for ``make invoke`` and
the CLI, prints the URLs and curl commands that work as pasted, and on Ctrl-C/SIGTERM stops
serving, saves the data and exits 0. Configuration problems are one line on stderr, exit 1.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from local.config import (
    DEV_TOKEN_TTL_SECONDS,
    DEV_USER,
    PLAN_CHECK_FUNCTION,
    DevRuntime,
    LocalConfig,
    StartupError,
)
from local.stack import LocalStack
from local.template import Route

FORCE_EXIT_AFTER_SECONDS = 2.0


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def sample_events(events_dir: Path) -> dict[str, dict[str, Any]]:
    """API events of ``events/`` by route key: where the printed commands take bodies and queries."""
    samples: dict[str, dict[str, Any]] = {}
    for path in sorted(events_dir.glob("*.json")):
        try:
            event = json.loads(path.read_text())
        except ValueError:
            continue
        if not (isinstance(event, dict) and isinstance(event.get("routeKey"), str)):
            continue
        current = samples.get(event["routeKey"])
        if current is None or (_has_credentials(event) and not _has_credentials(current)):
            samples[event["routeKey"]] = event
    return samples


def _has_credentials(event: dict[str, Any]) -> bool:
    """A sample that shows how to authenticate (the usage count's key) beats one that does not."""
    headers = {str(k).lower() for k in (event.get("headers") or {})}
    return bool(headers & {"authorization", "x-api-key"})


def curl_command(
    api: str, route: Route, sample: dict[str, Any] | None, user: str, usage_key: str
) -> str | None:
    """One ready-to-paste curl for a route, or None when it needs an id the user does not have yet."""
    path = route.path
    for name in route.pattern.groupindex:
        if name.lower().endswith("kindeid") or name.lower() in ("userid", "user"):
            path = path.replace(f"{{{name}}}", user)
    if "{" in path:
        return None
    sample = sample or {}
    query = sample.get("rawQueryString") or ""
    url = f"{api}{path}" + (f"?{query}" if query else "")
    parts = ["curl -s"]
    if route.method != "GET":
        parts.append(f"-X {route.method}")
    parts.append(shlex.quote(url) if "?" in url or "&" in url else url)
    headers = {k.lower(): v for k, v in (sample.get("headers") or {}).items()}
    if "x-api-key" in headers:
        parts.append(f'-H "x-api-key: {usage_key}"')
    else:  # every route but the usage count takes the caller's token (DESIGN.md §2)
        parts.append('-H "Authorization: Bearer $TOKEN"')
    body = sample.get("body")
    if body and route.method in ("POST", "PUT", "PATCH"):
        parts.append("-H 'Content-Type: application/json'")
        parts.append(f"-d {shlex.quote(body)}")
    return " ".join(parts)


def _service_lines(stack: LocalStack, config: LocalConfig) -> list[str]:
    template = stack.template
    lines = [f"  API             {stack.api_url}   (routes from {_display(template.path)})"]
    if stack.kinde_url:
        where = _display(config.kinde_file)
        lines.append(f"  Kinde stand-in  {stack.kinde_url}   (issuer, JWKS, Account API; plans in {where})")
    else:
        lines.append(f"  Kinde           {stack.issuer}   (KINDE_ISSUER_URL: real Kinde, nothing faked)")
    if stack.moto:
        where = _display(config.dynamodb_file)
        lines.append(f"  DynamoDB        {stack.dynamodb_url}   (embedded; data in {where})")
    else:
        lines.append(f"  DynamoDB        {stack.dynamodb_url}   (DYNAMODB_ENDPOINT_URL)")
    routes = [route.function for route in template.routes()]
    functions = ", ".join(
        f"{name} ({routes.count(name)} route{'' if routes.count(name) == 1 else 's'})"
        for name in template.functions()
    )
    lines.append(f"  Functions       {functions}")
    for name, error in sorted(stack.init_errors.items()):
        lines.append(f"  warning: {name} failed to start: {error} (its routes answer 502 until fixed)")
    if stack.standin is not None and PLAN_CHECK_FUNCTION not in template.functions():
        lines.append(
            f"  warning: no {PLAN_CHECK_FUNCTION} in the template: plan changes are applied unchecked"
        )
    return lines


def _plan_codes(config: LocalConfig) -> tuple[str, str]:
    """The smallest and the largest plan by tracked_accounts limit (None is unlimited)."""
    limits = config.plan_limits

    def size(plan: str) -> float:
        limit = limits[plan].get("tracked_accounts")
        return float("inf") if limit is None else float(limit)

    ordered = sorted(limits, key=size)
    return ordered[0], ordered[-1]


def banner(stack: LocalStack, config: LocalConfig, token: str | None, plan: str | None) -> str:
    """The URLs, then curl commands built from the template's routes and the sample events."""
    template = stack.template
    api = stack.api_url or ""
    lines = ["", "Plan Guard is running locally (no AWS account, no Docker).", ""]
    lines += _service_lines(stack, config)
    lines.append("")
    if token:
        hours = DEV_TOKEN_TTL_SECONDS // 3600
        lines.append(f"Try it (a dev token for {DEV_USER} on plan {plan}, valid {hours} h):")
        lines.append(f"  export TOKEN={token}")
    else:
        lines.append("Try it (with an access token from your Kinde app):")
        lines.append("  export TOKEN=<access token>")
    usage_key = config.overrides.get("USAGE_API_KEY", "")
    samples = sample_events(template.path.parent / "events")
    later: list[str] = []
    for route in template.routes():
        command = curl_command(api, route, samples.get(route.route_key), DEV_USER, usage_key)
        if command:
            lines.append(f"  {command}")
        else:
            later.append(route.route_key)
    if later:
        lines.append(f"  ...and with an id from the answers: {', '.join(later)}")
    if stack.kinde_url:
        smallest, largest = _plan_codes(config)
        body = shlex.quote(json.dumps({"user": DEV_USER, "plan": smallest}))
        lines += [
            "",
            "Change plans as Kinde would (runs PlanCheckFunction; a downgrade over the limit is denied):",
            f"  curl -s -X POST {stack.kinde_url}/dev/plan -d {body}",
            f"  make plan USER={DEV_USER} PLAN={smallest}      make token USER={DEV_USER} PLAN={largest}",
        ]
    lines += ["", "Ctrl-C stops (the data is saved)."]
    return "\n".join(lines)


def main() -> int:
    started = time.monotonic()
    stopping = threading.Event()
    first_signal: list[float] = []

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # One Ctrl-C arrives twice (from the terminal, and forwarded by `uv run`): only a second
        # press, a moment later, means "leave now without saving".
        if first_signal and time.monotonic() - first_signal[0] > FORCE_EXIT_AFTER_SECONDS:
            os._exit(130)
        first_signal[:1] = first_signal or [time.monotonic()]
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        config = LocalConfig.from_env()
        running = DevRuntime.read(config.runtime_file)
        if running is not None:
            raise StartupError(f"make dev is already running (pid {running.pid}, {running.api})")
        stack = LocalStack(config)
        stack.start()  # a Ctrl-C meanwhile is remembered: the stack then stops cleanly at once
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        token = plan = None
        if stack.standin is not None:
            plan = stack.standin.plan_of(DEV_USER)
            token = stack.standin.mint(DEV_USER, ttl_seconds=DEV_TOKEN_TTL_SECONDS)
        stack.runtime(os.getpid()).write(config.runtime_file)
        print(banner(stack, config, token, plan), flush=True)
        print(f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
        stopping.wait()
        print("\nStopping...", flush=True)
    finally:
        config.runtime_file.unlink(missing_ok=True)
        stack.stop()
    saved = (
        f"; data saved to {_display(config.dynamodb_file)}" if config.dynamodb_endpoint_url is None else ""
    )
    print(f"Stopped{saved}.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
