"""What every command shares: the running ``make dev`` (or a brief stack), the stand-in's dev endpoints."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from local.config import DEV_TOKEN_TTL_SECONDS, Endpoints, LocalConfig, StartupError, running_dev
from local.stack import LocalStack
from local.web import http_request


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


def mint(
    endpoints: Endpoints,
    user: str,
    plan: str | None = None,
    *,
    org: str | None = None,
    permissions: list[str] | None = None,
) -> str:
    """A dev token for ``user`` (signed in to ``org`` when given, with ``permissions`` there)."""
    body: dict[str, Any] = {"user": user, "ttlSeconds": DEV_TOKEN_TTL_SECONDS}
    body.update({"plan": plan} if plan else {})
    body.update({"org": org} if org else {})
    body.update({"permissions": permissions} if permissions is not None else {})
    return str(ask_standin(endpoints, "/dev/token", body)["access_token"])
