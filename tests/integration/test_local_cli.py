"""The CLI's plan-change report, including Kinde's fail-closed path when the check breaks."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from planguard.plan_rule import DENY_MESSAGE, deny_reasons

from local.commands.kinde import describe_plan_change
from local.kinde import KindeStandIn


@pytest.fixture
def standin(kinde: KindeStandIn) -> KindeStandIn:
    return kinde


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
    hold = {"kindeId": "kp_y", "count": 3, "held": True, "limit": 3, "holdUntil": "2030-01-01T00:06:00.000Z"}
    fails = {**applied, "plan": "pro", "fails": True, "hold": hold}
    assert describe_plan_change(fails) == (
        "kp_y: pro -> free ALLOWED, but its payment fails: never applied\n"
        "  Downgrade hold: adds limited to 3 until 2030-01-01T00:06:00.000Z.\n"
        "  kp_y stays on pro.",
        0,
    )


def test_make_plan_says_when_a_change_applies(
    standin: KindeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make plan ... APPLY_AFTER=`` and ``FAILS=1`` reach the stand-in (the running make dev's)."""
    from local.cli import main
    from local.config import Endpoints

    standin.set_plan("kp_cli", "pro")
    endpoints = Endpoints(0, "http://127.0.0.1:9", standin.url, standin.url, "http://127.0.0.1:9", {})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("local.commands.common.running_dev", lambda _config: endpoints)
        assert main(["plan", "--user", "kp_cli", "--plan", "free", "--fails"]) == 0
        assert "ALLOWED, but its payment fails: never applied" in capsys.readouterr().out
        assert standin.plan_of("kp_cli") == "pro" and not standin.pending
        assert main(["plan", "--user", "kp_cli", "--plan", "free", "--apply-after", "30"]) == 0
        assert "(in 30 s)" in capsys.readouterr().out
        assert standin.pending["kp_cli"][0] == "free"


def test_reconcile_a_deployed_table_with_aws_credentials(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """``--table`` goes to the named table through the default AWS chain (moto here), not .local/."""
    import boto3
    from planguard.accounts_store import AccountRepository

    from local.cli import main

    monkeypatch.setenv("PLANGUARD_LOCAL_DIR", str(tmp_path))
    repository = AccountRepository(boto3.client("dynamodb"), "AccountsTable")
    for i in range(2):
        repository.create("kp_drift", f"A{i}", str(i), limit=None)
    boto3.client("dynamodb").update_item(
        TableName="AccountsTable",
        Key={"PK": {"S": "USER#kp_drift"}, "SK": {"S": "USAGE#tracked_accounts"}},
        UpdateExpression="SET #c = :n",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":n": {"N": "9"}},
    )
    assert main(["reconcile", "--user", "kp_drift", "--table", "AccountsTable"]) == 0
    assert "counter was 9, 2 accounts stored: repaired (now 2)" in capsys.readouterr().out
    assert repository.usage.usage_count("kp_drift") == 2
    assert not list(tmp_path.iterdir())  # the local stack's files were not touched


def test_release_hold_on_a_deployed_table_ends_that_one_hold(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """``make release-hold USER=… TABLE=…``: support ends a hold that will never apply."""
    import boto3
    from planguard.usage_counter import UsageCounter

    from local.cli import main

    monkeypatch.setenv("PLANGUARD_LOCAL_DIR", str(tmp_path))
    usage = UsageCounter(boto3.client("dynamodb"), "AccountsTable")
    assert usage.place_hold("kp_held", 3, "free", 360).held is True
    assert usage.place_hold("kp_other", 2, "free", 360).held is True
    assert main(["release-hold", "--user", "kp_held", "--table", "AccountsTable"]) == 0
    assert "kp_held: hold at 3 released" in capsys.readouterr().out
    assert usage.counter("kp_held").hold_limit is None
    assert usage.counter("kp_other").hold_limit == 2  # one hold only
    assert main(["release-hold", "--user", "kp_held", "--table", "AccountsTable"]) == 0
    assert "kp_held: no hold to release." in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
