"""Organization mode's rules in isolation: who a request acts for (NO_ORGANIZATION, FORBIDDEN)
and the organization's limit from the Management API (cached, re-read within a budget, a missing
billing customer never kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from planguard.entitlements import REFRESH_INTERVAL_SECONDS, Entitlement
from planguard.errors import EntitlementUnavailable, Forbidden, NoOrganization
from planguard.organizations import OrganizationEntitlements, member
from planguard.settings import Settings

BASE = {
    "TABLE_NAME": "t",
    "KINDE_ISSUER_URL": "https://x.kinde.com",
    "BILLING_CUSTOMER": "organization",
    "KINDE_M2M_CLIENT_ID": "m2m",
    "KINDE_M2M_CLIENT_SECRET": "secret",
}
SUBSCRIBED = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Organization:
    code: str
    is_default: bool
    billing_customer_id: str | None


@dataclass(frozen=True)
class PlanSubscription:
    code: str
    subscribed_on: datetime | None


@dataclass(frozen=True)
class CustomerEntitlement:
    limit: int | None
    missing: bool
    plans: tuple[PlanSubscription, ...]


class FakeApi:
    """The two Management API reads, answering from dictionaries and counting calls."""

    def __init__(self) -> None:
        self.organizations: dict[str, Organization | Exception] = {
            "org_acme": Organization("org_acme", False, "customer_acme"),
            "org_default": Organization("org_default", True, None),
            "org_new": Organization("org_new", False, None),
        }
        self.entitlements: dict[str, CustomerEntitlement | Exception] = {
            "customer_acme": CustomerEntitlement(5, False, (PlanSubscription("pro", SUBSCRIBED),)),
        }
        self.calls: list[tuple[str, str]] = []

    def organization(self, code: str, deadline: float | None) -> Organization | None:
        self.calls.append(("organization", code))
        found = self.organizations.get(code)
        if isinstance(found, Exception):
            raise found
        return found

    def customer_entitlement(
        self, customer_id: str, feature_code: str, deadline: float | None
    ) -> CustomerEntitlement:
        self.calls.append(("entitlement", customer_id))
        assert feature_code == "tracked_accounts"
        found = self.entitlements[customer_id]
        if isinstance(found, Exception):
            raise found
        return found


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(api: FakeApi, clock: Clock) -> OrganizationEntitlements:
    return OrganizationEntitlements(api, feature_code="tracked_accounts", cache_seconds=60, clock=clock)


def claims(org: Any = "org_acme", permissions: Any = ()) -> dict[str, Any]:
    found: dict[str, Any] = {"sub": "kp_ann", "permissions": list(permissions)}
    if org is not None:
        found["org_code"] = org
    return found


def test_the_limit_is_cached_per_organization(
    source: OrganizationEntitlements, api: FakeApi, clock: Clock
) -> None:
    assert source.entitlement("org_acme", "token", "tracked_accounts") == Entitlement(5)
    assert source.entitlement("org_acme", "token", "tracked_accounts") == Entitlement(5, source="cache")
    assert api.calls == [("organization", "org_acme"), ("entitlement", "customer_acme")]
    clock.now += 61
    assert source.entitlement("org_acme", "token", "tracked_accounts") == Entitlement(5)
    # The billing customer id is kept for the container's life: only the entitlement is read again.
    assert api.calls[2:] == [("entitlement", "customer_acme")]


def test_no_billing_customer_is_a_missing_entitlement_and_is_asked_again(
    source: OrganizationEntitlements, api: FakeApi, clock: Clock
) -> None:
    assert source.entitlement("org_new", "token", "tracked_accounts") == Entitlement(0, missing=True)
    api.organizations["org_new"] = Organization("org_new", False, "customer_new")
    api.entitlements["customer_new"] = CustomerEntitlement(3, False, ())
    # The cached refusal stands until the re-read, which asks Kinde for the organization again.
    assert source.refreshed("org_new", "token", "tracked_accounts") == Entitlement(3)
    assert [call for call in api.calls if call[0] == "organization"] == [("organization", "org_new")] * 2


def test_the_re_read_budget_is_one_per_organization_per_interval(
    source: OrganizationEntitlements, api: FakeApi, clock: Clock
) -> None:
    now = source.account_refreshed("org_acme", "token", "tracked_accounts")
    assert now is not None and now.entitlement == Entitlement(5)
    assert now.plans == (("pro", SUBSCRIBED.timestamp()),)
    assert source.refreshed("org_acme", "token", "tracked_accounts") is None  # budget spent
    clock.now += REFRESH_INTERVAL_SECONDS
    assert source.refreshed("org_acme", "token", "tracked_accounts") == Entitlement(5)


def test_missing_unlimited_and_kinde_failures(api: FakeApi, clock: Clock) -> None:
    lenient = OrganizationEntitlements(
        api, feature_code="tracked_accounts", missing_unlimited=True, clock=clock
    )
    assert lenient.entitlement("org_new", "t", "tracked_accounts") == Entitlement(None, missing=True)
    api.entitlements["customer_acme"] = EntitlementUnavailable(retry_after_seconds=7)
    with pytest.raises(EntitlementUnavailable):
        lenient.entitlement("org_acme", "t", "tracked_accounts")


@pytest.mark.parametrize(
    ("token_claims", "env"),
    [
        (claims(org=None), {}),
        (claims(org=""), {}),
        (claims(org="org bad"), {}),
        (claims(org=["org_acme"]), {}),
        (claims(org="org_default"), {}),
        (claims(org="org_missing"), {}),
        (claims(org="org_acme"), {"EXCLUDED_ORG_CODES": "org_staff,org_acme"}),
    ],
)
def test_no_organization(
    source: OrganizationEntitlements, token_claims: dict[str, Any], env: dict[str, str]
) -> None:
    settings = Settings.from_env({**BASE, **env})
    with pytest.raises(NoOrganization):
        member("kp_ann", "token", token_claims, None, settings=settings, source=source)


def test_writing_needs_the_permission_when_one_is_set(source: OrganizationEntitlements) -> None:
    open_settings = Settings.from_env(BASE)
    assert member("kp_ann", "t", claims(), None, settings=open_settings, source=source).can_write
    strict = Settings.from_env({**BASE, "ACCOUNTS_WRITE_PERMISSION": "write:tracked_accounts"})
    reader = member("kp_ann", "t", claims(permissions=["read:x"]), None, settings=strict, source=source)
    assert (reader.org_code, reader.user_id, reader.can_write) == ("org_acme", "kp_ann", False)
    with pytest.raises(Forbidden):
        reader.require_write()
    granted = claims(permissions=["write:tracked_accounts"])
    writer = member("kp_ann", "t", granted, None, settings=strict, source=source)
    assert writer.can_write
    writer.require_write()
