"""``make token``, ``make plan`` and ``make webhook``: what the Kinde stand-in does on request."""

from __future__ import annotations

import argparse
import json
from typing import Any

from local.commands.common import ask_standin, local_stack, mint, say
from local.config import DEV_TOKEN_TTL_SECONDS, LocalConfig


def _permissions(raw: str | None) -> list[str] | None:
    return None if raw is None else [item.strip() for item in raw.split(",") if item.strip()]


def token(config: LocalConfig, options: argparse.Namespace) -> int:
    user, plan, org = options.user, options.plan, options.org
    with local_stack(config) as (endpoints, running):
        value = mint(endpoints, user, plan, org=org, permissions=_permissions(options.permissions))
    where = (
        f"for make dev at {endpoints.api}"
        if running
        else f"(make dev is not running: valid once it starts, issuer {endpoints.issuer})"
    )
    print(value, flush=True)
    hours = DEV_TOKEN_TTL_SECONDS // 3600
    whose = f" in {org}" if org else ""
    say(f"Token for {user}{whose}{f' on plan {plan}' if plan else ''}, valid {hours} h {where}.")
    return 0


def describe_plan_change(answer: dict[str, Any]) -> tuple[str, int]:
    """The stand-in's answer as text for humans, and the exit code (1 when the check failed)."""
    user, plan = answer.get("org") or answer["user"], answer["plan"]
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
        if answer.get("fails"):
            never = f"{moving} ALLOWED{detail}, but its payment fails: never applied{held}"
            return f"{never}\n  {user} stays on {plan}.", 0
        if "applyAt" in answer:
            when = f"applies at {answer['applyAt']} (in {answer['applyAfter']:g} s)"
            return f"{moving} ALLOWED{detail}, {when}{held}\n  {user} stays on {plan} until then.", 0
        return f"{moving} APPLIED{detail}{held}\n  {user} is now on {plan}.", 0
    lines = [f"{moving} DENIED", f"  {answer['message']}", *(f"  - {reason}" for reason in answer["reasons"])]
    return "\n".join([*lines, f"  {user} stays on {plan}."]), 0


def plan(config: LocalConfig, options: argparse.Namespace) -> int:
    body = {
        "user": options.user,
        "plan": options.plan,
        "applyAfter": options.apply_after,
        "fails": options.fails,
        **({"org": options.org} if options.org else {}),
    }
    with local_stack(config) as (endpoints, _):
        text, code = describe_plan_change(ask_standin(endpoints, "/dev/plan", body))
    print(text)
    return code


def webhook(config: LocalConfig, options: argparse.Namespace) -> int:
    """The stand-in signs a Kinde webhook and delivers it to the local API; prints what it answered."""
    body = (
        {"redeliver": options.redeliver, "newWebhookId": options.new_id}
        if options.redeliver
        else {"type": options.type, "org": options.org, "ageSeconds": options.age}
        if options.org
        else {"type": options.type, "user": options.user, "ageSeconds": options.age}
    )
    with local_stack(config) as (endpoints, _):
        answer = ask_standin(endpoints, "/dev/webhook", body)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    if not answer["delivered"]:
        say(f"error: {answer.get('error') or 'the API answered ' + str(answer.get('status'))}")
    return 0 if answer["delivered"] else 1
