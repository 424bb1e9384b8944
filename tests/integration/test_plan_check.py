"""PlanCheckFunction (DESIGN.md §5): Kinde's plan_selection event by direct invoke, and GET /plan-check."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from planguard.entitlements import get_account_api
from planguard.errors import ServiceUnavailable
from planguard.plan_rule import DENY_MESSAGE, PlanCheckError, UsageUnavailable, deny_reasons
from planguard.repository import get_repository

from local.kinde import Fault, KindeStandIn
from local.lambda_runtime import LocalContext, stamp_token
from tests.conftest import USER, HttpResult, invoke_http, load_event

FUNCTION = "PlanCheckFunction"
DENIED_USER = load_event("plan_selection_downgrade_denied.json")["context"]["user"]["id"]
ALLOWED_USER = load_event("plan_selection_downgrade_allowed.json")["context"]["user"]["id"]
RESULT_KEYS = {"allowed", "message", "reasons", "usage"}


def seed(user: str, count: int) -> None:
    repository = get_repository()
    for n in range(count):
        repository.create(user, f"Account {n}", f"{n:06d}", limit=None)


def handler() -> Callable[[Any, Any], Any]:
    from plan_check_api.handler import lambda_handler

    return lambda_handler


def invoke(event: Any) -> Any:
    return handler()(event, LocalContext(FUNCTION))


def fail_usage_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(_user: str) -> int:
        raise ServiceUnavailable()

    monkeypatch.setattr(get_repository(), "usage_count", unavailable)


@pytest.fixture
def ready(env: pytest.MonkeyPatch, aws: None) -> None:
    """Template environment, moto tables, the Kinde stand-in."""


# -- (a) direct invoke with Kinde's user:plan_selection event --------------------------------------
def test_downgrade_denied_event(ready: None) -> None:
    seed(DENIED_USER, 5)
    result = invoke(load_event("plan_selection_downgrade_denied.json"))
    assert result == {
        "allowed": False,
        "message": DENY_MESSAGE,
        "reasons": list(deny_reasons(5, 3)),
        "usage": {"tracked_accounts": {"used": 5, "limit": 3, "excess": 2}},
    }


def test_downgrade_allowed_event(ready: None) -> None:
    seed(ALLOWED_USER, 2)
    result = invoke(load_event("plan_selection_downgrade_allowed.json"))
    assert result == {
        "allowed": True,
        "message": None,
        "reasons": [],
        "usage": {"tracked_accounts": {"used": 2, "limit": 3, "excess": 0}},
    }


def test_upgrade_event_never_reads_usage(ready: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_usage_reads(monkeypatch)
    result = invoke(load_event("plan_selection_upgrade.json"))
    assert result == {"allowed": True, "message": None, "reasons": [], "usage": None}


def test_unknown_plan_event_raises(ready: None) -> None:
    with pytest.raises(PlanCheckError, match=r"^Unknown requested plan: enterprise$"):
        invoke(load_event("plan_selection_unknown_plan.json"))


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
def test_undecidable_events_raise(ready: None, mutate: Callable[[Any], Any], message: str) -> None:
    event = copy.deepcopy(load_event("plan_selection_downgrade_denied.json"))
    mutate(event)
    with pytest.raises(PlanCheckError) as raised:
        invoke(event)
    assert str(raised.value) == message


def test_storage_error_on_a_downgrade_raises(ready: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_usage_reads(monkeypatch)
    with pytest.raises(UsageUnavailable, match="Cannot check the user limits"):
        invoke(load_event("plan_selection_downgrade_denied.json"))


def test_a_missing_table_raises_too(ready: None, env: pytest.MonkeyPatch) -> None:
    from tests.conftest import clear_caches

    env.setenv("TABLE_NAME", "NoSuchTable")
    clear_caches()
    with pytest.raises(UsageUnavailable):
        invoke(load_event("plan_selection_downgrade_denied.json"))


def test_the_stand_ins_plan_change_runs_the_function(ready: None, kinde: KindeStandIn) -> None:
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
    fail_usage_reads(monkeypatch)
    result = get(kinde, "pro")
    assert result.status == 200, result.body
    assert result.body == {"allowed": True, "message": None, "reasons": [], "usage": None, "hint": None}


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
    monkeypatch.setattr(get_account_api(), "_sleep", lambda _seconds: None)
    kinde.faults[:] = [Fault(500)] * 3
    result = get(kinde, "free")
    assert result.status == 503, result.body
    assert result.error_code == "ENTITLEMENT_ERROR"
    assert int(result.headers["retry-after"]) >= 1
    assert kinde.account_api_calls == 3


def test_storage_error_on_a_downgrade_is_503(
    ready: None, kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinde.set_plan(USER, "pro")
    fail_usage_reads(monkeypatch)
    result = get(kinde, "free")
    assert result.status == 503, result.body
    assert result.error_code == "SERVICE_UNAVAILABLE"


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
        ("Allow", ["dynamodb:GetItem"], {"Fn::GetAtt": ["AccountsTable", "Arn"]})
    ]
    assert f"{FUNCTION}LogGroup" in template.resources
