"""``make dev`` end to end over real HTTP: the seed scenario, every template route, restarts."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from planguard.errors import LIMIT_REACHED_MESSAGE
from planguard.plan_rule import DENY_MESSAGE, deny_reasons
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.dynamodb import SingleThreadedMotoServer
from local.kinde import KindeStandIn
from local.template import Route, load_template
from tests.integration.local_stack import DevStack, free_port, run_module, start_dev

VALID_ID = "01JD3W5V6Q2XKQY7M5R8T9C0AB"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(tmp_path_factory.mktemp("local"), CORS_ALLOWED_ORIGINS=FRONTEND_ORIGIN)
    yield stack
    assert stack.stop() == 0, stack.stderr


FRONTEND_ORIGIN = "http://localhost:5173"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_seed_scenario_over_http(dev: DevStack) -> None:
    user = "kp_seed_scenario"
    token = dev.token(user, "pro")
    ids = []
    for i in range(1, 6):
        response = dev.add_account(token, f"Account {i}", f"ACC-00{i}")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])

    sixth = dev.add_account(token, "Account 6", "ACC-006")
    assert sixth.status_code == 403
    assert sixth.json()["error"] == {
        "code": "LIMIT_REACHED",
        "message": LIMIT_REACHED_MESSAGE.format(limit=5),
        "usage": {"used": 5, "limit": 5},
    }

    denied = dev.plan(user, "free")
    assert denied["allowed"] is False
    assert denied["message"] == DENY_MESSAGE
    assert denied["reasons"] == list(deny_reasons(5, 3))
    assert denied["usage"] == {"tracked_accounts": {"used": 5, "limit": 3, "excess": 2}}
    assert (denied["from"], denied["plan"]) == ("pro", "pro")

    for account_id in ids[:2]:
        response = requests.delete(f"{dev.api}/accounts/{account_id}", headers=bearer(token), timeout=30)
        assert response.status_code == 204

    applied = dev.plan(user, "free")
    assert applied["allowed"] is True
    assert applied["plan"] == "free"
    usage = requests.get(f"{dev.api}/usage", headers=bearer(token), timeout=30).json()
    assert usage["tracked_accounts"] == {"used": 3, "limit": 3, "limitSource": "kinde"}


def test_the_cli_walkthrough(dev: DevStack) -> None:
    """What the README shows: make token / plan / reconcile against the running stack."""
    user = "kp_cli_walkthrough"
    minted = run_module("local.cli", "token", "--user", user, "--plan", "pro", env=dev.env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert "\n" not in token and token.count(".") == 2  # only the token on stdout
    assert f"Token for {user} on plan pro" in minted.stderr
    for i in range(4):
        assert dev.add_account(token, f"A{i}", f"N{i}").status_code == 201

    denied = run_module("local.cli", "plan", "--user", user, "--plan", "free", env=dev.env)
    assert denied.returncode == 0, denied.stderr
    assert f"{user}: pro -> free DENIED" in denied.stdout
    assert DENY_MESSAGE in denied.stdout
    for reason in deny_reasons(4, 3):
        assert f"- {reason}" in denied.stdout
    assert f"{user} stays on pro." in denied.stdout

    unknown = run_module("local.cli", "plan", "--user", user, "--plan", "gold", env=dev.env)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: Unknown plan 'gold'")

    repaired = run_module("local.cli", "reconcile", "--user", user, env=dev.env)
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout.strip() == f"{user}: counter 4, 4 accounts stored: no change."


def test_a_late_plan_change_over_http(dev: DevStack) -> None:
    """make plan APPLY_AFTER=...: decided at once by the plan check, applied to the plan later."""
    user = "kp_late_change"
    token = dev.token(user, "pro")
    for i in range(3):
        assert dev.add_account(token, f"A{i}", f"N{i}").status_code == 201
    late = run_module(
        "local.cli", "plan", "--user", user, "--plan", "free", "--apply-after", "2", env=dev.env
    )
    assert late.returncode == 0, late.stderr
    assert late.stdout.startswith(f"{user}: pro -> free ALLOWED")
    assert "applies at " in late.stdout and f"{user} stays on pro until then." in late.stdout
    assert "Downgrade hold: adds limited to 3 until " in late.stdout
    # Kinde has not applied free yet (the stand-in still says pro), but the hold binds already.
    usage = requests.get(f"{dev.api}/usage", headers=bearer(token), timeout=30).json()
    assert usage["tracked_accounts"] == {"used": 3, "limit": 3, "limitSource": "hold"}
    refused = dev.add_account(token, "A3", "N3")
    assert refused.status_code == 403 and refused.json()["error"]["usage"] == {"used": 3, "limit": 3}
    time.sleep(2.1)
    usage = requests.get(f"{dev.api}/usage", headers=bearer(token), timeout=30).json()
    assert usage["tracked_accounts"] == {"used": 3, "limit": 3, "limitSource": "kinde"}


def test_make_webhook_deletes_the_users_data_through_the_gateway(dev: DevStack) -> None:
    user = "kp_webhook"
    token = dev.token(user, "pro")

    def webhook(*args: str) -> tuple[int, dict[str, Any]]:
        result = run_module("local.cli", "webhook", "--user", user, *args, env=dev.env)
        return result.returncode, json.loads(result.stdout)

    def used() -> int:
        listed = requests.get(f"{dev.api}/accounts", headers=bearer(token), timeout=30).json()
        return int(listed["usage"]["used"])

    assert dev.add_account(token, "Gone soon", "G1").status_code == 201
    code, stale = webhook("--type", "user.deleted", f"--age={73 * 3600}")  # make webhook AGE=262800
    assert (code, stale["response"], used()) == (0, {"received": True}, 1)  # ignored
    code, ahead = webhook("--type", "user.deleted", "--age=-600")
    assert (code, ahead["status"], ahead["response"]["error"]["code"], used()) == (1, 400, "BAD_REQUEST", 1)
    code, answer = webhook("--type", "user.deleted")
    assert code == 0 and answer["delivered"] is True
    assert answer["webhookId"] and answer["response"] == {"received": True}
    # Their token, issued before the event, is refused from now on (for as long as a token lives).
    listed = requests.get(f"{dev.api}/accounts", headers=bearer(token), timeout=30)
    assert (listed.status_code, listed.json()["error"]["code"]) == (403, "USER_DELETED")
    time.sleep(1.1)  # iat is in whole seconds: a token issued after the event's second
    token = dev.token(user, "pro")
    assert used() == 0
    # The user comes back; the captured body replayed under another webhook-id leaves them be.
    for number in ("B1", "B2"):
        assert dev.add_account(token, "Back", number).status_code == 201
    code, replay = webhook("--redeliver", answer["webhookId"], "--new-id")
    assert code == 0 and replay["webhookId"] != answer["webhookId"]
    assert used() == 2


def _concrete(path: str, user: str) -> str:
    for name, value in (("{kindeId}", user), ("{orgCode}", "org_routes"), ("{id}", VALID_ID)):
        path = path.replace(name, value)
    return path


@pytest.mark.parametrize("route", load_template().routes(), ids=lambda route: route.route_key)
def test_every_template_route_reaches_its_function(dev: DevStack, route: object) -> None:
    assert isinstance(route, Route)
    user = "kp_routes"
    token = dev.token(user)
    path = _concrete(route.path, user)
    assert "{" not in path, f"give the test a value for the path parameters of {route.path}"
    body = {"name": "Routed", "accountNumber": "R-1"} if route.method in ("POST", "PATCH") else None
    response = requests.request(
        route.method, f"{dev.api}{path}", headers=bearer(token), json=body, timeout=30
    )
    assert response.headers.get("x-local-function") == route.function, response.text
    assert response.status_code < 500, response.text


def test_unknown_routes_are_a_json_404(dev: DevStack) -> None:
    for method, path in (("GET", "/nope"), ("PUT", "/accounts"), ("GET", "/accounts/a/b")):
        response = requests.request(method, f"{dev.api}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert "x-local-function" not in response.headers


def test_cors_allows_no_origin_by_default() -> None:
    """Deployed with the defaults, no browser origin may call the API."""
    cors = load_template().http_api_cors()
    assert cors is not None and cors.allow_origins == ()
    named = load_template().http_api_cors({"CorsAllowedOrigins": "https://app.example, https://b.example"})
    assert named is not None and named.allow_origins == ("https://app.example", "https://b.example")


def test_cors_preflight_from_the_template(dev: DevStack) -> None:
    """The stack was started with CORS_ALLOWED_ORIGINS, the template's parameter set locally."""
    origin = FRONTEND_ORIGIN
    preflight = requests.options(
        f"{dev.api}/accounts",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    actual = requests.get(f"{dev.api}/accounts", headers={"Origin": origin}, timeout=10)
    assert actual.status_code == 401
    assert actual.headers["access-control-allow-origin"] == origin
    stranger = requests.get(f"{dev.api}/accounts", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in stranger.headers


@pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash"
)
def test_the_banner_commands_work_as_pasted(dev: DevStack) -> None:
    """Every printed curl line runs in a shell with the printed TOKEN and gets a non-5xx answer."""
    lines = dev.stdout.splitlines()
    export = next(line.strip() for line in lines if line.strip().startswith("export TOKEN="))
    curls = [line.strip() for line in lines if line.strip().startswith("curl -s ") and dev.api in line]
    assert any("/accounts" in line for line in curls)
    assert any("x-api-key" in line for line in curls), "the usage count is shown with the key"
    for command in curls:
        result = subprocess.run(
            ["bash", "-c", f"{export}; {command} -o /dev/null -w '%{{http_code}}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.stdout.isdigit() and int(result.stdout) < 400, (command, result.stdout, result.stderr)


def test_data_and_plans_survive_a_restart(tmp_path: Path) -> None:
    kinde_port = str(free_port())
    first = start_dev(tmp_path, KINDE_PORT=kinde_port)
    token = first.token("kp_restart", "pro")
    created = first.add_account(token, "Persisted", "P-1").json()
    assert first.stop() == 0
    assert "Stopped; data saved to" in first.stdout
    assert not (tmp_path / "dev.json").exists()
    saved = json.loads((tmp_path / "dynamodb.json").read_text())
    assert any(item.get("id", {}).get("S") == created["id"] for item in saved["tables"]["AccountsTable"])

    second = start_dev(tmp_path, KINDE_PORT=kinde_port)
    try:
        # the same token: the signing key and the issuer URL survive too
        listed = requests.get(f"{second.api}/accounts", headers=bearer(token), timeout=30).json()
        assert [item["id"] for item in listed["items"]] == [created["id"]]
        assert listed["usage"] == {"used": 1, "limit": 5, "limitSource": "kinde"}  # still on pro
    finally:
        assert second.stop() == 0


def test_periodic_saves_survive_a_kill(tmp_path: Path) -> None:
    first = start_dev(tmp_path, PLANGUARD_SAVE_INTERVAL="0.3")
    created = first.add_account(first.token("kp_killed", "pro"), "Saved on the interval", "K-1").json()
    deadline = time.monotonic() + 10
    while created["id"] not in (
        (tmp_path / "dynamodb.json").read_text() if (tmp_path / "dynamodb.json").exists() else ""
    ):
        assert time.monotonic() < deadline, "the interval save did not happen"
        time.sleep(0.1)
    first.stop(signal.SIGKILL)
    assert (tmp_path / "dev.json").exists()  # left behind by the kill: must not block a restart

    second = start_dev(tmp_path)
    try:
        token = second.token("kp_killed")
        listed = requests.get(f"{second.api}/accounts", headers=bearer(token), timeout=30).json()
        assert [item["id"] for item in listed["items"]] == [created["id"]]
    finally:
        assert second.stop() == 0


def test_external_kinde_and_dynamodb_are_used_not_faked(tmp_path: Path) -> None:
    kinde = KindeStandIn(dict(DEFAULT_PLAN_LIMITS)).start()  # plays the real Kinde tenant
    moto = SingleThreadedMotoServer()
    moto.start()
    try:
        dev = start_dev(tmp_path, KINDE_ISSUER_URL=kinde.url, DYNAMODB_ENDPOINT_URL=moto.endpoint_url)
        try:
            assert dev.runtime["kinde"] is None and dev.runtime["issuer"] == kinde.url
            assert "real Kinde, nothing faked" in dev.stdout
            kinde.set_plan("kp_external", "pro")
            response = dev.add_account(kinde.mint("kp_external"), "External", "E-1")
            assert response.status_code == 201, response.text
            assert kinde.account_api_calls >= 1
            token_cli = run_module("local.cli", "token", env=dev.env)
            assert token_cli.returncode == 1 and "real Kinde" in token_cli.stderr
        finally:
            assert dev.stop() == 0
        client = boto3.client("dynamodb", endpoint_url=moto.endpoint_url, region_name="us-east-1")
        items = client.scan(TableName="AccountsTable")["Items"]
        assert any(item.get("name", {}).get("S") == "External" for item in items)
        assert not (tmp_path / "dynamodb.json").exists()  # external data is not ours to persist
    finally:
        moto.stop()
        kinde.stop()
