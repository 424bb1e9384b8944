"""PlanCheckFunction: Kinde's plan_selection event by direct invoke (placing the downgrade hold),
and GET /plan-check (read only)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any
from unittest.mock import ANY

import pytest
from planguard.accounts_store import get_repository
from planguard.entitlements import get_account_api
from planguard.errors import ServiceUnavailable
from planguard.plan_rule import DENY_MESSAGE, PlanCheckError, deny_reasons
from planguard.settings import get_settings
from planguard.usage_counter import HoldResult, UsageCounter, get_usage_counter

from local.kinde import Fault, KindeStandIn
from local.lambda_runtime import LocalContext, stamp_token
from tests.support import USER, HttpResult, clear_caches, invoke_http, load_event, seed

FUNCTION = "PlanCheckFunction"
DENIED_USER = load_event("plan_selection_downgrade_denied.json")["context"]["user"]["id"]
ALLOWED_USER = load_event("plan_selection_downgrade_allowed.json")["context"]["user"]["id"]
UPGRADE_USER = load_event("plan_selection_upgrade.json")["context"]["user"]["id"]
RESULT_KEYS = {"allowed", "message", "reasons", "usage"}
HOLD_UNTIL = "2030-01-01T00:06:00Z"


def handler() -> Callable[[Any, Any], Any]:
    from plan_check_api.handler import lambda_handler

    return lambda_handler


def invoke(event: Any) -> Any:
    return handler()(event, LocalContext(FUNCTION))


def fail_usage_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every usage read fails; returns the users read (a test that reads must see them)."""
    reads: list[str] = []

    def unavailable(user: str) -> int:
        reads.append(user)
        raise ServiceUnavailable()

    monkeypatch.setattr(get_usage_counter(), "usage_count", unavailable)
    return reads


def plan_selection(base: str, current: str | None, requested: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(base))
    event["context"]["billing"] = {"currentPlanCode": current, "requestedPlanCode": requested}
    return event


