"""The local stack's commands, behind make dev, invoke, token, plan, reconcile and webhook.

Every command but ``dev`` works against the running ``make dev``, or else starts the same stack
briefly over the same ``.local/`` files. Results go to stdout (``TOKEN=$(make token)`` works);
what is said to humans goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from planguard.errors import ApiError
from planguard.repository import AccountRepository, dynamodb_client

from local.config import (
    DEV_TOKEN_TTL_SECONDS,
    DEV_USER,
    PLAN_CHECK_FUNCTION,
    Endpoints,
    LocalConfig,
    StartupError,
    function_environment,
    resource_names,
    running_dev,
)
from local.dynamodb import local_client
from local.functions import Functions
from local.lambda_runtime import stamp_token
from local.stack import LocalStack
from local.template import Template
from local.web import http_request

FORCE_EXIT_AFTER_SECONDS = 2.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def local_stack(config: LocalConfig) -> Iterator[tuple[Endpoints, bool]]:
    """The running ``make dev``'s endpoints, or a stack started for this command: (endpoints, running)."""
    if (running := running_dev(config)) is not None:
        yield running, True
        return
    stack = LocalStack(config, warm=False, log=lambda _line: None).start()  # the outcome, not the logs
    try:
        yield stack.endpoints(os.getpid()), False
    finally:
        stack.stop()


