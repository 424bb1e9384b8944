"""Settings read once from the environment, with errors that name the variable."""

from __future__ import annotations

import pytest
from planguard.settings import DEFAULT_PLAN_LIMITS, ConfigurationError, Settings, parse_plan_limits

BASE = {"TABLE_NAME": "AccountsTable", "KINDE_ISSUER_URL": "https://planguard.kinde.com/"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.kinde_issuer_url == "https://planguard.kinde.com"
    assert settings.jwks_url == "https://planguard.kinde.com/.well-known/jwks"
    assert settings.entitlement_cache_seconds == 60
    assert settings.missing_entitlement == "deny"
    assert settings.usage_auth == "api_key"
    assert settings.plan_limits == DEFAULT_PLAN_LIMITS
    assert settings.kinde_audience is None


def test_whole_floats_are_accepted_as_the_workflow_reads_them() -> None:
    assert parse_plan_limits('{"free":{"tracked_accounts":3.0}}') == {"free": {"tracked_accounts": 3}}


def test_empty_strings_are_unset() -> None:
    settings = Settings.from_env({**BASE, "KINDE_AUDIENCE": "", "PLAN_LIMITS": ""})
    assert settings.kinde_audience is None
    assert settings.plan_limits == DEFAULT_PLAN_LIMITS


def test_explicit_values() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "KINDE_JWKS_URL": "https://planguard.kinde.com/.well-known/jwks.json",
            "ENTITLEMENT_CACHE_SECONDS": "0",
            "MISSING_ENTITLEMENT": "unlimited",
            "PLAN_LIMITS": '{"free":{"tracked_accounts":1},"biz":{"tracked_accounts":null}}',
            "USAGE_AUTH": "none",
        }
    )
    assert settings.jwks_url.endswith("jwks.json")
    assert settings.plan_limits == {"free": {"tracked_accounts": 1}, "biz": {"tracked_accounts": None}}
    assert (settings.entitlement_cache_seconds, settings.missing_entitlement, settings.usage_auth) == (
        0,
        "unlimited",
        "none",
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KINDE_ISSUER_URL": "https://x.kinde.com"}, "TABLE_NAME"),
        ({"TABLE_NAME": "t"}, "KINDE_ISSUER_URL"),
        ({**BASE, "KINDE_ISSUER_URL": "planguard.kinde.com"}, "KINDE_ISSUER_URL"),
        ({**BASE, "ENTITLEMENT_CACHE_SECONDS": "soon"}, "ENTITLEMENT_CACHE_SECONDS"),
        ({**BASE, "ENTITLEMENT_CACHE_SECONDS": "-1"}, "ENTITLEMENT_CACHE_SECONDS"),
        ({**BASE, "MISSING_ENTITLEMENT": "allow"}, "MISSING_ENTITLEMENT"),
        ({**BASE, "USAGE_AUTH": "open"}, "USAGE_AUTH"),
        ({**BASE, "PLAN_LIMITS": "{free: 3}"}, "PLAN_LIMITS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        Settings.from_env(env)


# Bad PLAN_LIMITS values: the shared table, tests/unit/test_plan_limits_table.py.