class FakeHolds:
    """Spies on ``UsageCounter.place_hold``: the real conditional write, recorded, unless a
    test sets ``answer``/``error``."""

    real = UsageCounter.place_hold

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None, str | None, int]] = []
        self.answer: HoldResult | None = None
        self.error: Exception | None = None

    def __call__(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        self.calls.append((user_id, limit, plan, hold_seconds))
        if self.error is not None:
            raise self.error
        if self.answer is not None:
            return self.answer
        return FakeHolds.real(get_usage_counter(), user_id, limit, plan, hold_seconds)


@pytest.fixture
def ready(env: pytest.MonkeyPatch, aws: None) -> None:
    """Template environment, moto tables, the Kinde stand-in."""


@pytest.fixture
def holds(ready: None, monkeypatch: pytest.MonkeyPatch) -> FakeHolds:
    """On the class, so a repository built after ``clear_caches()`` has it too."""
    fake = FakeHolds()
    monkeypatch.setattr(UsageCounter, "place_hold", fake)
    # The function's store must reach the spy: else every ``holds.calls == []`` below passes unseen.
    assert get_usage_counter().place_hold is fake
    return fake


# -- (a) direct invoke with Kinde's user:plan_selection event: decided by the hold ---------------------
def test_downgrade_not_held_is_denied(holds: FakeHolds) -> None:
    seed(DENIED_USER, 5)
    result = invoke(load_event("plan_selection_downgrade_denied.json"))
    assert result == {
        "allowed": False,
        "message": DENY_MESSAGE,
        "reasons": list(deny_reasons(5, 3)),
        "usage": {"tracked_accounts": {"used": 5, "limit": 3, "excess": 2}},
        "hold": {"kindeId": DENIED_USER, "count": 5, "held": False, "limit": 3, "holdUntil": None},
    }
    # One call, the requested plan's limit, for as long as Kinde and the entitlement caches need.
    assert holds.calls == [(DENIED_USER, 3, "free", get_settings().hold_seconds)]
    assert get_settings().hold_seconds == 300 + get_settings().entitlement_cache_seconds


def test_downgrade_held_is_allowed(holds: FakeHolds) -> None:
    seed(ALLOWED_USER, 2)
    result = invoke(load_event("plan_selection_downgrade_allowed.json"))
    assert result == {
        "allowed": True,
        "message": None,
        "reasons": [],
        "usage": {"tracked_accounts": {"used": 2, "limit": 3, "excess": 0}},
        "hold": {"kindeId": ALLOWED_USER, "count": 2, "held": True, "limit": 3, "holdUntil": ANY},
    }
    assert result["hold"]["holdUntil"].endswith("Z")
    assert [call[:3] for call in holds.calls] == [(ALLOWED_USER, 3, "free")]
    assert get_usage_counter().counter(ALLOWED_USER).hold_limit == 3


def test_the_hold_decides_not_a_separate_read(holds: FakeHolds, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = fail_usage_reads(monkeypatch)
    holds.answer = HoldResult(ALLOWED_USER, 3, True, 3, HOLD_UNTIL)
    result = invoke(load_event("plan_selection_downgrade_allowed.json"))
    assert (result["allowed"], result["usage"]) == (
        True,
        {"tracked_accounts": {"used": 3, "limit": 3, "excess": 0}},
    )
    assert (len(holds.calls), reads) == (1, [])


@pytest.mark.parametrize("error", [ServiceUnavailable(), NotImplementedError("stub")])
def test_a_failed_hold_on_a_downgrade_raises_unchanged(holds: FakeHolds, error: Exception) -> None:
    holds.error = error
    with pytest.raises(type(error)) as raised:
        invoke(load_event("plan_selection_downgrade_denied.json"))
    assert raised.value is error
    assert len(holds.calls) == 1


@pytest.mark.parametrize(("current", "requested"), [("free", "pro"), ("pro", "max"), ("free", "max")])
def test_a_clear_upgrade_places_and_lifts_nothing(
    holds: FakeHolds, env: pytest.MonkeyPatch, current: str, requested: str
) -> None:
    """Kinde fires the selection before payment and may never apply it: an upgrade must not lift
    an earlier, lower hold, so it calls nothing at all."""
    limits = {"free": 3, "pro": 5, "max": None}
    env.setenv("PLAN_LIMITS", json.dumps({plan: {"tracked_accounts": n} for plan, n in limits.items()}))
    clear_caches()
    seed(UPGRADE_USER, 2)
    assert get_usage_counter().place_hold(UPGRADE_USER, 2, "tiny", 300).held  # an earlier, lower hold
    holds.error = AssertionError("a clear upgrade must not place a hold")
    result = invoke(plan_selection("plan_selection_upgrade.json", current, requested))
    assert result == {"allowed": True, "message": None, "reasons": [], "usage": None, "hold": None}
    assert holds.calls == [(UPGRADE_USER, 2, "tiny", 300)]  # only this test's own, above
    assert get_usage_counter().counter(UPGRADE_USER).hold_limit == 2


def test_the_sample_upgrade_event_calls_nothing(holds: FakeHolds, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_usage_reads(monkeypatch)
    result = invoke(load_event("plan_selection_upgrade.json"))
    assert result == {"allowed": True, "message": None, "reasons": [], "usage": None, "hold": None}
    assert holds.calls == []


@pytest.mark.parametrize("error", [ServiceUnavailable(), NotImplementedError("stub"), RuntimeError("boom")])
def test_a_failed_best_effort_hold_never_blocks_a_lateral_move(holds: FakeHolds, error: Exception) -> None:
    holds.error = error
    result = invoke(plan_selection("plan_selection_upgrade.json", "pro", "pro"))
    assert result == {"allowed": True, "message": None, "reasons": [], "usage": None, "hold": None}
    assert len(holds.calls) == 1


@pytest.mark.parametrize(
    ("current", "requested", "limit"), [("pro", "pro", 5), ("legacy", "free", 3), (None, "free", 3)]
)
def test_lateral_or_unknown_current_plan_places_the_hold_and_allows(
    holds: FakeHolds, current: str | None, requested: str, limit: int
) -> None:
    seed(UPGRADE_USER, 4)
    result = invoke(plan_selection("plan_selection_upgrade.json", current, requested))
    # Not ours to judge, so a hold that was not held (4 > 3) does not block either.
    assert (result["allowed"], result["usage"], result["hold"]["held"]) == (True, None, limit >= 4)
    assert [call[:3] for call in holds.calls] == [(UPGRADE_USER, limit, requested)]


def test_unknown_plan_event_raises(holds: FakeHolds) -> None:
    with pytest.raises(PlanCheckError, match=r"^Unknown requested plan: enterprise$"):
        invoke(load_event("plan_selection_unknown_plan.json"))
    assert holds.calls == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["context"].pop("user"), "Missing user id in event context."),
        (lambda e: e["context"]["user"].update(id=""), "Missing user id in event context."),
        (lambda e: e["context"]["user"].update(id=42), "Missing user id in event context."),
        (lambda e: e.clear(), "Missing user id in event context."),
        (lambda e: e["context"]["billing"].pop("requestedPlanCode"), "Missing requested plan code."),
        (lambda e: e["context"]["billing"].update(requestedPlanCode=None), "Missing requested plan code."),
    ],
)
def test_undecidable_events_raise(holds: FakeHolds, mutate: Callable[[Any], Any], message: str) -> None:
    event = copy.deepcopy(load_event("plan_selection_downgrade_denied.json"))
    mutate(event)
    with pytest.raises(PlanCheckError) as raised:
        invoke(event)
    assert str(raised.value) == message
    assert holds.calls == []


