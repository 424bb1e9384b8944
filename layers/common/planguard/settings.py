"""Settings: one model, read from the environment once per container.

Bad values raise ``ConfigurationError`` naming the variable on the first invocation: the function
answers 500 ``INTERNAL_ERROR`` (the error body) and logs that message, and the local stack refuses to
start, rather than running with a half-understood configuration.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from planguard.ids import PLAN_CODE_RULE, is_plan_code

FEATURE_KEY = "tracked_accounts"

# The one place the plan table lives. The template's PlanLimits parameter and the
# Kinde workflow's default mirror it; tests check both.
DEFAULT_PLAN_LIMITS: dict[str, dict[str, int | None]] = {
    "free": {FEATURE_KEY: 3},
    "pro": {FEATURE_KEY: 5},
}

PlanLimits = dict[str, dict[str, int | None]]
BillingCustomer = Literal["user", "organization"]
_LOOPBACK_HTTP = re.compile(r"http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/|$)")
# Organization codes are validated like Kinde user ids: a safe charset, never a format guess.
_ORG_CODE = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")
# A permission key as Kinde's dashboard allows one (e.g. write:tracked_accounts).
_PERMISSION = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")


class ConfigurationError(RuntimeError):
    """The environment does not describe a working configuration."""


def parse_plan_limits(raw: str | Mapping[str, Any]) -> PlanLimits:
    """Validate ``PLAN_LIMITS``: ``{plan code: {feature: int >= 0 | null}}``, every plan has the feature."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"PLAN_LIMITS is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(data, dict) or not data:
        raise ConfigurationError(
            'PLAN_LIMITS must be a non-empty object like {"free":{"tracked_accounts":3}}'
        )
    limits: PlanLimits = {}
    for plan, features in data.items():
        if not is_plan_code(plan):
            # The hold route refuses any other code, so every downgrade to it would fail closed.
            raise ConfigurationError(
                f"PLAN_LIMITS plan codes must be non-empty strings of {PLAN_CODE_RULE}, got {plan!r}"
            )
        if not isinstance(features, dict) or FEATURE_KEY not in features:
            raise ConfigurationError(f'PLAN_LIMITS["{plan}"] must be an object with a "{FEATURE_KEY}" key')
        parsed: dict[str, int | None] = {}
        for feature, raw_limit in features.items():
            # JSON has one number type: the workflow reads 3.0 as 3, so this must too.
            integral = isinstance(raw_limit, float) and raw_limit.is_integer()
            limit = int(raw_limit) if integral else raw_limit
            valid = limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0)
            if not valid:
                raise ConfigurationError(
                    f'PLAN_LIMITS["{plan}"]["{feature}"] must be a whole number >= 0 or null (unlimited), '
                    f"got {limit!r}"
                )
            parsed[feature] = limit
        limits[plan] = parsed
    return limits


class Secret(str):
    """A string that never shows itself in a repr or a log line."""

    def __repr__(self) -> str:
        return "Secret('**********')"

    def get_secret_value(self) -> str:
        return str.__str__(self)


def _text(raw: str) -> str:
    return raw


def _url(raw: str) -> str:
    if not raw.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL such as https://example.kinde.com")
    if raw.startswith("http://") and not _LOOPBACK_HTTP.match(raw):
        raise ValueError("must be https (plain http only for 127.0.0.1 or localhost)")
    return raw.removesuffix("/")


