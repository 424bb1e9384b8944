"""The Kinde workflow (TypeScript, run by Node) against the real usage-count routes over HTTP.

The case table proves the rule agrees in both languages; this proves the wire agrees: the
workflow's hold request is one the backend accepts, and it reads the backend's answer right.
The local gateway (routes from template.yaml) serves the function on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from planguard.accounts_store import get_repository

from tests import ROOT
from tests.support import USER, api_over_http, seed

KINDE = ROOT / "kinde"
BASE_PATH = "/api/users/accounts/count/"


@pytest.fixture
def usage_api(env: pytest.MonkeyPatch, aws: None) -> Iterator[str]:
    if shutil.which("node") is None or not (KINDE / "node_modules").exists():
        pytest.fail("Node 20 and kinde/node_modules are needed: run `make test` (it installs them)")
    with api_over_http() as api:
        yield f"{api}{BASE_PATH.rstrip('/')}"


def run_workflow(usage_api: str, current: str, requested: str, key: str | None = "test-usage-key") -> Any:
    env = {"PATH": os.environ["PATH"], "USAGE_API_URL": usage_api}
    if key is not None:
        env["USAGE_API_KEY"] = key
    done = subprocess.run(
        ["node", "--import", "tsx", "scripts/runOverHttp.ts", USER, current, requested],
        cwd=KINDE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr}
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_held_downgrade_binds_the_backend_and_a_refused_one_is_denied(usage_api: str) -> None:
    seed(USER, 3)
    allowed = run_workflow(usage_api, "pro", "free")
    assert allowed["denied"] is None
    assert allowed["outcome"]["allowed"] is True
    assert get_repository().counter(USER).hold_limit == 3  # the hold the workflow placed
    get_repository().place_hold(USER, None, "pro", 60)  # lifted again
    get_repository().create(USER, "Fourth", "4444", limit=5)
    denied = run_workflow(usage_api, "pro", "free")
    assert denied["denied"]["message"] == "You need to reduce your usage before moving to this plan:"
    assert denied["denied"]["reasons"][0] == "Your current usage is 4, but the new plan only allows up to 3."
    assert get_repository().counter(USER).hold_limit is None  # refused: nothing recorded


def test_an_upgrade_lifts_the_hold_over_http(usage_api: str) -> None:
    seed(USER, 2)
    assert get_repository().place_hold(USER, 3, "free", 300).held
    assert run_workflow(usage_api, "free", "pro")["outcome"]["allowed"] is True
    assert get_repository().counter(USER).hold_limit == 5


def test_a_wrong_key_makes_the_downgrade_fail_closed(usage_api: str) -> None:
    seed(USER, 1)
    result = run_workflow(usage_api, "pro", "free", key="wrong")
    assert "Cannot check the user limits" in result["error"]
    assert get_repository().counter(USER).hold_limit is None