def test_the_stand_ins_plan_change_runs_the_function(holds: FakeHolds, kinde: KindeStandIn) -> None:
    """Kinde's side as the stand-in plays it: deny keeps the plan, a raise stops the change."""

    def hook(user: str, current: str | None, requested: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("plan_selection_downgrade_denied.json"))
        event["context"]["user"]["id"] = user
        event["context"]["billing"] = {"currentPlanCode": current, "requestedPlanCode": requested}
        result: dict[str, Any] = invoke(event)
        return result

    kinde.plan_change_hook = hook
    try:
        kinde.set_plan(DENIED_USER, "pro")
        seed(DENIED_USER, 4)
        outcome = kinde.request_plan_change(DENIED_USER, "free")
        assert (outcome["allowed"], outcome["plan"]) == (False, "pro")
        get_repository().delete(DENIED_USER, get_repository().list_page(DENIED_USER, 1).items[0].id)
        outcome = kinde.request_plan_change(DENIED_USER, "free")
        assert (outcome["allowed"], outcome["plan"]) == (True, "free")
        assert [call[:3] for call in holds.calls] == [(DENIED_USER, 3, "free")] * 2
    finally:
        kinde.plan_change_hook = None


# -- (b) GET /plan-check?plan=CODE ---------------------------------------------------------------------
def get(kinde: KindeStandIn, plan: str | None = "free", *, token: str | None = "mint") -> HttpResult:
    event = load_event("plan_check_get.json")
    event = stamp_token(event, kinde.mint(USER) if token == "mint" else (token or ""))
    if token is None:
        event["headers"].pop("authorization")
    event.pop("queryStringParameters", None)
    event["rawQueryString"] = ""
    if plan is not None:
        event["queryStringParameters"] = {"plan": plan}
        event["rawQueryString"] = f"plan={plan}"
    return invoke_http(handler(), event, FUNCTION)


def test_the_sample_event(ready: None, kinde: KindeStandIn) -> None:
    kinde.set_plan(USER, "pro")
    seed(USER, 1)
    event = stamp_token(load_event("plan_check_get.json"), kinde.mint(USER))
    result = invoke_http(handler(), event, FUNCTION)
    assert result.status == 200, result.body
    assert result.body["allowed"] is True
    assert result.headers["cache-control"] == "no-store"


def test_allowed_downgrade(ready: None, kinde: KindeStandIn) -> None:
    kinde.set_plan(USER, "pro")
    seed(USER, 3)
    result = get(kinde, "free")
    assert result.status == 200, result.body
    assert result.body == {
        "allowed": True,
        "message": None,
        "reasons": [],
        "usage": {"tracked_accounts": {"used": 3, "limit": 3, "excess": 0}},
        "hint": None,
    }


@pytest.mark.parametrize(
    ("used", "hint"),
    [
        (5, "Remove 2 tracked accounts to move to free."),
        (4, "Remove 1 tracked account to move to free."),
    ],
)
def test_denied_downgrade_says_by_how_much(ready: None, kinde: KindeStandIn, used: int, hint: str) -> None:
    kinde.set_plan(USER, "pro")
    seed(USER, used)
    result = get(kinde, "free")
    assert result.status == 200, result.body
    assert set(result.body) == RESULT_KEYS | {"hint"}
    assert result.body["allowed"] is False
    assert result.body["message"] == DENY_MESSAGE
    assert result.body["reasons"] == list(deny_reasons(used, 3))
    assert result.body["usage"] == {"tracked_accounts": {"used": used, "limit": 3, "excess": used - 3}}
    assert result.body["hint"] == hint