def _seconds(high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().isascii() or not raw.strip().isdigit():
            raise ValueError("must be a whole number of seconds")
        value = int(raw)
        if value > high:
            raise ValueError(f"must be at most {high}")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of: {', '.join(allowed)}")
        return raw

    return parse


def _org_codes(raw: str) -> frozenset[str]:
    """Comma-separated organization codes; blanks between commas are ignored."""
    codes = frozenset(code.strip() for code in raw.split(",") if code.strip())
    bad = sorted(code for code in codes if not _ORG_CODE.fullmatch(code))
    if bad:
        raise ValueError(f"must be comma-separated organization codes, got {', '.join(map(repr, bad))}")
    return codes


def _permission(raw: str) -> str:
    value = raw.strip()
    if not _PERMISSION.fullmatch(value):
        raise ValueError("must be one permission key such as write:tracked_accounts")
    return value


def _token_text(raw: str) -> str:
    """An identifier sent to Kinde as it is (a client id, a feature code): no spaces, no controls."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,200}", raw):
        raise ValueError("must be 1-200 letters, digits, '_', '.', ':' or '-'")
    return raw


def _ssm_name(raw: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9_.\-/]{1,1010}", raw):
        raise ValueError("must be an SSM parameter name such as /plan-guard/kinde-m2m-client-secret")
    return raw


def _plan_limits(raw: str) -> PlanLimits:
    try:
        return parse_plan_limits(raw)
    except ConfigurationError as exc:
        raise ValueError(str(exc)) from exc


# How long Kinde may take to apply a plan change (a downgrade hold lasts this, plus the cache).
DOWNGRADE_HOLD_SECONDS = 300
# A downgrade Kinde applies late (at the end of a billing period) keeps its hold this long at most,
# counted from when the hold was placed: a billing period and a margin.
DOWNGRADE_HOLD_MAX_SECONDS = 35 * 86400


@dataclass(frozen=True)
class Settings:
    """Everything the functions read from their environment.

    Plain stdlib rather than pydantic: the usage-count function sits on Kinde's plan-change path,
    and pydantic's import alone is a third of its cold start.
    """

    table_name: str
    kinde_issuer_url: str
    kinde_audience: str | None = None
    kinde_jwks_url: str | None = None
    entitlement_cache_seconds: int = 60
    downgrade_hold_seconds: int = DOWNGRADE_HOLD_SECONDS
    downgrade_hold_max_seconds: int = DOWNGRADE_HOLD_MAX_SECONDS
    # The longest an access token of the Kinde environment lives: a deleted user's tokens are
    # refused this long after Kinde's user.deleted.
    token_lifetime_seconds: int = 86400
    missing_entitlement: Literal["deny", "unlimited"] = "deny"
    plan_limits: PlanLimits = field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))
    usage_auth: Literal["api_key", "none"] = "api_key"
    usage_api_key: Secret | None = field(default=None, repr=False)
    usage_api_key_param: str | None = None
    dynamodb_endpoint_url: str | None = None
    idempotency_table_name: str | None = None
    # Who Kinde bills: users (each user's own accounts) or organizations (shared by the members).
    billing_customer: BillingCustomer = "user"
    # Organizations never served as customers (beside Kinde's default one, found by its flag).
    excluded_org_codes: frozenset[str] = frozenset()
    # When set, adding, editing and deleting need this permission in the token (organization mode).
    accounts_write_permission: str | None = None

    @property
    def organizations(self) -> bool:
        """Organization mode: the accounts, count, hold and limit are the organization's."""
        return self.billing_customer == "organization"

    # Kinde's Management API, called with a machine-to-machine client's token (optional: unset,
    # nothing calls it). Its secret: KINDE_M2M_CLIENT_SECRET locally, an SSM SecureString deployed.
    kinde_management_url: str | None = None
    kinde_management_audience: str | None = None
    kinde_m2m_client_id: str | None = None
    kinde_m2m_client_secret: Secret | None = field(default=None, repr=False)
    kinde_m2m_client_secret_param: str | None = None
    kinde_feature_code: str = FEATURE_KEY

    @property
    def hold_seconds(self) -> int:
        """How long a downgrade hold binds adds: Kinde applying the change, then every warm
        container's entitlement cache expiring."""
        return self.downgrade_hold_seconds + self.entitlement_cache_seconds

    @property
    def jwks_url(self) -> str:
        return self.kinde_jwks_url or f"{self.kinde_issuer_url}/.well-known/jwks"

    @property
    def management_url(self) -> str:
        """Where the Management API and its token endpoint are: Kinde does not serve them on a
        custom domain, so a deployment on one names its ``https://<sub>.kinde.com`` here."""
        return self.kinde_management_url or self.kinde_issuer_url

    @property
    def management_audience(self) -> str:
        """The audience an M2M token asks for: ``{management_url}/api`` as Kinde's SDKs send it
        (one Kinde page writes ``/api/v1``: docs/KINDE.md), unless set."""
        return self.kinde_management_audience or f"{self.management_url}/api"

    @property
    def has_m2m_client(self) -> bool:
        return self.kinde_m2m_client_id is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from upper-case variables; empty strings count as unset."""
        values: dict[str, Any] = {}
        problems = []
        for name, parse in _PARSERS.items():
            raw = environ.get(name.upper())
            if not raw:
                if name in _REQUIRED:
                    problems.append(f"{name.upper()}: is required")
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                problems.append(f"{name.upper()}: {exc}")
        problems += _m2m_problems(values)
        if values.get("billing_customer") == "organization" and "kinde_m2m_client_id" not in values:
            # An organization's limit is read only through the Management API.
            problems.append("BILLING_CUSTOMER: organization needs an M2M client (KINDE_M2M_CLIENT_ID)")
        if problems:
            raise ConfigurationError(f"Invalid configuration: {'; '.join(problems)}")
        return cls(**values)


def _m2m_problems(values: Mapping[str, Any]) -> list[str]:
    """An M2M client needs its id and one place for its secret; a secret without an id is a
    half-done configuration, not "no client"."""
    has_id = "kinde_m2m_client_id" in values
    secrets = [
        name for name in ("kinde_m2m_client_secret", "kinde_m2m_client_secret_param") if name in values
    ]
    if has_id and not secrets:
        return [
            "KINDE_M2M_CLIENT_ID: needs KINDE_M2M_CLIENT_SECRET_PARAM (an SSM SecureString's name) "
            "or, locally, KINDE_M2M_CLIENT_SECRET"
        ]
    if secrets and not has_id:
        return [f"{secrets[0].upper()}: is set but KINDE_M2M_CLIENT_ID is not"]
    return []


_REQUIRED = {"table_name", "kinde_issuer_url"}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "table_name": _text,
    "kinde_issuer_url": _url,
    "kinde_audience": _text,
    "kinde_jwks_url": _text,
    "entitlement_cache_seconds": _seconds(3600),
    "downgrade_hold_seconds": _seconds(86400),
    "downgrade_hold_max_seconds": _seconds(400 * 86400),
    "token_lifetime_seconds": _seconds(400 * 86400),
    "missing_entitlement": _choice("deny", "unlimited"),
    "plan_limits": _plan_limits,
    "usage_auth": _choice("api_key", "none"),
    "usage_api_key": Secret,
    "usage_api_key_param": _text,
    "dynamodb_endpoint_url": _text,
    "idempotency_table_name": _text,
    "billing_customer": _choice("user", "organization"),
    "excluded_org_codes": _org_codes,
    "accounts_write_permission": _permission,
    "kinde_management_url": _url,
    "kinde_management_audience": _url,
    "kinde_m2m_client_id": _token_text,
    "kinde_m2m_client_secret": Secret,
    "kinde_m2m_client_secret_param": _ssm_name,
    "kinde_feature_code": _token_text,
}


@functools.cache
def get_settings() -> Settings:
    """The settings of this container, read once (clear with ``get_settings.cache_clear()``)."""
    return Settings.from_env(os.environ)
