"""The Account API client against the Kinde stand-in on 127.0.0.1, faults included."""

from __future__ import annotations

import time

import pytest
from planguard.entitlements import KindeAccountApi
from planguard.errors import EntitlementUnavailable, Unauthorized

from local.kinde import Fault, KindeStandIn

USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"
FEATURE = "tracked_accounts"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(kinde: KindeStandIn, clock: FakeClock, **kwargs: object) -> KindeAccountApi:
    return KindeAccountApi(kinde.url, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def test_limit_from_the_plan(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    result = client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert (result.limit, result.missing, result.source) == (5, False, "kinde")


def test_null_limit_is_unlimited(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["business"] = {FEATURE: None}
    kinde.set_plan(USER, "business")
    assert client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE).limit is None


def test_int32_max_is_unlimited(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["business"] = {FEATURE: 2_147_483_647}
    kinde.set_plan(USER, "business")
    assert client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE).limit is None


def test_404_is_a_missing_entitlement_denied_by_default(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["basic"] = {"other_feature": 1}
    kinde.set_plan(USER, "basic")
    result = client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert (result.limit, result.missing) == (0, True)
    assert kinde.account_api_calls == 1


def test_missing_entitlement_can_mean_unlimited(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.plan_limits["basic"] = {"other_feature": 1}
    kinde.set_plan(USER, "basic")
    result = client(kinde, clock, missing_unlimited=True).entitlement(USER, kinde.mint(USER), FEATURE)
    assert (result.limit, result.missing) == (None, True)


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"org_code": "org_1"}, "metadata": {}},
        {"data": {"entitlement": None}},
        {"data": {"entitlement": {"feature_key": "another_feature", "entitlement_limit_max": 9}}},
    ],
)
def test_200_without_the_entitlement_is_missing(kinde: KindeStandIn, clock: FakeClock, body: object) -> None:
    kinde.faults.append(Fault(status=200, body=body))
    result = client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert (result.limit, result.missing) == (0, True)


def test_429_is_retried_after_the_rate_limit_reset(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    kinde.faults.append(Fault(status=429, headers={"RateLimit-Reset": "1"}))
    assert client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE).limit == 5
    assert clock.slept == [1.0]
    assert kinde.account_api_calls == 2


def test_429_with_a_long_retry_after_gives_up_at_once(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.faults.append(Fault(status=429, headers={"Retry-After": "30"}))
    with pytest.raises(EntitlementUnavailable) as caught:
        client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert caught.value.headers["Retry-After"] == "30"
    assert clock.slept == []
    assert kinde.account_api_calls == 1


def test_500_is_retried_then_fails_with_503(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.faults.extend([Fault(status=500)] * 3)
    with pytest.raises(EntitlementUnavailable) as caught:
        client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert caught.value.status == 503
    assert caught.value.code == "ENTITLEMENT_ERROR"
    assert int(caught.value.headers["Retry-After"]) >= 1
    assert kinde.account_api_calls == 3  # bounded
    assert len(clock.slept) == 2


def test_500_then_success(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    kinde.faults.append(Fault(status=503))
    assert client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE).limit == 5


@pytest.mark.parametrize("status", [401, 403])
def test_token_refused_is_401_not_retried(kinde: KindeStandIn, clock: FakeClock, status: int) -> None:
    """Kinde refusing the caller's own token: the token is no good, not an outage."""
    kinde.faults.append(Fault(status=status))
    with pytest.raises(Unauthorized) as caught:
        client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE)
    assert caught.value.status == 401
    assert kinde.account_api_calls == 1


def test_timeout_is_bounded_by_the_remaining_time(kinde: KindeStandIn, clock: FakeClock) -> None:
    """A slow Kinde: the read timeout shrinks to what the Lambda has left, and no retry outlives it."""
    kinde.faults.append(Fault(status=200, delay_seconds=3.0))
    started = time.monotonic()
    deadline = started + 2.8  # the invocation has 2.8 s left

    with pytest.raises(EntitlementUnavailable):
        client(kinde, clock).entitlement(USER, kinde.mint(USER), FEATURE, deadline=deadline)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed  # read timeout 2.8 - 1 margin - 1.5 connect = 0.3 s
    assert clock.slept == []
    assert kinde.account_api_calls == 1


def test_unreachable_kinde_is_503(clock: FakeClock) -> None:
    unreachable = KindeAccountApi("http://127.0.0.1:9", clock=clock, sleep=clock.sleep)
    with pytest.raises(EntitlementUnavailable):
        unreachable.entitlement(USER, "token", FEATURE)
    assert len(clock.slept) == 2


def test_cache_one_call_for_many_reads(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    api = client(kinde, clock, cache_seconds=60)
    token = kinde.mint(USER)
    sources = [api.entitlement(USER, token, FEATURE).source for _ in range(10)]
    assert sources == ["kinde"] + ["cache"] * 9
    assert kinde.account_api_calls == 1
    clock.now += 61
    assert api.entitlement(USER, token, FEATURE).source == "kinde"
    assert kinde.account_api_calls == 2


def test_cache_is_per_user(kinde: KindeStandIn, clock: FakeClock) -> None:
    other = "kp_other"
    kinde.set_plan(USER, "pro")
    api = client(kinde, clock, cache_seconds=60)
    assert api.entitlement(USER, kinde.mint(USER), FEATURE).limit == 5
    assert api.entitlement(other, kinde.mint(other), FEATURE).limit == 3


def test_failures_are_not_cached(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    api = client(kinde, clock, cache_seconds=60)
    kinde.faults.extend([Fault(status=500)] * 3)
    with pytest.raises(EntitlementUnavailable):
        api.entitlement(USER, kinde.mint(USER), FEATURE)
    assert api.entitlement(USER, kinde.mint(USER), FEATURE).limit == 5


def test_current_plan(kinde: KindeStandIn, clock: FakeClock) -> None:
    kinde.set_plan(USER, "pro")
    assert client(kinde, clock).current_plan(kinde.mint(USER)) == "pro"
    kinde.faults.append(Fault(status=200, body={"data": {"plans": []}}))
    assert client(kinde, clock).current_plan(kinde.mint(USER)) is None