def test_upgrade_does_not_read_usage(
    ready: None, kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinde.set_plan(USER, "free")
    reads = fail_usage_reads(monkeypatch)
    result = get(kinde, "pro")
    assert result.status == 200, result.body
    assert result.body == {"allowed": True, "message": None, "reasons": [], "usage": None, "hint": None}
    assert reads == []


def test_current_plan_outside_our_table_is_allowed(ready: None, kinde: KindeStandIn) -> None:
    kinde.plan_limits["legacy"] = {"tracked_accounts": 1}
    kinde.set_plan(USER, "legacy")
    seed(USER, 5)
    result = get(kinde, "free")
    assert (result.status, result.body["allowed"], result.body["usage"]) == (200, True, None)


@pytest.mark.parametrize("plan", [None, "", "   "])
def test_missing_plan_is_400(ready: None, kinde: KindeStandIn, plan: str | None) -> None:
    result = get(kinde, plan)
    assert result.status == 400, result.body
    assert result.error_code == "BAD_REQUEST"


@pytest.mark.parametrize("plan", ["enterprise", "FREE", "free,pro", "x" * 300])
def test_unknown_plan_is_422_without_asking_kinde(ready: None, kinde: KindeStandIn, plan: str) -> None:
    result = get(kinde, plan)
    assert result.status == 422, result.body
    assert result.error_code == "VALIDATION_ERROR"
    assert [field["field"] for field in result.body["error"]["fields"]] == ["plan"]
    assert "free, pro" in result.body["error"]["fields"][0]["message"]
    assert kinde.account_api_calls == 0


@pytest.mark.parametrize("token", [None, "garbage", "expired"])
def test_no_valid_token_is_401(ready: None, kinde: KindeStandIn, token: str | None) -> None:
    if token == "expired":
        token = kinde.mint(USER, ttl_seconds=-120)
    result = get(kinde, "free", token=token)
    assert result.status == 401, result.body
    assert result.error_code == "UNAUTHORIZED"
    assert result.headers["www-authenticate"].startswith("Bearer")


def test_kinde_down_is_503_with_retry_after(
    ready: None, kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(get_account_api(), "_sleep", sleeps.append)
    kinde.faults[:] = [Fault(500)] * 3
    result = get(kinde, "free")
    assert result.status == 503, result.body
    assert result.error_code == "ENTITLEMENT_ERROR"
    assert int(result.headers["retry-after"]) >= 1
    assert kinde.account_api_calls == 3
    assert len(sleeps) == 2  # between the attempts, through the patched sleep


@pytest.mark.parametrize(("current", "requested"), [("pro", "free"), ("free", "pro"), ("pro", "pro")])
def test_get_never_places_a_hold(holds: FakeHolds, kinde: KindeStandIn, current: str, requested: str) -> None:
    kinde.set_plan(USER, current)
    seed(USER, 4)
    result = get(kinde, requested)
    assert result.status == 200, result.body
    assert result.body["allowed"] is (requested != "free")
    assert holds.calls == []


def test_a_missing_table_on_a_downgrade_is_503(
    ready: None, kinde: KindeStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("TABLE_NAME", "NoSuchTable")
    clear_caches()
    kinde.set_plan(USER, "pro")
    result = get(kinde, "free")
    assert result.status == 503, result.body
    assert result.error_code == "SERVICE_UNAVAILABLE"


def test_storage_error_on_a_downgrade_is_503(
    ready: None, kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinde.set_plan(USER, "pro")
    reads = fail_usage_reads(monkeypatch)
    result = get(kinde, "free")
    assert result.status == 503, result.body
    assert result.error_code == "SERVICE_UNAVAILABLE"
    assert reads == [USER]  # the failing read is the one the downgrade makes


@pytest.mark.parametrize("event", ["not an event", None, [], {"context": None}])
def test_events_that_are_not_kinde_events_raise(ready: None, event: Any) -> None:
    with pytest.raises(PlanCheckError, match="Missing user id"):
        invoke(event)


def test_template_route_and_least_privilege() -> None:
    from local.template import load_template

    template = load_template()
    assert ("GET", "/plan-check", FUNCTION) in {
        (route.method, route.path, route.function) for route in template.routes()
    }
    props = template.resources[FUNCTION]["Properties"]
    assert props["Handler"] == "plan_check_api.handler.lambda_handler"
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        # the usage read; the downgrade hold (one conditional UpdateItem)
        ("Allow", ["dynamodb:GetItem", "dynamodb:UpdateItem"], {"Fn::GetAtt": ["AccountsTable", "Arn"]})
    ]
    assert f"{FUNCTION}LogGroup" in template.resources
