"""The local tools' settings, read from the shell once, and where a running ``make dev`` answers.

Bad values are a ``StartupError``: one line for the user, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from planguard.settings import ConfigurationError, PlanLimits, parse_plan_limits

from local import ROOT
from local.dynamodb import LOCAL_AWS_ENV
from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET
from local.kinde.oauth import DEFAULT_TOKEN_SECONDS
from local.template import TEMPLATE_PATH, Template, TemplateError

DEV_USER = "kp_alice"
PLAN_CHECK_FUNCTION = "PlanCheckFunction"
DEV_TOKEN_TTL_SECONDS = 24 * 3600
# What a developer may set in the shell to override the template's values for every function.
PASSTHROUGH = (
    "KINDE_AUDIENCE",
    "KINDE_JWKS_URL",
    "ENTITLEMENT_CACHE_SECONDS",
    "MISSING_ENTITLEMENT",
    "USAGE_AUTH",
    "USAGE_API_KEY",
    "DOWNGRADE_HOLD_SECONDS",
    "BILLING_CUSTOMER",
    "EXCLUDED_ORG_CODES",
    "ACCOUNTS_WRITE_PERMISSION",
    "DOWNGRADE_HOLD_MAX_SECONDS",
    "TOKEN_LIFETIME_SECONDS",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_DEV",
    "KINDE_MANAGEMENT_URL",
    "KINDE_MANAGEMENT_AUDIENCE",
    "KINDE_FEATURE_CODE",
)
# The M2M application: the stand-in serves it and the functions use it (local defaults, either
# may be set); with a real KINDE_ISSUER_URL only what the shell sets reaches the functions.
M2M_VARIABLES = {"KINDE_M2M_CLIENT_ID": DEV_M2M_CLIENT_ID, "KINDE_M2M_CLIENT_SECRET": DEV_M2M_CLIENT_SECRET}
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


@dataclass(frozen=True)
class LocalConfig:
    template: Template
    port: int
    kinde_port: int
    kinde_issuer_url: str | None  # a real Kinde instead of the stand-in
    dynamodb_endpoint_url: str | None  # an external DynamoDB instead of the embedded one
    plan_limits: PlanLimits
    overrides: dict[str, str]  # given to every function
    save_interval_seconds: float
    dynamodb_file: Path
    kinde_file: Path
    running_file: Path  # a running make dev's Endpoints
    # The template's CorsAllowedOrigins (empty: none, as deployed); a frontend on another origin.
    cors_origins: str | None = None
    # The stand-in's access tokens' lifetime (its token answers' expires_in).
    kinde_token_seconds: int = DEFAULT_TOKEN_SECONDS
    # REPORT_USAGE: the table's stream on, and its counter changes to UsageReportFunction.
    report_usage: bool = False

    @property
    def template_parameters(self) -> dict[str, str]:
        """The template parameters the local settings stand for (which resources exist)."""
        return {"ReportUsageToKinde": "true" if self.report_usage else "false"}

    @classmethod
    def from_env(cls) -> LocalConfig:
        env = os.environ
        try:
            template = Template(Path(env.get("PLANGUARD_TEMPLATE") or TEMPLATE_PATH))
        except TemplateError as exc:
            raise StartupError(str(exc)) from None
        try:
            limits = parse_plan_limits(env.get("PLAN_LIMITS") or template.parameter_defaults()["PlanLimits"])
        except ConfigurationError as exc:
            raise StartupError(f"{exc} (from PLAN_LIMITS)") from None
        overrides = {name: env[name] for name in PASSTHROUGH if env.get(name)}
        # Locally a plan change should show on the next request (the deployed default is 60 s).
        overrides.setdefault("ENTITLEMENT_CACHE_SECONDS", "0")
        overrides.setdefault("USAGE_API_KEY", "local-dev-usage-key")
        real_kinde = bool(env.get("KINDE_ISSUER_URL", "").strip())
        for name, default in M2M_VARIABLES.items():
            if value := env.get(name) or ("" if real_kinde else default):
                overrides[name] = value
        overrides["PLAN_LIMITS"] = json.dumps(limits, separators=(",", ":"))
        port = _port(env, "PORT", 3000)
        local_dir = Path(env.get("PLANGUARD_LOCAL_DIR") or ROOT / ".local").resolve()
        return cls(
            template=template,
            port=port,
            kinde_port=_port(env, "KINDE_PORT", port + 1 if port else 0),
            kinde_issuer_url=_url(env, "KINDE_ISSUER_URL"),
            dynamodb_endpoint_url=_url(env, "DYNAMODB_ENDPOINT_URL"),
            plan_limits=limits,
            overrides=overrides,
            save_interval_seconds=_seconds(env, "PLANGUARD_SAVE_INTERVAL", 10.0),
            dynamodb_file=local_dir / "dynamodb.json",
            kinde_file=local_dir / "kinde.json",
            running_file=local_dir / "dev.json",
            cors_origins=env.get("CORS_ALLOWED_ORIGINS"),
            kinde_token_seconds=_token_seconds(env),
            report_usage=_switch(env, "REPORT_USAGE"),
        )


def _switch(env: Mapping[str, str], name: str) -> bool:
    """true/false, also 1/0 (unset: false)."""
    raw = env.get(name, "").strip().lower() or "false"
    if raw not in ("true", "false", "1", "0"):
        raise StartupError(f"{name} must be true, false, 1 or 0, got {raw!r}")
    return raw in ("true", "1")


def _token_seconds(env: Mapping[str, str]) -> int:
    """KINDE_TOKEN_SECONDS: whole seconds above 10 (Kinde's SDK refreshes a token 10 s before it expires)."""
    raw = env.get("KINDE_TOKEN_SECONDS", "").strip() or str(DEFAULT_TOKEN_SECONDS)
    if not re.fullmatch(r"[0-9]{1,7}", raw) or int(raw) <= 10:
        raise StartupError(f"KINDE_TOKEN_SECONDS must be a whole number of seconds above 10, got {raw!r}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise StartupError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def resource_names(template: Template) -> dict[str, str]:
    """What ``!Ref`` of each table gives locally: its logical id (the local tables' names)."""
    return {name: name for name in template.table_definitions()}


def function_environment(
    template: Template, function: str, *, issuer: str, dynamodb_endpoint: str, overrides: Mapping[str, str]
) -> dict[str, str]:
    """A function's whole environment: the template's, pointed at the local services."""
    spec = template.functions()[function]
    env = template.resolve_environment(function, {"KindeIssuerUrl": issuer}, resource_names(template))
    env.pop("USAGE_API_KEY_PARAM", None)  # no SSM locally: the key comes from USAGE_API_KEY
    env.pop("KINDE_M2M_CLIENT_SECRET_PARAM", None)  # nor the M2M secret: KINDE_M2M_CLIENT_SECRET
    return {
        **{name: os.environ[name] for name in BASE_ENV if name in os.environ},
        **LOCAL_AWS_ENV,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "LAMBDA_TASK_ROOT": str(spec.code_uri),
        "_HANDLER": spec.handler,
        "PYTHONUNBUFFERED": "1",
        **env,
        **overrides,
        "KINDE_ISSUER_URL": issuer,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
    }


@dataclass(frozen=True)
class Endpoints:
    """Where a local stack answers; a running ``make dev`` publishes its own in ``dev.json``."""

    pid: int
    api: str
    kinde: str | None  # the stand-in; None when a real KINDE_ISSUER_URL is trusted
    issuer: str
    dynamodb: str
    overrides: dict[str, str]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1))


def running_dev(config: LocalConfig) -> Endpoints | None:
    """The running ``make dev`` of this local dir: its file names a live pid whose API answers."""
    try:
        endpoints = Endpoints(**json.loads(config.running_file.read_text()))
        os.kill(endpoints.pid, 0)
        parts = urlsplit(endpoints.api)
        socket.create_connection((parts.hostname, parts.port), 1).close()
    except (OSError, ValueError):  # no file, a stale one, or a dead process
        return None
    return endpoints
