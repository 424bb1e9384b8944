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


def test_billing_customer_and_the_organization_settings() -> None:
    assert Settings.from_env(BASE).billing_customer == "user"
    assert not Settings.from_env(BASE).organizations
    assert Settings.from_env(BASE).excluded_org_codes == frozenset()
    assert Settings.from_env(BASE).accounts_write_permission is None
    settings = Settings.from_env(
        {
            **BASE,
            "BILLING_CUSTOMER": "organization",
            "EXCLUDED_ORG_CODES": " org_default, ,org_staff ",
            "ACCOUNTS_WRITE_PERMISSION": "write:tracked_accounts",
            "KINDE_M2M_CLIENT_ID": "m2m",
            "KINDE_M2M_CLIENT_SECRET": "secret",
        }
    )
    assert settings.organizations
    assert settings.excluded_org_codes == {"org_default", "org_staff"}
    assert settings.accounts_write_permission == "write:tracked_accounts"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BILLING_CUSTOMER", "org"),
        ("BILLING_CUSTOMER", "Organization"),
        ("EXCLUDED_ORG_CODES", "org_a,org b"),
        ("EXCLUDED_ORG_CODES", "org/a"),
        ("ACCOUNTS_WRITE_PERMISSION", "write tracked accounts"),
    ],
)
def test_bad_organization_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({**BASE, name: value})


def test_no_m2m_client_by_default_and_the_management_api_on_the_issuer() -> None:
    settings = Settings.from_env({**BASE, "KINDE_M2M_CLIENT_ID": "", "KINDE_M2M_CLIENT_SECRET_PARAM": ""})
    assert not settings.has_m2m_client
    assert settings.management_url == "https://planguard.kinde.com"
    assert settings.kinde_feature_code == "tracked_accounts"
    assert settings.management_audience == "https://planguard.kinde.com/api"


def test_an_m2m_client_with_its_secret_in_ssm_or_locally() -> None:
    deployed = Settings.from_env(
        {
            **BASE,
            "KINDE_M2M_CLIENT_ID": "abc123",
            "KINDE_M2M_CLIENT_SECRET_PARAM": "/plan-guard/kinde-m2m-secret",
            "KINDE_MANAGEMENT_URL": "https://planguard.kinde.com/",
            "KINDE_FEATURE_CODE": "feat_0195",
            "KINDE_MANAGEMENT_AUDIENCE": "https://planguard.kinde.com/api/v1",
        }
    )
    assert deployed.management_audience == "https://planguard.kinde.com/api/v1"
    assert deployed.has_m2m_client
    assert (deployed.management_url, deployed.kinde_feature_code) == (
        "https://planguard.kinde.com",
        "feat_0195",
    )
    local = Settings.from_env(
        {**BASE, "KINDE_M2M_CLIENT_ID": "abc123", "KINDE_M2M_CLIENT_SECRET": "s3cr3t-value"}
    )
    assert local.kinde_m2m_client_secret is not None
    assert local.kinde_m2m_client_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(local)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KINDE_M2M_CLIENT_ID": "abc123"}, "KINDE_M2M_CLIENT_ID: needs KINDE_M2M_CLIENT_SECRET_PARAM"),
        ({"KINDE_M2M_CLIENT_SECRET": "x"}, "KINDE_M2M_CLIENT_SECRET: is set but KINDE_M2M_CLIENT_ID"),
        ({"KINDE_M2M_CLIENT_SECRET_PARAM": "/p"}, "KINDE_M2M_CLIENT_SECRET_PARAM: is set but"),
        ({"KINDE_M2M_CLIENT_ID": "a b", "KINDE_M2M_CLIENT_SECRET": "x"}, "KINDE_M2M_CLIENT_ID"),
        ({"KINDE_M2M_CLIENT_ID": "a", "KINDE_M2M_CLIENT_SECRET_PARAM": "no-slash"}, "_SECRET_PARAM"),
        ({"KINDE_MANAGEMENT_URL": "http://kinde.example.com"}, "KINDE_MANAGEMENT_URL"),
        ({"KINDE_FEATURE_CODE": "tracked accounts"}, "KINDE_FEATURE_CODE"),
    ],
)
def test_bad_m2m_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        Settings.from_env({**BASE, **env})


def test_organization_mode_needs_an_m2m_client() -> None:
    with pytest.raises(ConfigurationError, match="BILLING_CUSTOMER: organization needs an M2M client"):
        Settings.from_env({**BASE, "BILLING_CUSTOMER": "organization"})
