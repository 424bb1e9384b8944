"""The attack that worked before: any web page POSTs the stand-in's dev endpoints with
``Content-Type: text/plain`` (no CORS preflight), deleting a victim's data or changing a plan with no
plan check. On a ``make dev`` of its own, the same requests from another site are refused and
change nothing; from a rebound DNS name (a non-loopback ``Host``) too; the CLI's still work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.integration.local_stack import DevStack, start_dev

EVIL = "https://evil.example"
VICTIM, OTHER = "kp_victim", "kp_other"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(tmp_path_factory.mktemp("site-rules"))
    token = stack.token(VICTIM, "pro")
    for i in range(2):
        assert stack.add_account(token, f"Victim {i}", f"V-{i}").status_code == 201
    stack.token(OTHER, "pro")
    yield stack
    assert stack.stop() == 0, stack.stderr


def usage_count(dev: DevStack, user: str) -> int:
    response = requests.get(
        f"{dev.api}/api/users/accounts/count/{user}", headers={"x-api-key": "local-dev-usage-key"}, timeout=10
    )
    count: int = response.json()["count"]
    return count


def plan_of(dev: DevStack, user: str) -> str:
    response = requests.get(
        f"{dev.kinde}/account_api/v1/entitlements",
        headers={"Authorization": f"Bearer {dev.token(user)}"},
        timeout=10,
    )
    plan: str = response.json()["data"]["plans"][0]["key"]
    return plan


def as_a_web_page(url: str, body: dict[str, object], **headers: str) -> requests.Response:
    """What a form or ``fetch(url, {method: "POST", body})`` on another site sends: text/plain."""
    sent = {"Content-Type": "text/plain;charset=UTF-8", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    return requests.post(url, data=json.dumps(body), headers={**sent, **headers}, timeout=30)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/dev/webhook", {"type": "user.deleted", "user": VICTIM}),
        ("/dev/plan", {"user": OTHER, "plan": "free"}),
        ("/dev/token", {"user": VICTIM, "plan": "free"}),
    ],
)
def test_a_foreign_origin_is_refused_and_changes_nothing(
    dev: DevStack, path: str, body: dict[str, object]
) -> None:
    refused = as_a_web_page(f"{dev.kinde}{path}", body)
    assert refused.status_code == 403
    assert "is not the dashboard's" in refused.json()["errors"][0]["message"]
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert usage_count(dev, VICTIM) == 2
    assert (plan_of(dev, VICTIM), plan_of(dev, OTHER)) == ("pro", "pro")
    # and through the gateway, on the dashboard's own origin: there is nothing to pass on
    assert as_a_web_page(f"{dev.api}{path}", body).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Origin": "http://127.0.0.1.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},  # no Origin, yet from another site's page
    ],
)
def test_other_disguises_are_refused(dev: DevStack, headers: dict[str, str]) -> None:
    body = json.dumps({"type": "user.deleted", "user": VICTIM})
    refused = requests.post(
        f"{dev.kinde}/dev/webhook", data=body, headers={"Content-Type": "text/plain", **headers}, timeout=10
    )
    assert refused.status_code == 403
    assert usage_count(dev, VICTIM) == 2


def test_a_rebound_dns_name_is_refused(dev: DevStack) -> None:
    """evil.example resolved to 127.0.0.1: same-origin for the browser, but not our name."""
    port = urlsplit(dev.kinde).port
    rebound = f"http://evil.example:{port}"
    refused = as_a_web_page(
        f"{dev.kinde}/dev/webhook",
        {"type": "user.deleted", "user": VICTIM},
        Host=f"evil.example:{port}",
        Origin=rebound,
        **{"Sec-Fetch-Site": "same-origin"},
    )
    assert refused.status_code == 403
    assert "is not a loopback address" in refused.json()["errors"][0]["message"]
    assert usage_count(dev, VICTIM) == 2
    token = requests.post(
        f"{dev.kinde}/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": "plan-guard-dev", "refresh_token": "x"},
        headers={"Host": f"evil.example:{port}"},
        timeout=10,
    )
    assert token.status_code == 403


def test_the_cli_and_the_dashboard_still_may(dev: DevStack) -> None:
    """No Origin (curl, make token, make plan) is no browser page; the dashboard's origin is ours."""
    assert requests.post(f"{dev.kinde}/dev/token", json={"user": "kp_cli"}, timeout=10).status_code == 200
    assert dev.plan("kp_cli", "pro")["plan"] == "pro"
    from_dashboard = requests.post(
        f"{dev.kinde}/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": "plan-guard-dev", "refresh_token": "unknown"},
        headers={"Origin": dev.api},
        timeout=10,
    )
    assert from_dashboard.status_code == 400  # refused as OAuth would, not as a foreign write
    assert from_dashboard.headers["Access-Control-Allow-Origin"] == dev.api