def ask_standin(endpoints: Endpoints, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to a dev endpoint of the stand-in; its 400s (e.g. an unknown plan) as a StartupError."""
    if endpoints.kinde is None:
        raise StartupError(
            f"make dev trusts the real Kinde at {endpoints.issuer}: use Kinde for tokens, plans and webhooks"
        )
    headers = {"Content-Type": "application/json"}
    status, answer = http_request("POST", f"{endpoints.kinde}{path}", json.dumps(body).encode(), headers, 60)
    if status in (400, 404):
        raise StartupError(answer["errors"][0]["message"])
    result: dict[str, Any] = answer
    return result


def mint(endpoints: Endpoints, user: str, plan: str | None = None) -> str:
    body = {"user": user, "ttlSeconds": DEV_TOKEN_TTL_SECONDS, **({"plan": plan} if plan else {})}
    return str(ask_standin(endpoints, "/dev/token", body)["access_token"])


# -- make dev --------------------------------------------------------------------------------------
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
        f"  Dashboard       {api}/   (frontend/; the API's description at {api}/openapi.json)",
        f"  API             {api}   (routes from {_shown(template.path)})",
        f"  Kinde stand-in  {kinde}   (issuer, JWKS, Account API; plans in {_shown(config.kinde_file)})"
        if kinde
        else f"  Kinde           {stack.issuer}   (KINDE_ISSUER_URL: real Kinde, nothing faked)",
        f"  DynamoDB        {stack.dynamodb_url}   (embedded; data in {_shown(config.dynamodb_file)})"
        if stack.moto
        else f"  DynamoDB        {stack.dynamodb_url}   (DYNAMODB_ENDPOINT_URL)",
        f"  Functions       {functions}",
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


# -- make invoke -----------------------------------------------------------------------------------
def function_for_event(template: Template, event: dict[str, Any]) -> str | None:
    """Which function an event is for: its route (API events), or the plan check (Kinde's workflow)."""
    for route in template.routes():
        if route.route_key == event.get("routeKey"):
            return route.function
    return PLAN_CHECK_FUNCTION if "billing" in event.get("context", {}) else None


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


# -- make token / plan / reconcile / webhook -------------------------------------------------------
def token(config: LocalConfig, options: argparse.Namespace) -> int:
    user, plan = options.user, options.plan
    with local_stack(config) as (endpoints, running):
        value = mint(endpoints, user, plan)
    where = (
        f"for make dev at {endpoints.api}"
        if running
        else f"(make dev is not running: valid once it starts, issuer {endpoints.issuer})"
    )
    print(value, flush=True)
    hours = DEV_TOKEN_TTL_SECONDS // 3600
    say(f"Token for {user}{f' on plan {plan}' if plan else ''}, valid {hours} h {where}.")
    return 0


def describe_plan_change(answer: dict[str, Any]) -> tuple[str, int]:
    """The stand-in's answer as text for humans, and the exit code (1 when the check failed)."""
    user, plan = answer["user"], answer["plan"]
    moving = f"{user}: {answer['from']} -> {answer['requested']}"
    if "error" in answer:
        return f"{moving} FAILED: {answer['error']}\n  Kinde stops the change; {user} stays on {plan}.", 1
    usage = (answer["usage"] or {}).get("tracked_accounts")
    hold = answer.get("hold") or {}
    held = (
        f"\n  Downgrade hold: adds limited to {hold['limit']} until {hold['holdUntil']}."
        if hold.get("held")
        else ""
    )
    if answer["allowed"]:
        detail = f" (tracked_accounts: {usage['used']} used, new limit {usage['limit']})" if usage else ""
        if "applyAt" in answer:
            when = f"applies at {answer['applyAt']} (in {answer['applyAfter']:g} s)"
            return f"{moving} ALLOWED{detail}, {when}{held}\n  {user} stays on {plan} until then.", 0
        return f"{moving} APPLIED{detail}{held}\n  {user} is now on {plan}.", 0
    lines = [f"{moving} DENIED", f"  {answer['message']}", *(f"  - {reason}" for reason in answer["reasons"])]
    return "\n".join([*lines, f"  {user} stays on {plan}."]), 0


def plan(config: LocalConfig, options: argparse.Namespace) -> int:
    body = {"user": options.user, "plan": options.plan, "applyAfter": options.apply_after}
    with local_stack(config) as (endpoints, _):
        text, code = describe_plan_change(ask_standin(endpoints, "/dev/plan", body))
    print(text)
    return code


def reconcile(config: LocalConfig, options: argparse.Namespace) -> int:
    """On the local stack's data, or with ``--table`` on a deployed table (default AWS credentials)."""
    user = options.user
    if options.table:
        before, actual = AccountRepository(dynamodb_client(), options.table).reconcile(user)
    else:
        env = config.template.resolve_environment(PLAN_CHECK_FUNCTION, {}, resource_names(config.template))
        with local_stack(config) as (endpoints, _):
            before, actual = AccountRepository(local_client(endpoints.dynamodb), env["TABLE_NAME"]).reconcile(
                user
            )
    if before == actual:
        print(f"{user}: counter {before}, {actual} accounts stored: no change.")
    else:
        print(f"{user}: counter was {before}, {actual} accounts stored: repaired (now {actual}).")
    return 0


def webhook(config: LocalConfig, options: argparse.Namespace) -> int:
    """The stand-in signs a Kinde webhook and delivers it to the local API; prints what it answered."""
    body = (
        {"redeliver": options.redeliver, "newWebhookId": options.new_id}
        if options.redeliver
        else {"type": options.type, "user": options.user, "ageSeconds": options.age}
    )
    with local_stack(config) as (endpoints, _):
        answer = ask_standin(endpoints, "/dev/webhook", body)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    if not answer["delivered"]:
        say(f"error: {answer.get('error') or 'the API answered ' + str(answer.get('status'))}")
    return 0 if answer["delivered"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole system locally on PORT (default 3000)").set_defaults(
        run=dev
    )
    invoke_parser = commands.add_parser("invoke", help="run one function with one event on the local data")
    invoke_parser.add_argument("function", nargs="?", metavar="FUNCTION")
    invoke_parser.add_argument("event", metavar="EVENT")
    token_parser = commands.add_parser("token", help="print a dev access token (and set the user's plan)")
    token_parser.add_argument("--plan")
    plan_parser = commands.add_parser(
        "plan", help="request a plan change as Kinde would (runs the plan check)"
    )
    plan_parser.add_argument("--plan", required=True)
    plan_parser.add_argument(
        "--apply-after", type=float, default=0, help="apply an allowed change after S seconds"
    )
    reconcile_parser = commands.add_parser(
        "reconcile", help="recount a user's accounts and repair the counter"
    )
    reconcile_parser.add_argument("--table", help="a deployed table (stack output AccountsTableName)")
    webhook_parser = commands.add_parser("webhook", help="send a signed Kinde webhook to the local API")
    webhook_parser.add_argument("--type", default="user.deleted")
    webhook_parser.add_argument("--redeliver", metavar="WEBHOOK_ID", help="send an earlier webhook again")
    webhook_parser.add_argument(
        "--new-id", action="store_true", help="with --redeliver: under a new webhook-id, as a replayer would"
    )
    webhook_parser.add_argument(
        "--age",
        type=float,
        default=0,
        metavar="SECONDS",
        help="sign the event as this old (negative: in the future), to try stale and future events",
    )
    for sub, run in (
        (invoke_parser, invoke),
        (token_parser, token),
        (plan_parser, plan),
        (reconcile_parser, reconcile),
        (webhook_parser, webhook),
    ):
        sub.add_argument("--user", default=DEV_USER, help=f"default {DEV_USER}")
        sub.set_defaults(run=run)
    options = parser.parse_args(argv)
    try:
        return int(options.run(LocalConfig.from_env(), options))
    except StartupError as exc:
        say(f"error: {exc}")
        return 1
    except ApiError as exc:  # the repository's storage errors (e.g. DynamoDB unreachable)
        say(f"error: {exc.code}: {exc.message}")
        return 1
    except OSError as exc:  # e.g. the running make dev's stand-in stopped answering
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
