"""Settings: one pydantic model, read from the environment once per container.

Bad values raise ``ConfigurationError`` naming the variable on the first invocation: the function
answers 500 ``INTERNAL_ERROR`` (the error body) and logs that message, and the local stack refuses to
start, rather than running with a half-understood configuration.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

FEATURE_KEY = "tracked_accounts"

# The one place the plan table lives. The template's PlanLimits parameter and the
# Kinde workflow's default mirror it; tests check both.
DEFAULT_PLAN_LIMITS: dict[str, dict[str, int | None]] = {
    "free": {FEATURE_KEY: 3},
    "pro": {FEATURE_KEY: 5},
}

PlanLimits = dict[str, dict[str, int | None]]
_LOOPBACK_HTTP = re.compile(r"http://(127\.0\.0\.1|localhost)(:[0-9]+)?(/|$)")


class ConfigurationError(RuntimeError):
    """The environment does not describe a working configuration."""


def parse_plan_limits(raw: str | Mapping[str, Any]) -> PlanLimits:
    """Validate ``PLAN_LIMITS``: ``{plan: {feature: int >= 0 | null}}``, every plan has the feature."""
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
        if not isinstance(plan, str) or not plan.strip():
            raise ConfigurationError("PLAN_LIMITS plan codes must be non-empty strings")
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


class Settings(BaseModel):
    """Everything the functions read from their environment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(min_length=1)
    kinde_issuer_url: str = Field(min_length=1)
    kinde_audience: str | None = None
    kinde_jwks_url: str | None = None
    entitlement_cache_seconds: int = Field(default=60, ge=0, le=3600)
    downgrade_hold_seconds: int = Field(default=300, ge=0, le=86400)
    missing_entitlement: Literal["deny", "unlimited"] = "deny"
    plan_limits: PlanLimits = Field(default_factory=lambda: dict(DEFAULT_PLAN_LIMITS))
    usage_auth: Literal["api_key", "none"] = "api_key"
    usage_api_key: SecretStr | None = None
    usage_api_key_param: str | None = None
    dynamodb_endpoint_url: str | None = None
    idempotency_table_name: str | None = None

    @field_validator("kinde_issuer_url")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://example.kinde.com")
        if value.startswith("http://") and not _LOOPBACK_HTTP.match(value):
            raise ValueError("must be https (plain http only for 127.0.0.1 or localhost)")
        return value.removesuffix("/")

    @field_validator("plan_limits", mode="before")
    @classmethod
    def _plan_limits(cls, value: Any) -> PlanLimits:
        try:
            return parse_plan_limits(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from exc

    @property
    def hold_seconds(self) -> int:
        """How long a downgrade hold binds adds: Kinde applying the change, then every warm
        container's entitlement cache expiring."""
        return self.downgrade_hold_seconds + self.entitlement_cache_seconds

    @property
    def jwks_url(self) -> str:
        return self.kinde_jwks_url or f"{self.kinde_issuer_url}/.well-known/jwks"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from upper-case variables; empty strings count as unset."""
        values = {name: environ[name.upper()] for name in cls.model_fields if environ.get(name.upper())}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigurationError(f"Invalid configuration: {problems}") from None


@functools.cache
def get_settings() -> Settings:
    """The settings of this container, read once (clear with ``get_settings.cache_clear()``)."""
    return Settings.from_env(os.environ)
