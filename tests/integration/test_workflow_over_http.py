"""The Kinde workflow (TypeScript, run by Node with the real ``@kinde/infrastructure``) over HTTP.

The case table proves the rule agrees in both languages with stubbed functions; this proves the
wire agrees: (1) every case of the table, decided by the workflow's default export against an HTTP
server answering as the case says (the bodies, a dropped connection), with the very requests the
case expects; (2) the workflow's hold request against the real usage-count routes (the local
gateway, routes from template.yaml) on 127.0.0.1, and the hold rules seen from there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from planguard.accounts_store import get_repository
from planguard.usage_counter import get_usage_counter

from tests import ROOT
from tests.support import OTHER_USER, USER, api_over_http, seed

KINDE = ROOT / "kinde"
BASE_PATH = "/api/users/accounts/count"
ORG_BASE_PATH = "/api/organizations/accounts/count"
KEY = "test-usage-key"
TABLE = json.loads((ROOT / "tests" / "fixtures" / "plan_cases.json").read_text())


def need_node() -> None:
    if shutil.which("node") is None or not (KINDE / "node_modules").exists():
        pytest.fail("Node 20 and kinde/node_modules are needed: run `make test` (it installs them)")


def run_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each change through the workflow's default export, in one Node process."""
    done = subprocess.run(
        ["node", "--import", "tsx", "scripts/runOverHttp.ts", "--stdin"],
        cwd=KINDE,
        env={"PATH": os.environ["PATH"]},
        input=json.dumps(changes),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    decisions = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(decisions) == len(changes), done.stdout
    return decisions


# -- (1) every case of the table, over HTTP -------------------------------------------------------------
class CaseBackend(BaseHTTPRequestHandler):
    """``/case/<n>{BASE_PATH}/<user>`` answers case n's ``usage``; ``…/<user>/hold`` its ``hold``:
    the bodies as given, ``{unreachable}`` as a connection closed without an answer."""

    seen: list[tuple[int, str, str, str | None]]  # (case, method, path with query, Authorization)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, method: str) -> None:
        found = re.fullmatch(r"/case/(\d+)(/.*)", self.path)
        if not found:
            self.send_error(404)
            return
        number, rest = int(found.group(1)), found.group(2)
        self.seen.append((number, method, rest, self.headers.get("Authorization")))
        case = TABLE["cases"][number]
        named = {"orgCode": case["orgCode"]} if is_organization(case) else {"kindeId": case["userId"]}
        given = case.get("hold" if method == "POST" else "usage")
        if given is None or given.get("unreachable"):
            self.close_connection = True
            self.connection.close()  # no answer at all: Node's fetch fails
            return
        if "body" in given:
            body = given["body"]
        elif "held" not in given:
            body = {**named, "count": given["count"]}
        else:
            requested = re.search(r"[?&]limit=([^&]*)", rest)
            limit = int(requested.group(1)) if requested and requested.group(1) else None
            body = {
                **named,
                "count": given["count"],
                "held": given["held"],
                "limit": given.get("limit", limit),
                "holdUntil": "2030-01-01T00:06:00Z" if given["held"] else None,
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


@pytest.fixture
def case_backend() -> Iterator[tuple[str, list[tuple[int, str, str, str | None]]]]:
    seen: list[tuple[int, str, str, str | None]] = []
    handler = type("Handler", (CaseBackend,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def is_organization(case: dict[str, Any]) -> bool:
    return case.get("billingCustomer") == "organization"


def hold_path(user: str, limit: int | None, plan: str, base: str = BASE_PATH) -> str:
    """The hold request the workflow sends: ``limit=`` empty for an unlimited plan."""
    return f"{base}/{user}/hold?limit={'' if limit is None else limit}&plan={quote(plan, safe='')}"


def test_the_workflow_decides_every_case_of_the_table_over_http(
    case_backend: tuple[str, list[tuple[int, str, str, str | None]]],
) -> None:
    need_node()
    base, seen = case_backend
    changes = []
    for number, case in enumerate(TABLE["cases"]):
        organization = is_organization(case)
        env = {"USAGE_API_URL": f"{base}/case/{number}{ORG_BASE_PATH if organization else BASE_PATH}"}
        if organization:
            env["BILLING_CUSTOMER"] = "organization"
        if case.get("usageApiKey"):
            env["USAGE_API_KEY"] = KEY
        if "planLimits" in case:
            env["PLAN_LIMITS"] = json.dumps(case["planLimits"])
        changes.append(
            {
                "userId": case["userId"],
                "currentPlan": case["currentPlan"],
                "requestedPlan": case["requestedPlan"],
                "orgCode": case["orgCode"] if organization else "org_123",
                "env": env,
            }
        )
    decisions = run_changes(changes)
    assert len(decisions) == len(TABLE["cases"]) > 50
    for number, (case, decision) in enumerate(zip(TABLE["cases"], decisions, strict=True)):
        expected, name = case["expected"], case["name"]
        if "error" in expected:
            assert decision["error"] and expected["error"] in decision["error"], (name, decision)
            assert decision["denied"] is None, name
        elif expected["allowed"]:
            assert decision == {"allowed": True, "denied": None, "error": None}, (name, decision)
        else:
            denied = {"message": expected["message"], "reasons": expected["reasons"]}
            assert decision == {"allowed": False, "denied": denied, "error": None}, (name, decision)
        organization = is_organization(case)
        base_path = ORG_BASE_PATH if organization else BASE_PATH
        sent = quote((case["orgCode"] if organization else case["userId"]) or "", safe="")
        calls = [(method, path) for n, method, path, _ in seen if n == number]
        holds = [
            ("POST", hold_path(sent, hold["limit"], hold["plan"], base_path)) for hold in case["holdCalls"]
        ]
        assert calls == [("GET", f"{base_path}/{sent}")] * case["usageReads"] + holds, name
        keys = {auth for n, _, _, auth in seen if n == number}
        assert keys <= ({f"Bearer {KEY}"} if case.get("usageApiKey") else {None}), name


# -- (2) against the real usage-count routes --------------------------------------------------------------
@pytest.fixture
def usage_api(env: pytest.MonkeyPatch, aws: None) -> Iterator[str]:
    need_node()
    with api_over_http() as api:
        yield f"{api}{BASE_PATH}"


def run_workflow(
    usage_api: str, current: str, requested: str, key: str | None = KEY, user: str = USER
) -> dict[str, Any]:
    env = {"USAGE_API_URL": usage_api, **({"USAGE_API_KEY": key} if key is not None else {})}
    return run_changes([{"userId": user, "currentPlan": current, "requestedPlan": requested, "env": env}])[0]


def test_a_held_downgrade_binds_the_backend_and_a_refused_one_is_denied(usage_api: str) -> None:
    seed(USER, 3)
    assert run_workflow(usage_api, "pro", "free") == {"allowed": True, "denied": None, "error": None}
    assert get_usage_counter().counter(USER).hold_limit == 3  # the hold the workflow placed
    seed(OTHER_USER, 4)
    denied = run_workflow(usage_api, "pro", "free", user=OTHER_USER)
    assert denied["denied"]["message"] == "You need to reduce your usage before moving to this plan:"
    assert denied["denied"]["reasons"][0] == "Your current usage is 4, but the new plan only allows up to 3."
    assert get_usage_counter().counter(OTHER_USER).hold_limit is None  # refused: nothing recorded


def test_an_upgrade_selected_over_http_leaves_the_hold_alone(usage_api: str) -> None:
    """Kinde fires the selection before payment: the hold at 3 stays until Kinde shows the upgrade
    applied (or the hold ends)."""
    seed(USER, 2)
    assert get_usage_counter().place_hold(USER, 3, "free", 300).held
    assert run_workflow(usage_api, "free", "pro")["allowed"] is True
    assert get_usage_counter().counter(USER).hold_limit == 3


def test_a_later_selection_over_http_only_lowers_and_extends(usage_api: str) -> None:
    """pro -> free (hold 3), then pro -> basic (4): the hold stays at 3, lasts until the later
    selection's end, and starts afresh with it (only a plan applied after it may replace the hold)."""
    seed(USER, 3)
    repository = get_repository()
    assert run_workflow(usage_api, "pro", "free")["allowed"] is True
    first = repository.usage.counter(USER)
    assert first.hold_ends_at is not None
    repository.usage.clock = lambda: first.hold_ends_at - 100  # type: ignore[operator]  # 260 s on
    limits = {**TABLE["defaultPlanLimits"], "basic": {"tracked_accounts": 4}}
    with_basic = {"USAGE_API_URL": usage_api, "USAGE_API_KEY": KEY, "PLAN_LIMITS": json.dumps(limits)}
    change = {"userId": USER, "currentPlan": "pro", "requestedPlan": "basic", "env": with_basic}
    assert run_changes([change])[0]["allowed"] is True
    second = repository.usage.counter(USER)
    assert second.hold_limit == 3
    assert first.hold_ends_at is not None and second.hold_from == int(first.hold_ends_at - 100)
    assert second.hold_ends_at and first.hold_ends_at and second.hold_ends_at > first.hold_ends_at


def test_a_wrong_key_makes_the_downgrade_fail_closed(usage_api: str) -> None:
    seed(USER, 1)
    result = run_workflow(usage_api, "pro", "free", key="wrong")
    assert result["error"] and "Cannot check the user limits" in result["error"]
    assert get_usage_counter().counter(USER).hold_limit is None
