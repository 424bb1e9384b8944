"""``make invoke``: one function, one event, like ``sam local invoke`` but without Docker.

The function runs in its own worker process with its template environment, against the local
data: the running ``make dev``'s DynamoDB and Kinde stand-in, or else the persisted files served
by a throwaway stack (saved back afterwards). Events with the ``DEV_TOKEN`` placeholder get a
fresh token (sample tokens would have expired). For a real ``sam local invoke`` where Docker
exists, ``--stamp`` only writes such an event, and ``--sam-env-vars`` writes SAM's ``--env-vars``
file that points the container at the running ``make dev``.

    python -m local.invoke [FUNCTION] EVENT [--user kp_...]
    python -m local.invoke --stamp EVENT [--user kp_...] > event.json
    python -m local.invoke --sam-env-vars > env.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from local.config import (
    DEV_USER,
    LOCAL_AWS_ENV,
    PLAN_CHECK_FUNCTION,
    DevRuntime,
    LocalConfig,
    StartupError,
    function_environment,
)
from local.gateway import Router
from local.lambda_runtime import needs_token, stamp_token
from local.stack import Session, dev_token, open_session
from local.template import Template
from local.workers import Worker, WorkerError, WorkerSpec


def load_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text())
    except OSError as exc:
        raise StartupError(f"cannot read the event {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StartupError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(event, dict):
        raise StartupError(f"{path} must hold a JSON object")
    return event


def function_for_event(template: Template, event: dict[str, Any]) -> str | None:
    """Which function an event is for: its route (API events), or the plan check (Kinde's workflow)."""
    route_key = event.get("routeKey")
    routes = template.routes()
    if isinstance(route_key, str):
        for route in routes:
            if route.route_key == route_key:
                return route.function
    http = (event.get("requestContext") or {}).get("http") or {}
    if isinstance(http.get("method"), str) and isinstance(event.get("rawPath"), str):
        matched = Router(routes).match(http["method"].upper(), event["rawPath"])
        if matched:
            return matched[0].function
    context = event.get("context")
    if isinstance(context, dict) and ("billing" in context or "workflow" in context):
        return PLAN_CHECK_FUNCTION if PLAN_CHECK_FUNCTION in template.functions() else None
    return None


def invoke(session: Session, template: Template, function: str, event: dict[str, Any]) -> tuple[bool, Any]:
    """Run one invocation in a fresh worker: (handler returned, result or Lambda's error shape)."""
    env = function_environment(
        template,
        function,
        issuer=session.issuer,
        dynamodb_endpoint=session.dynamodb_url,
        overrides=session.overrides,
    )
    try:
        worker = Worker(WorkerSpec.from_template(template, function, env))
    except WorkerError as exc:
        return False, exc.error
    try:
        result = worker.invoke(event)
    except WorkerError as exc:
        worker.kill()
        return False, exc.error
    finally:
        worker.stop()
    where = "make dev" if session.running_dev else "the persisted local data"
    print(f"{function}: {result.duration_ms:.0f} ms against {where}", file=sys.stderr)
    return (True, result.payload) if result.ok else (False, result.error)


def sam_env_vars(config: LocalConfig, template: Template) -> dict[str, dict[str, str]]:
    """SAM's ``--env-vars`` file: for each function, the variables the template declares (SAM
    overrides no others) with the values the running ``make dev`` gives that function.

    A container on ``--docker-network host`` shares this machine's 127.0.0.1, so ``make dev``'s
    URLs (its DynamoDB, the Kinde stand-in) reach it unchanged. A declared variable that ``make
    dev`` leaves out (``USAGE_API_KEY_PARAM``: no SSM locally) is emptied, which means unset.
    """
    runtime = DevRuntime.read(config.runtime_file)
    if runtime is None:
        raise StartupError(
            f"make dev is not running (for {config.local_dir}): start it first, "
            "the container uses its DynamoDB and Kinde stand-in"
        )
    env_vars: dict[str, dict[str, str]] = {}
    for function, spec in template.functions().items():
        local_env = function_environment(
            template,
            function,
            issuer=runtime.issuer,
            dynamodb_endpoint=runtime.dynamodb,
            overrides=runtime.overrides,
            parent={},
        )
        env_vars[function] = {name: local_env.get(name, "") for name in spec.environment}
    return env_vars


def docker_hint(step: str, function: str, event: str, env_vars: str, issuer: str) -> str:
    """The shell lines that run one event in Docker against the running ``make dev``."""
    credentials = " ".join(f"{name}={value}" for name, value in LOCAL_AWS_ENV.items())
    return (
        "For Docker (after make build, with make dev running):\n"
        f"  {step}\n"
        f"  export {credentials}\n"
        f"  sam local invoke {function} -e {event} --env-vars {env_vars} --docker-network host "
        f"--parameter-overrides KindeIssuerUrl={issuer}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("args", nargs="*", metavar="[FUNCTION] EVENT")
    parser.add_argument("--user", default=DEV_USER, help=f"the token's user (default {DEV_USER})")
    parser.add_argument(
        "--stamp", action="store_true", help="print the event with a fresh token; run nothing"
    )
    parser.add_argument(
        "--sam-env-vars",
        action="store_true",
        help="print the --env-vars JSON for sam local invoke against the running make dev; run nothing",
    )
    options = parser.parse_args(argv)
    if options.sam_env_vars:
        if options.args or options.stamp:
            parser.error("--sam-env-vars takes no EVENT and no --stamp")
    elif not 1 <= len(options.args) <= 2 or (options.stamp and len(options.args) != 1):
        parser.error("give [FUNCTION] EVENT, --stamp EVENT, or --sam-env-vars")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = LocalConfig.from_env()
        template = config.template
        if options.sam_env_vars:
            env_vars = sam_env_vars(config, template)
            print(json.dumps(env_vars, indent=2, ensure_ascii=False))
            issuer = next(iter(env_vars.values()), {}).get("KINDE_ISSUER_URL", "<issuer>")
            step = "python -m local.invoke --stamp events/<event>.json > /tmp/event.json"
            hint = docker_hint(step, "<Function>", "/tmp/event.json", "<this file>", issuer)
            print(hint, file=sys.stderr)
            return 0
        event = load_event(Path(options.args[-1]))
        if options.stamp:
            if needs_token(event):
                fresh = os.environ.get("DEV_TOKEN") or dev_token(config, options.user)[0]
                event = stamp_token(event, fresh)
            print(json.dumps(event, indent=2, ensure_ascii=False))
            issuer = config.kinde_issuer_url or config.standin_issuer
            target = function_for_event(template, event) or "<Function>"
            step = "python -m local.invoke --sam-env-vars > /tmp/env.json"
            print(docker_hint(step, target, "<this file>", "/tmp/env.json", issuer), file=sys.stderr)
            return 0
        function: str | None = (
            options.args[0] if len(options.args) == 2 else function_for_event(template, event)
        )
        if function is None:
            raise StartupError(f"cannot tell which function {options.args[-1]} is for: give FN=<LogicalId>")
        if function not in template.functions():
            raise StartupError(
                f"no function {function} in template.yaml; known: {', '.join(template.functions())}"
            )
        session = open_session(config)
        try:
            if needs_token(event):
                event = stamp_token(event, os.environ.get("DEV_TOKEN") or session.mint(options.user))
            ok, result = invoke(session, template, function, event)
        finally:
            session.close()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
