"""Kinde's entitlements list read fresh (``KindeAccountApi.account_refreshed``) against the stand-in:
every page, the plans with when they were applied, the re-read budget it shares, and failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from planguard.entitlements import AccountNow, Entitlement, read_page, subscribed_at
from planguard.errors import EntitlementUnavailable

from local.kinde import Fault, KindeStandIn
from tests.integration.test_entitlements import FEATURE, USER, FakeClock, client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def page(
    plans: list[dict[str, Any]], entitlements: list[dict[str, Any]], after: str | None
) -> dict[str, Any]:
    metadata = {"has_more": after is not None, "next_page_starting_after": after}
    return {"data": {"plans": plans, "entitlements": entitlements}, "metadata": metadata}


def entitlement(feature: str, limit: int | None, key: str = "feature_key") -> dict[str, Any]:
    return {"id": f"entitlement_{feature}", key: feature, "entitlement_limit_max": limit}


def test_the_plan_and_when_it_was_applied(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    applied = kinde.subscribed[USER]
    now = client(kinde, clock).account_refreshed(USER, kinde.mint(USER), FEATURE)
    assert now == AccountNow(Entitlement(5), (("pro", float(int(applied))),))


def test_every_page_is_read_and_the_feature_found_on_the_last(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["pro"] = {"a_feature": 1, "b_feature": 2, FEATURE: 5}
    kinde.page_size = 1
    kinde.set_plan(USER, "pro")
    calls = kinde.account_api_calls
    now = client(kinde, clock).account_refreshed(USER, kinde.mint(USER), FEATURE)
    assert now is not None and now.entitlement == Entitlement(5)
    assert kinde.account_api_calls == calls + 3  # three pages of one entitlement each
    assert [plan for plan, _ in now.plans] == ["pro"] * 3  # the stand-in repeats the plan on each page


def test_plans_only_on_a_later_page_and_the_older_feature_code(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.faults.extend(
        [
            Fault(status=200, body=page([], [entitlement(FEATURE, 4, "feature_code")], "entitlement_x")),
            Fault(
                status=200, body=page([{"key": "basic", "subscribed_on": "2030-01-01T00:00:00Z"}], [], None)
            ),
        ]
    )
    now = client(kinde, clock).account_refreshed(USER, kinde.mint(USER), FEATURE)
    when = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert now == AccountNow(Entitlement(4), (("basic", when),))


def test_the_fresh_entitlement_is_cached_and_the_budget_is_shared(
    kinde: KindeStandIn, clock: FakeClock
) -> None:
    kinde.set_plan(USER, "free")
    api = client(kinde, clock, cache_seconds=60)
    token = kinde.mint(USER)
    assert api.account_refreshed(USER, token, FEATURE) is not None
    assert api.entitlement(USER, token, FEATURE) == Entitlement(3, source="cache")
    assert api.refreshed(USER, token, FEATURE) is None  # the same user, within 5 s: no second re-read
    assert api.account_refreshed(USER, token, FEATURE) is None
    assert api.account_refreshed("kp_someone_else", kinde.mint("kp_someone_else"), FEATURE) is not None
    clock.now += 5
    assert api.refreshed(USER, token, FEATURE) == Entitlement(3)


def test_a_plan_without_the_feature_is_a_missing_entitlement(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["starter"] = {"other_feature": 1}
    kinde.set_plan(USER, "starter")
    now = client(kinde, clock).account_refreshed(USER, kinde.mint(USER), FEATURE)
    assert now is not None and (now.entitlement.limit, now.entitlement.missing) == (0, True)


@pytest.mark.parametrize(
    "answers",
    [
        [Fault(status=500)] * 3,
        [Fault(status=200, body=b"not json")],
        [Fault(status=404)],
        [Fault(status=200, body={"data": {}, "metadata": {"has_more": True}})],  # more, but not where
        [Fault(status=200, body=page([], [], "same")), Fault(status=200, body=page([], [], "same"))],
        [Fault(status=200, body=page([], [], f"p{n}")) for n in range(20)],
    ],
    ids=["5xx", "not-json", "404", "more-without-a-cursor", "a-repeated-page", "endless"],
)
def test_a_list_that_cannot_be_read_to_its_end_is_unavailable(
    kinde: KindeStandIn, clock: FakeClock, answers: list[Fault]
) -> None:
    kinde.faults.extend(answers)
    with pytest.raises(EntitlementUnavailable):
        client(kinde, clock).account_refreshed(USER, kinde.mint(USER), FEATURE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-01T00:00:00Z", 1893456000.0),
        ("2030-01-01T00:00:00.500+00:00", 1893456000.5),
        ("2030-01-01T01:00:00+01:00", 1893456000.0),
        ("2030-01-01T00:00:00", 1893456000.0),  # no zone: UTC
        ("yesterday", None),
        ("", None),
        (None, None),
        (1893456000, None),
    ],
)
def test_subscribed_on(value: object, expected: float | None) -> None:
    assert subscribed_at(value) == expected


def test_a_page_keeps_what_it_can_read() -> None:
    read = read_page(
        {
            "data": {
                "plans": [{"key": "pro", "subscribed_on": "bad"}, {"key": ""}, "pro", {"subscribed_on": "x"}],
                "entitlements": [entitlement(FEATURE, 5), "junk"],
            },
            "metadata": {"has_more": False},
        }
    )
    assert (read.plans, read.entitlements, read.next_cursor) == (
        [("pro", None)],
        [entitlement(FEATURE, 5)],
        None,
    )
