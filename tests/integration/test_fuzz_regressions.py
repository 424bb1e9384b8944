"""Regressions for the defects the API fuzzers (tests/fuzz/api/) found: each was a 500 or a pass."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from local.kinde import KindeStandIn
from tests.support import USER, AccountsClient, invoke_http, load_event


def test_token_for_another_application_is_refused_over_the_api(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    """KINDE_AUDIENCE is unset in the template's defaults: any non-empty aud is someone else's token."""
    foreign = kinde.mint(USER, aud=["another-application"])
    result = accounts.list(token=foreign)
    assert (result.status, result.error_code) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("depth", [1200, 5000])
def test_deeply_nested_cursor_is_a_400(accounts: AccountsClient, depth: int) -> None:
    cursor = base64.urlsafe_b64encode(("[" * depth + "]" * depth).encode()).decode().rstrip("=")
    result = accounts.list(query={"cursor": cursor})
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("body", ["\x80", "bm90IGFzY2lp\u00e9", "\U0001f600"])
def test_base64_body_that_is_not_base64_is_a_400(accounts: AccountsClient, body: str) -> None:
    event: dict[str, Any] = load_event("accounts_create.json")
    event["headers"]["authorization"] = f"Bearer {accounts.token}"
    event.update(body=body, isBase64Encoded=True)
    result = invoke_http(accounts.handler, event)
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "payload",
    [
        '{"name":"a\\ud800b","accountNumber":"123"}',
        '{"name":"Bank","accountNumber":"1\\udfff"}',
        '{"name":"\\udbff\\udbff","accountNumber":"\\ud83d"}',
    ],
)
def test_lone_surrogates_in_fields_are_a_422(accounts: AccountsClient, payload: str) -> None:
    added = accounts.request("POST", "/accounts", raw_body=payload)
    assert (added.status, added.error_code) == (422, "VALIDATION_ERROR")
    account = accounts.add("Bank", "0001").body["id"]
    patched = accounts.request("PATCH", "/accounts/{id}", account_id=account, raw_body=payload)
    assert (patched.status, patched.error_code) == (422, "VALIDATION_ERROR")
    assert json.dumps(accounts.list().body["items"])  # nothing half-written, still readable
    assert [item["name"] for item in accounts.list().body["items"]] == ["Bank"]
