"""A CLI for walking the product in a shell: dev tokens, Kinde plan changes, counter repair.

    python -m local.cli token [--user kp_...] [--plan pro]   (make token USER=... PLAN=...)
    python -m local.cli plan --plan free [--user kp_...]      (make plan USER=... PLAN=...)
    python -m local.cli reconcile [--user kp_...] [--table T] (make reconcile USER=... [TABLE=...])

Each works against the running ``make dev`` (found in ``.local/dev.json``), or, when it is not
running, on the same persisted files. The token alone goes to stdout, so
``TOKEN=$(make token USER=kp_alice PLAN=pro)`` works; everything said to humans goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from planguard.errors import ApiError
from planguard.repository import AccountRepository, dynamodb_client

from local.config import DEV_TOKEN_TTL_SECONDS, DEV_USER, LocalConfig, StartupError, template_variable
from local.dynamodb import local_client
from local.stack import dev_token, open_session
from local.template import Template


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table_name(template: Template) -> str:
    """The accounts table as the functions name it (``TABLE_NAME``), resolved locally."""
    name = template_variable(template, "TABLE_NAME")
    if name is None:
        raise StartupError("no function in template.yaml sets TABLE_NAME")
    return name


def token(config: LocalConfig, user: str, plan: str | None, ttl: int) -> int:
    value, runtime = dev_token(config, user, plan, ttl)
    if runtime is not None:
        where = f"for make dev at {runtime.api}"
    else:
        where = f"(make dev is not running: valid once it starts, issuer {config.standin_issuer})"
    print(value, flush=True)
    plan_note = f" on plan {plan}" if plan else ""
    say(f"Token for {user}{plan_note}, valid {ttl // 3600} h {where}.")
    return 0


def describe_plan_change(answer: dict[str, Any]) -> tuple[str, int]:
    """The stand-in's answer as text for humans, and the exit code (1 when the check failed)."""
    user, requested = answer.get("user"), answer.get("requested")
    moving = f"{user}: {answer.get('from', '?')} -> {requested}"
    if "error" in answer:
        stays = f"Kinde stops the change; {user} stays on {answer.get('plan')}."
        return f"{moving} FAILED: {answer['error']}\n  {stays}", 1
    usage = ((answer.get("usage") or {}).get("tracked_accounts")) or None
    if answer.get("allowed"):
        detail = f" (tracked_accounts: {usage['used']} used, new limit {usage['limit']})" if usage else ""
        return f"{moving} APPLIED{detail}\n  {user} is now on {answer.get('plan')}.", 0
    lines = [f"{moving} DENIED", f"  {answer.get('message')}"]
    lines += [f"  - {reason}" for reason in answer.get("reasons") or []]
    lines.append(f"  {user} stays on {answer.get('plan')}.")
    return "\n".join(lines), 0


def quiet(_line: str) -> None:
    """Function logs of a throwaway stack: the CLI prints the outcome, not the handler's log."""


def plan(config: LocalConfig, user: str, plan_code: str, as_json: bool) -> int:
    session = open_session(config, log=quiet)
    try:
        answer = session.request_plan_change(user, plan_code)
    finally:
        session.close()
    text, code = describe_plan_change(answer)
    if as_json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        print(text)
    return code


def reconcile(config: LocalConfig, user: str, deployed_table: str | None = None) -> int:
    """On the local stack's data, or with ``--table`` on a deployed table (default AWS credentials)."""
    if deployed_table:
        before, actual = AccountRepository(dynamodb_client(), deployed_table).reconcile(user)
    else:
        session = open_session(config, log=quiet)
        try:
            table = table_name(config.template)
            repository = AccountRepository(local_client(session.dynamodb_url), table)
            before, actual = repository.reconcile(user)
        finally:
            session.close()
    if before == actual:
        print(f"{user}: counter {before}, {actual} accounts stored: no change.")
    else:
        print(f"{user}: counter was {before}, {actual} accounts stored: repaired (now {actual}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token_parser = commands.add_parser("token", help="print a dev access token (and set the user's plan)")
    token_parser.add_argument("--user", default=DEV_USER)
    token_parser.add_argument("--plan")
    token_parser.add_argument("--ttl", type=int, default=DEV_TOKEN_TTL_SECONDS, help="seconds")
    plan_parser = commands.add_parser(
        "plan", help="request a plan change as Kinde would (runs the plan check)"
    )
    plan_parser.add_argument("--user", default=DEV_USER)
    plan_parser.add_argument("--plan", required=True)
    plan_parser.add_argument("--json", action="store_true", help="print the stand-in's answer as JSON")
    reconcile_parser = commands.add_parser(
        "reconcile", help="recount a user's accounts and repair the counter"
    )
    reconcile_parser.add_argument("--user", default=DEV_USER)
    reconcile_parser.add_argument(
        "--table", help="a deployed table (stack output AccountsTableName): uses your AWS credentials"
    )
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = LocalConfig.from_env()
        if options.command == "token":
            return token(config, options.user, options.plan, options.ttl)
        if options.command == "plan":
            return plan(config, options.user, options.plan, options.json)
        return reconcile(config, options.user, options.table)
    except StartupError as exc:
        say(f"error: {exc}")
        return 1
    except ApiError as exc:  # the repository's storage errors (e.g. DynamoDB unreachable)
        say(f"error: {exc.code}: {exc.message}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
