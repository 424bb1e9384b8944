"""``make invoke`` on every sample event, on the persisted data and against a running ``make dev``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local import cli
from local.commands.invoke import function_for_event
from local.template import load_template
from tests import ROOT
from tests.integration.local_stack import CLEARED, DevStack, run_module, start_dev

EVENTS_DIR = ROOT / "events"
EVENTS = sorted(EVENTS_DIR.glob("*.json"))


@pytest.fixture
def local_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One .local for the module's offline invokes (data accumulates like a developer's would)."""
    path = tmp_path_factory.getbasetemp() / "invoke-local"
    path.mkdir(exist_ok=True)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLANGUARD_LOCAL_DIR", str(path))
    monkeypatch.setenv("PORT", "0")
    monkeypatch.setenv("KINDE_PORT", "0")
    return path


def run_invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = cli.main(["invoke", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


@pytest.mark.parametrize("path", EVENTS, ids=lambda path: path.name)
def test_every_sample_event_runs(path: Path, local_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = json.loads(path.read_text())
    function = function_for_event(load_template(), event)
    assert function is not None, f"{path.name}: no function in template.yaml takes this event"
    code, result, err = run_invoke(capsys, str(path))
    assert result is not None, err
    if "routeKey" in event:  # API event: a response, never a 5xx
        assert code == 0, err
        assert result["statusCode"] < 500, result
    elif function == "UsageReportFunction":  # a stream batch, or a re-send of every count
        assert code == 0, err
        assert set(result) in ({"batchItemFailures"}, {"sent", "skipped", "failed", "complete", "startAfter"})
    elif code == 0:  # direct invoke: the decision
        assert set(result) >= {"allowed", "message", "reasons", "usage"}
    else:  # the handler ran and raised (e.g. an unknown plan: Kinde must stop the change)
        assert not result["errorType"].startswith(("Runtime.", "Sandbox.")), result
    assert (local_dir / "dynamodb.json").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("usage_hold.json", {"held": True, "limit": 3}),
        ("kinde_webhook_user_deleted.json", {"received": True}),  # signed fresh by the stand-in
    ],
)
def test_the_lifecycle_sample_events_succeed(
    name: str, expected: dict[str, Any], local_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, err = run_invoke(capsys, str(EVENTS_DIR / name))
    assert code == 0 and result["statusCode"] == 200, (result, err)
    body = json.loads(result["body"])
    assert {key: body[key] for key in expected} == expected


def test_offline_invokes_share_the_persisted_data(
    local_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "kp_offline_invoke"
    code, created, _ = run_invoke(
        capsys, "AccountsFunction", str(EVENTS_DIR / "accounts_create.json"), "--user", user
    )
    assert code == 0 and created["statusCode"] == 201, created
    code, listed, err = run_invoke(capsys, str(EVENTS_DIR / "accounts_list.json"), "--user", user)
    assert code == 0
    names = [item["name"] for item in json.loads(listed["body"])["items"]]
    assert names == ["Electricity"]
    assert "against the persisted local data" in err


def test_unknown_function_and_missing_event_are_one_line_errors(
    local_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_invoke(capsys, "NoSuchFunction", str(EVENTS_DIR / "accounts_list.json"))
    assert code == 1 and err.startswith("error: no function NoSuchFunction in template.yaml")
    code, _, err = run_invoke(capsys, "events/nope.json")
    assert code == 1 and err.startswith("error: cannot read the event events/nope.json")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(tmp_path_factory.mktemp("invoke-dev"))
    yield stack
    assert stack.stop() == 0, stack.stderr


def test_invoke_uses_the_running_dev(dev: DevStack) -> None:
    user = "kp_invoke_dev"
    token = dev.token(user, "pro")
    response = dev.add_account(token, "Seen by invoke", "I-1")
    assert response.status_code == 201
    result = run_module(
        "local.cli", "invoke", "AccountsFunction", "events/accounts_list.json", "--user", user, env=dev.env
    )
    assert result.returncode == 0, result.stderr
    assert "against make dev" in result.stderr
    body = json.loads(json.loads(result.stdout)["body"])
    assert [item["name"] for item in body["items"]] == ["Seen by invoke"]
    assert body["usage"]["limit"] == 5


def test_invoke_plan_selection_reads_the_running_dev(dev: DevStack) -> None:
    event = json.loads((ROOT / "events" / "plan_selection_downgrade_denied.json").read_text())
    user = event["context"]["user"]["id"]
    token = dev.token(user, "pro")
    for i in range(5):
        dev.add_account(token, f"D{i}", f"D-{i}").raise_for_status()
    result = run_module("local.cli", "invoke", "events/plan_selection_downgrade_denied.json", env=dev.env)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["allowed"] is False
    assert decision["usage"]["tracked_accounts"]["used"] == 5
