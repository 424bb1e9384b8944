"""The CLI's plan-change report, including Kinde's fail-closed path when the check breaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from planguard.plan_rule import DENY_MESSAGE, deny_reasons
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.cli import describe_plan_change
from local.kinde import KindeStandIn

pytestmark = pytest.mark.integration


@pytest.fixture
def standin() -> Iterator[KindeStandIn]:
    kinde = KindeStandIn({plan: dict(limits) for plan, limits in DEFAULT_PLAN_LIMITS.items()}).start()
    yield kinde
    kinde.stop()


def test_a_failing_plan_check_stops_the_change(standin: KindeStandIn) -> None:
    def broken(_user: str, _current: str | None, _requested: str) -> dict[str, Any]:
        raise RuntimeError("PlanCheckFunction failed: UsageUnavailable: DynamoDB unreachable")

    standin.set_plan("kp_x", "pro")
    standin.plan_change_hook = broken
    response = requests.post(f"{standin.url}/dev/plan", json={"user": "kp_x", "plan": "free"}, timeout=10)
    assert response.status_code == 502
    answer = response.json()
    assert answer["allowed"] is False and standin.plan_of("kp_x") == "pro"
    text, code = describe_plan_change(answer)
    assert code == 1
    assert text.startswith("kp_x: pro -> free FAILED: The plan check failed: PlanCheckFunction failed")
    assert text.endswith("Kinde stops the change; kp_x stays on pro.")


def test_denied_and_applied_reports() -> None:
    denied = {
        "user": "kp_y",
        "from": "pro",
        "requested": "free",
        "plan": "pro",
        "allowed": False,
        "message": DENY_MESSAGE,
        "reasons": list(deny_reasons(5, 3)),
        "usage": {"tracked_accounts": {"used": 5, "limit": 3, "excess": 2}},
    }
    text, code = describe_plan_change(denied)
    assert code == 0
    assert text.splitlines() == [
        "kp_y: pro -> free DENIED",
        f"  {DENY_MESSAGE}",
        "  - Your current usage is 5, but the new plan only allows up to 3.",
        "  - Please reduce your usage to 3 or fewer to continue.",
        "  kp_y stays on pro.",
    ]
    applied = {**denied, "allowed": True, "plan": "free", "message": None, "reasons": [], "usage": None}
    assert describe_plan_change(applied) == ("kp_y: pro -> free APPLIED\n  kp_y is now on free.", 0)
