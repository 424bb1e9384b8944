"""``make invoke`` on every sample event, offline and against a running ``make dev``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from local import invoke
from local.config import (
    LOCAL_AWS_ENV,
    LOCAL_USAGE_API_KEY,
    PLAN_CHECK_FUNCTION,
    LocalConfig,
    function_environment,
    resource_names,
)
from local.dynamodb import local_client
from local.lambda_runtime import DEV_TOKEN_PLACEHOLDER
from local.template import load_template
from local.workers import InvokeResult, Worker, WorkerSpec
from tests.integration.local_stack import CLEARED, ROOT, DevStack, run_module, start_dev

pytestmark = pytest.mark.integration

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
    code = invoke.main(list(args))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


@pytest.mark.parametrize("path", EVENTS, ids=lambda path: path.name)
def test_every_sample_event_runs(path: Path, local_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = json.loads(path.read_text())
    function = invoke.function_for_event(load_template(), event)
    assert function is not None, f"{path.name}: no function in template.yaml takes this event"
    code, result, err = run_invoke(capsys, str(path))
    assert result is not None, err
    if "routeKey" in event:  # API event: a response, never a 5xx
        assert code == 0, err
        assert result["statusCode"] < 500, result
    elif code == 0:  # direct invoke: the decision
        assert set(result) >= {"allowed", "message", "reasons", "usage"}
    else:  # the handler ran and raised (e.g. an unknown plan: Kinde must stop the change)
        assert not result["errorType"].startswith(("Runtime.", "Sandbox.")), result
    assert (local_dir / "dynamodb.json").exists()


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


def test_stamp_offline_names_the_dev_stand_in(local_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, event, _ = run_invoke(capsys, "--stamp", str(EVENTS_DIR / "usage_get.json"))
    assert code == 0
    assert DEV_TOKEN_PLACEHOLDER not in json.dumps(event)
    token = event["headers"]["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == LocalConfig.from_env().standin_issuer


def test_sam_env_vars_needs_a_running_dev(local_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_invoke(capsys, "--sam-env-vars")
    assert (code, out) == (1, None)
    assert err.startswith("error: make dev is not running") and len(err.strip().splitlines()) == 1


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
        "local.invoke", "AccountsFunction", "events/accounts_list.json", "--user", user, env=dev.env
    )
    assert result.returncode == 0, result.stderr
    assert "against make dev" in result.stderr
    body = json.loads(json.loads(result.stdout)["body"])
    assert [item["name"] for item in body["items"]] == ["Seen by invoke"]
    assert body["usage"]["limit"] == 5


@pytest.mark.skipif(PLAN_CHECK_FUNCTION not in load_template().functions(), reason="no PlanCheckFunction yet")
def test_invoke_plan_selection_reads_the_running_dev(dev: DevStack) -> None:
    event = json.loads((ROOT / "events" / "plan_selection_downgrade_denied.json").read_text())
    user = event["context"]["user"]["id"]
    token = dev.token(user, "pro")
    for i in range(5):
        dev.add_account(token, f"D{i}", f"D-{i}").raise_for_status()
    result = run_module("local.invoke", "events/plan_selection_downgrade_denied.json", env=dev.env)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["allowed"] is False
    assert decision["usage"]["tracked_accounts"]["used"] == 5


def test_stamp_with_dev_running_gives_a_working_token(dev: DevStack) -> None:
    result = run_module(
        "local.invoke", "--stamp", "events/accounts_list.json", "--user", "kp_stamped", env=dev.env
    )
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert DEV_TOKEN_PLACEHOLDER not in result.stdout
    response = requests.get(
        f"{dev.api}/accounts", headers={"Authorization": event["headers"]["authorization"]}, timeout=30
    )
    assert response.status_code == 200


def as_sam_would_run(function: str, env_vars: dict[str, str], event: dict[str, Any]) -> InvokeResult:
    """The function with the template's environment as ``sam local invoke`` resolves it, overridden
    by its ``--env-vars`` entry and the exported fake credentials: the Docker recipe, minus Docker."""
    template = load_template()
    issuer = "https://from-parameter-overrides.invalid"
    resolved = template.resolve_environment(function, {"KindeIssuerUrl": issuer}, resource_names(template))
    runtime = function_environment(template, function, issuer=issuer, dynamodb_endpoint="", overrides={})
    env = {**runtime, **resolved, **env_vars, **LOCAL_AWS_ENV}
    worker = Worker(WorkerSpec.from_template(template, function, env), log=lambda _line: None)
    try:
        return worker.invoke(event)
    finally:
        worker.stop()


def test_sam_env_vars_point_the_container_at_the_running_dev(dev: DevStack) -> None:
    result = run_module("local.invoke", "--sam-env-vars", env=dev.env)
    assert result.returncode == 0, result.stderr
    env_vars = json.loads(result.stdout)
    template = load_template()
    functions = template.functions()
    assert set(env_vars) == set(functions)  # SAM's format: {"<LogicalId>": {"NAME": "value"}}
    for name, variables in env_vars.items():
        assert set(variables) <= set(functions[name].environment)  # SAM overrides declared ones only
        assert all(isinstance(value, str) for value in variables.values())
        assert variables["DYNAMODB_ENDPOINT_URL"] == dev.runtime["dynamodb"]
        assert variables["KINDE_ISSUER_URL"] == dev.runtime["issuer"] == dev.kinde
        assert variables["ENTITLEMENT_CACHE_SECONDS"] == "0"
    assert env_vars["UsageCountFunction"]["USAGE_API_KEY"] == LOCAL_USAGE_API_KEY
    assert "USAGE_API_KEY" not in env_vars["AccountsFunction"]
    assert f"--parameter-overrides KindeIssuerUrl={dev.kinde}" in result.stderr
    # the values reach the running stack: its tables, and a function run as SAM would run it
    tables = local_client(env_vars["AccountsFunction"]["DYNAMODB_ENDPOINT_URL"]).list_tables()["TableNames"]
    assert env_vars["AccountsFunction"]["TABLE_NAME"] in tables
    user = "kp_sam_env_vars"
    token = dev.token(user, "pro")
    for i in range(2):
        dev.add_account(token, f"S{i}", f"S-{i}").raise_for_status()
    event = json.loads((EVENTS_DIR / "usage_count_with_key.json").read_text())
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/users/accounts/count/{user}"
    event["pathParameters"] = {"kindeId": user}
    counted = as_sam_would_run("UsageCountFunction", env_vars["UsageCountFunction"], event)
    assert counted.ok and counted.payload["statusCode"] == 200, counted
    assert json.loads(counted.payload["body"]) == {"kindeId": user, "count": 2}
    stamped = run_module("local.invoke", "--stamp", "events/accounts_list.json", "--user", user, env=dev.env)
    listed = as_sam_would_run("AccountsFunction", env_vars["AccountsFunction"], json.loads(stamped.stdout))
    assert listed.ok and listed.payload["statusCode"] == 200, listed
    assert [item["name"] for item in json.loads(listed.payload["body"])["items"]] == ["S0", "S1"]
