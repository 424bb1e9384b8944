"""``make dev``: the whole system on one machine until Ctrl-C, and the banner it prints."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from local.config import DEV_TOKEN_TTL_SECONDS, DEV_USER, LocalConfig, StartupError, running_dev
from local.stack import LocalStack

FORCE_EXIT_AFTER_SECONDS = 2.0


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def banner(stack: LocalStack, config: LocalConfig, token: str | None, plan: str | None) -> str:
    """The URLs, then curl commands for this template's routes that work as pasted."""
    assert stack.gateway is not None
    api, kinde, template = stack.gateway.url, stack.standin.url if stack.standin else None, stack.template
    routed = [route.function for route in template.routes()]
    functions = ", ".join(
        f"{name} ({routed.count(name)} route{'' if routed.count(name) == 1 else 's'})"
        for name in template.functions()
        if template.deployed(name, config.template_parameters)
    )
    limits = config.plan_limits
    by_size = sorted(
        limits, key=lambda c: (limits[c]["tracked_accounts"] is None, limits[c]["tracked_accounts"])
    )
    smallest, largest = by_size[0], by_size[-1]
    auth, usage_key = '-H "Authorization: Bearer $TOKEN"', config.overrides["USAGE_API_KEY"]
    lines = [
        "",
        "Plan Guard is running locally (no AWS account, no Docker).",
        "",
        f"  Dashboard       {api}/   (frontend/, signs in with Kinde; the API's description at "
        f"{api}/openapi.json)",
        f"  API             {api}   (routes from {_shown(template.path)})",
        f"  Kinde stand-in  {kinde}   (sign-in page, tokens, Account API, portal; plans in "
        f"{_shown(config.kinde_file)})"
        if kinde
        else f"  Kinde           {stack.issuer}   (KINDE_ISSUER_URL: real Kinde, nothing faked)",
        f"  DynamoDB        {stack.dynamodb_url}   (embedded; data in {_shown(config.dynamodb_file)})"
        if stack.moto
        else f"  DynamoDB        {stack.dynamodb_url}   (DYNAMODB_ENDPOINT_URL)",
        f"  Functions       {functions}",
        *(
            [
                "  Usage reports   on (REPORT_USAGE): each count change -> UsageReportFunction -> Kinde's"
                f" meter_usage; what Kinde received: {kinde or stack.issuer}/dev/meter_usage?user={DEV_USER}"
            ]
            if config.report_usage
            else []
        ),
        *(
            f"  warning: {name} failed to start: {error} (its routes answer 502 until fixed)"
            for name, error in sorted(stack.init_errors.items())
        ),
        "",
        f"Try it (a dev token for {DEV_USER} on plan {plan}, valid {DEV_TOKEN_TTL_SECONDS // 3600} h):"
        if token
        else "Try it (with an access token from your Kinde app):",
        f"  export TOKEN={token or '<access token>'}",
        f"  curl -s '{api}/accounts?limit=10' {auth}",
        f"  curl -s -X POST {api}/accounts {auth} -H 'Content-Type: application/json'"
        """ -d '{"name": "Electricity", "accountNumber": "001234"}'""",
        f"  curl -s {api}/usage {auth}",
        f'  curl -s {api}/api/users/accounts/count/{DEV_USER} -H "x-api-key: {usage_key}"',
        f"  curl -s '{api}/plan-check?plan={smallest}' {auth}",
        "  ...and with an id from the answers: "
        "GET /accounts/{id}, PATCH /accounts/{id}, DELETE /accounts/{id}",
    ]
    if kinde:
        lines += [
            "",
            "Change plans as Kinde would (runs PlanCheckFunction; a downgrade over the limit is denied):",
            f"""  curl -s -X POST {kinde}/dev/plan -d '{{"user": "{DEV_USER}", "plan": "{smallest}"}}'""",
            f"  make plan USER={DEV_USER} PLAN={smallest}      make token USER={DEV_USER} PLAN={largest}",
        ]
    return "\n".join([*lines, "", "Ctrl-C stops (the data is saved)."])


def dev(config: LocalConfig, _options: argparse.Namespace) -> int:
    """Serve until Ctrl-C/SIGTERM, then save the data and exit 0."""
    started = time.monotonic()
    stopping = threading.Event()
    first_signal: list[float] = []

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        # One Ctrl-C arrives twice (from the terminal, and forwarded by `uv run`): only a second
        # press, a moment later, means "leave now without saving".
        if first_signal and time.monotonic() - first_signal[0] > FORCE_EXIT_AFTER_SECONDS:
            os._exit(130)
        first_signal[:1] = first_signal or [time.monotonic()]
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if (running := running_dev(config)) is not None:
        raise StartupError(f"make dev is already running (pid {running.pid}, {running.api})")
    stack = LocalStack(config).start()  # a Ctrl-C meanwhile is remembered: it then stops at once
    try:
        token = plan = None
        if stack.standin is not None:
            plan = stack.standin.plan_of(DEV_USER)
            token = stack.standin.mint(DEV_USER, ttl_seconds=DEV_TOKEN_TTL_SECONDS)
        stack.endpoints(os.getpid()).write(config.running_file)
        print(banner(stack, config, token, plan), flush=True)
        print(f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
        stopping.wait()
        print("\nStopping...", flush=True)
    finally:
        config.running_file.unlink(missing_ok=True)
        stack.stop()
    saved = "" if config.dynamodb_endpoint_url else f"; data saved to {_shown(config.dynamodb_file)}"
    print(f"Stopped{saved}.", flush=True)
    return 0
