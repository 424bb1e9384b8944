"""What the local tools read from the shell, validated once, and what they share on disk.

Every local command (``make dev``, ``make invoke``, the CLI) builds its settings here, so they
agree on ports, files, plan limits and each function's environment. Bad values become a
``StartupError``: one line for the user, never a traceback.
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

from local.template import ROOT, TEMPLATE_PATH, Template, TemplateError

HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEV_USER = "kp_alice"
LOCAL_USAGE_API_KEY = "local-dev-usage-key"
PLAN_CHECK_FUNCTION = "PlanCheckFunction"
DEV_TOKEN_TTL_SECONDS = 24 * 3600
# Locally a plan change should show on the next request; the deployed default (60 s) would make
# the walkthrough look broken. ENTITLEMENT_CACHE_SECONDS=60 restores it.
LOCAL_ENTITLEMENT_CACHE_SECONDS = "0"
# Fixed fake credentials: moto and DynamoDB Local keep data per access key and region, so every
# local process (dev, workers, invoke, CLI) must use the same ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# DESIGN.md §7 variables a developer may set in the shell to override the template's values.
PASSTHROUGH = (
    "KINDE_AUDIENCE",
    "KINDE_JWKS_URL",
    "ENTITLEMENT_CACHE_SECONDS",
    "MISSING_ENTITLEMENT",
    "USAGE_AUTH",
    "USAGE_API_KEY",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_DEV",
)
# Only these reach a worker from the shell: a function sees what the template gives it, as in Lambda.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


class StartupError(RuntimeError):
    """A problem the user can fix; printed as one line, exit code 1."""


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() then rejects.
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) > 65535:
        raise StartupError(f"{name} must be a port number from 0 to 65535, got {raw!r}")
    return int(raw)


def _url(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StartupError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw.removesuffix("/")


@dataclass(frozen=True)
class LocalConfig:
    """The settings of one local command, from the environment."""

    template_path: Path = TEMPLATE_PATH
    local_dir: Path = ROOT / ".local"
    host: str = HOST
    port: int = DEFAULT_PORT
    kinde_port: int = DEFAULT_PORT + 1
    kinde_issuer_url: str | None = None
    dynamodb_endpoint_url: str | None = None
    plan_limits_json: str = ""
    save_interval_seconds: float = 10.0
    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LocalConfig:
        env = os.environ if environ is None else environ
        template_path = Path(env.get("PLANGUARD_TEMPLATE") or TEMPLATE_PATH)
        template = load(template_path)
        port = _port(env, "PORT", DEFAULT_PORT)
        kinde_port = _port(env, "KINDE_PORT", port + 1 if port else 0)
        try:
            interval = float(env.get("PLANGUARD_SAVE_INTERVAL") or 10)
        except ValueError:
            raise StartupError("PLANGUARD_SAVE_INTERVAL must be a number of seconds") from None
        raw_limits = (
            env.get("PLAN_LIMITS")
            or template_variable(template, "PLAN_LIMITS")
            or json.dumps(DEFAULT_PLAN_LIMITS)
        )
        try:
            limits = parse_plan_limits(raw_limits)
        except ConfigurationError as exc:
            source = "PLAN_LIMITS" if env.get("PLAN_LIMITS") else f"the PlanLimits default in {template_path}"
            raise StartupError(f"{exc} (from {source})") from None
        overrides = {name: env[name] for name in PASSTHROUGH if env.get(name)}
        overrides.setdefault("ENTITLEMENT_CACHE_SECONDS", LOCAL_ENTITLEMENT_CACHE_SECONDS)
        overrides.setdefault("USAGE_API_KEY", LOCAL_USAGE_API_KEY)
        overrides["PLAN_LIMITS"] = json.dumps(limits, separators=(",", ":"))
        return cls(
            template_path=template_path,
            local_dir=Path(env.get("PLANGUARD_LOCAL_DIR") or ROOT / ".local").resolve(),
            port=port,
            kinde_port=kinde_port,
            kinde_issuer_url=_url(env, "KINDE_ISSUER_URL"),
            dynamodb_endpoint_url=_url(env, "DYNAMODB_ENDPOINT_URL"),
            plan_limits_json=overrides["PLAN_LIMITS"],
            save_interval_seconds=max(0.2, interval),
            overrides=overrides,
        )

    @property
    def template(self) -> Template:
        return load(self.template_path)

    @property
    def plan_limits(self) -> PlanLimits:
        return parse_plan_limits(self.plan_limits_json)

    @property
    def dynamodb_file(self) -> Path:
        return self.local_dir / "dynamodb.json"

    @property
    def kinde_file(self) -> Path:
        return self.local_dir / "kinde.json"

    @property
    def runtime_file(self) -> Path:
        return self.local_dir / "dev.json"

    @property
    def standin_issuer(self) -> str:
        """Where ``make dev`` serves the stand-in: tokens minted offline name this issuer."""
        return f"http://{self.host}:{self.kinde_port}"


def load(path: Path) -> Template:
    try:
        return Template(path)
    except TemplateError as exc:
        raise StartupError(str(exc)) from None


def resource_names(template: Template) -> dict[str, str]:
    """What ``!Ref`` of each table gives locally: its logical id (the local tables' names)."""
    return {name: name for name in template.table_definitions()}


def template_variable(template: Template, name: str) -> str | None:
    """``name`` as the template sets it: the first function whose environment gives it a value."""
    names = resource_names(template)
    for function in template.functions():
        try:
            env = template.resolve_environment(function, {}, names)
        except TemplateError:
            continue
        if env.get(name):
            return env[name]
    return None


def function_environment(
    template: Template,
    function: str,
    *,
    issuer: str,
    dynamodb_endpoint: str,
    overrides: Mapping[str, str],
    parent: Mapping[str, str] | None = None,
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
    shell = os.environ if parent is None else parent
    base = {name: shell[name] for name in BASE_ENV if name in shell}
    lambda_env = {
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_SAM_LOCAL": "true",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "PYTHONUNBUFFERED": "1",
    }
    return {**base, **LOCAL_AWS_ENV, **lambda_env, **env}


# -- the runtime file: how make invoke and the CLI find a running make dev ------------------------
@dataclass(frozen=True)
class DevRuntime:
    """What a running ``make dev`` publishes in ``.local/dev.json`` (removed when it stops)."""

    pid: int
    api: str
    issuer: str
    kinde: str | None  # the stand-in's URL; None when a real KINDE_ISSUER_URL is used
    dynamodb: str
    overrides: dict[str, str]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> DevRuntime | None:
        """The running ``make dev`` of this local dir, or None (no file, or a stale one)."""
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            runtime = cls(**data)
        except (OSError, ValueError, TypeError):
            return None
        return runtime if runtime.is_alive() else None

    def is_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        parts = urlsplit(self.api)
        with contextlib.suppress(OSError), socket.create_connection((parts.hostname, parts.port), 1):
            return True
        return False
