"""What the local tools read from the shell, validated once, and where a running stack answers.

Every local command builds its settings here, so they agree on ports, files, plan limits and
each function's environment. Bad values become a ``StartupError``: one line for the user, never a
traceback. A running ``make dev`` is found by one rule: ``.local/dev.json`` (its URLs and pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from planguard.settings import DEFAULT_PLAN_LIMITS, ConfigurationError, PlanLimits, parse_plan_limits

from local.dynamodb import LOCAL_AWS_ENV
from local.template import ROOT, TEMPLATE_PATH, Template, TemplateError

HOST = "127.0.0.1"
DEV_USER = "kp_alice"
LOCAL_USAGE_API_KEY = "local-dev-usage-key"
PLAN_CHECK_FUNCTION = "PlanCheckFunction"
DEV_TOKEN_TTL_SECONDS = 24 * 3600
# Variables a developer may set in the shell to override the template's values for every function.
PASSTHROUGH = (
    "KINDE_AUDIENCE",
    "KINDE_JWKS_URL",
    "ENTITLEMENT_CACHE_SECONDS",
    "MISSING_ENTITLEMENT",
    "USAGE_AUTH",
    "USAGE_API_KEY",
    "DOWNGRADE_HOLD_SECONDS",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_DEV",
)
# Only these reach a function from the shell: it sees what the template gives it, as in Lambda.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")


class StartupError(RuntimeError):
    """A problem the user can fix; printed as one line, exit code 1."""


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() then rejects or misreads.
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) > 65535:
        raise StartupError(f"{name} must be a port number from 0 to 65535, got {raw!r}")
    return int(raw)


def _url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    parts = urlsplit(raw)
    if raw and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise StartupError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.removesuffix("/") or None


def load(path: Path) -> Template:
    try:
        return Template(path)
    except TemplateError as exc:
        raise StartupError(str(exc)) from None


@dataclass(frozen=True)
class LocalConfig:
    """The settings of one local command, from the environment."""

    template_path: Path = TEMPLATE_PATH
    local_dir: Path = ROOT / ".local"
    port: int = 3000
    kinde_port: int = 3001
    kinde_issuer_url: str | None = None  # a real Kinde instead of the stand-in
    dynamodb_endpoint_url: str | None = None  # an external DynamoDB instead of the embedded one
    save_interval_seconds: float = 10.0
    overrides: dict[str, str] = field(default_factory=dict)  # given to every function

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalConfig:
        env = os.environ if environ is None else environ
        template_path = Path(env.get("PLANGUARD_TEMPLATE") or TEMPLATE_PATH)
        template = load(template_path)
        port = _port(env, "PORT", 3000)
        try:
            interval = float(env.get("PLANGUARD_SAVE_INTERVAL") or 10)
        except ValueError:
            raise StartupError("PLANGUARD_SAVE_INTERVAL must be a number of seconds") from None
        raw_limits = env.get("PLAN_LIMITS") or template_variable(template, "PLAN_LIMITS")
        try:
            limits = parse_plan_limits(raw_limits or json.dumps(DEFAULT_PLAN_LIMITS))
        except ConfigurationError as exc:
            source = "PLAN_LIMITS" if env.get("PLAN_LIMITS") else f"the PlanLimits default in {template_path}"
            raise StartupError(f"{exc} (from {source})") from None
        overrides = {name: env[name] for name in PASSTHROUGH if env.get(name)}
        # Locally a plan change should show on the next request (the deployed default is 60 s).
        overrides.setdefault("ENTITLEMENT_CACHE_SECONDS", "0")
        overrides.setdefault("USAGE_API_KEY", LOCAL_USAGE_API_KEY)
        overrides["PLAN_LIMITS"] = json.dumps(limits, separators=(",", ":"))
        return cls(
            template_path=template_path,
            local_dir=Path(env.get("PLANGUARD_LOCAL_DIR") or ROOT / ".local").resolve(),
            port=port,
            kinde_port=_port(env, "KINDE_PORT", port + 1 if port else 0),
            kinde_issuer_url=_url(env, "KINDE_ISSUER_URL"),
            dynamodb_endpoint_url=_url(env, "DYNAMODB_ENDPOINT_URL"),
            save_interval_seconds=max(0.2, interval),
            overrides=overrides,
        )

    @property
    def template(self) -> Template:
        return load(self.template_path)

    @property
    def plan_limits(self) -> PlanLimits:
        return parse_plan_limits(self.overrides["PLAN_LIMITS"])

    @property
    def dynamodb_file(self) -> Path:
        return self.local_dir / "dynamodb.json"

    @property
    def kinde_file(self) -> Path:
        return self.local_dir / "kinde.json"

    @property
    def running_file(self) -> Path:
        return self.local_dir / "dev.json"


def resource_names(template: Template) -> dict[str, str]:
    """What ``!Ref`` of each table gives locally: its logical id (the local tables' names)."""
    return {name: name for name in template.table_definitions()}


def template_variable(template: Template, name: str) -> str | None:
    """``name`` as the template sets it: the first function whose environment gives it a value."""
    for function in template.functions():
        with contextlib.suppress(TemplateError):
            if value := template.resolve_environment(function, {}, resource_names(template)).get(name):
                return value
    return None


def function_environment(
    template: Template,
    function: str,
    *,
    issuer: str,
    dynamodb_endpoint: str,
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """A function's whole environment: the template's, pointed at the local services."""
    spec = template.functions()[function]
    try:
        env = template.resolve_environment(function, {"KindeIssuerUrl": issuer}, resource_names(template))
    except TemplateError as exc:
        raise StartupError(str(exc)) from None
    env.update(overrides)
    env.pop("USAGE_API_KEY_PARAM", None)  # no SSM locally: the key comes from USAGE_API_KEY
    env["KINDE_ISSUER_URL"] = issuer
    env["DYNAMODB_ENDPOINT_URL"] = dynamodb_endpoint
    lambda_env = {
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "PYTHONUNBUFFERED": "1",
    }
    base = {name: os.environ[name] for name in BASE_ENV if name in os.environ}
    return {**base, **LOCAL_AWS_ENV, **lambda_env, **env}


@dataclass(frozen=True)
class Endpoints:
    """Where a local stack answers; a running ``make dev`` publishes its own in ``.local/dev.json``."""

    pid: int
    api: str
    kinde: str | None  # the stand-in; None when a real KINDE_ISSUER_URL is trusted
    issuer: str
    dynamodb: str
    overrides: dict[str, str]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)


def running_dev(config: LocalConfig) -> Endpoints | None:
    """The running ``make dev`` of this local dir: its file names a live pid whose API answers."""
    try:
        data: dict[str, Any] = json.loads(config.running_file.read_text())
        endpoints = Endpoints(**data)
        os.kill(endpoints.pid, 0)
        parts = urlsplit(endpoints.api)
        socket.create_connection((parts.hostname, parts.port), 1).close()
    except (OSError, ValueError, TypeError):  # no file, a stale one, or a dead process
        return None
    return endpoints
