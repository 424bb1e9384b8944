"""AccountsFunction end to end: every route and every error code clients rely on.

The handler runs in-process over moto tables built from template.yaml, with the Kinde stand-in
on 127.0.0.1 as issuer (JWKS) and Account API.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from planguard.usage_counter import get_usage_counter

from local.kinde import Fault, KindeStandIn
from tests.support import OTHER_USER, USER, AccountsClient

LIMIT_MESSAGE = (
    "You\u2019ve reached your tracked accounts limit (5). Remove one or upgrade your plan to add more."
)
ENTITLEMENT_MESSAGE = "We could not verify your plan entitlements right now. Please try again."


def assert_error(result: Any, status: int, code: str) -> dict[str, Any]:
    assert result.status == status, result.body
    assert result.error_code == code, result.body
    assert isinstance(result.body["error"]["message"], str) and result.body["error"]["message"]
    assert "Traceback" not in json.dumps(result.body)
    error: dict[str, Any] = result.body["error"]
    return error


# -- the seed scenario ----------------------------------------------------------------------------
def test_seed_scenario_pro_plan_five_then_refused_then_delete_frees_a_slot(accounts: AccountsClient) -> None:
    created = [accounts.add(f"Account {i}", f"00{i}") for i in range(5)]
    assert [r.status for r in created] == [201] * 5
    sixth = accounts.add("Gas", "009")
    error = assert_error(sixth, 403, "LIMIT_REACHED")
    assert error["message"] == LIMIT_MESSAGE
    assert error["usage"] == {"used": 5, "limit": 5}
    assert accounts.request("DELETE", "/accounts/{id}", account_id=created[0].body["id"]).status == 204
    assert accounts.add("Gas", "009").status == 201
    assert get_usage_counter().usage_count(USER) == 5


# -- happy paths --------------------------------------------------------------------------------
def test_create_returns_the_account(accounts: AccountsClient) -> None:
    result = accounts.add("  Electricity  ", " 001234 ")
    assert result.status == 201
    account = result.body
    assert set(account) == {"id", "name", "accountNumber", "createdAt", "updatedAt"}
    assert (account["name"], account["accountNumber"]) == ("Electricity", "001234")
    assert account["createdAt"].endswith("Z") and account["createdAt"] == account["updatedAt"]
    assert result.headers["content-type"] == "application/json"


def test_list_oldest_first_with_usage(accounts: AccountsClient) -> None:
    names = ["Electricity", "Gas", "Water"]
    for i, name in enumerate(names):
        accounts.add(name, f"10{i}")
    result = accounts.list()
    assert result.status == 200
    assert [a["name"] for a in result.body["items"]] == names
    assert result.body["usage"] == {"used": 3, "limit": 5, "limitSource": "cache"}
    assert result.body["nextCursor"] is None


def test_list_pages_with_an_opaque_cursor(accounts: AccountsClient) -> None:
    for i in range(5):
        accounts.add(f"A{i}", f"20{i}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        result = accounts.list(query=query)
        assert result.status == 200, result.body
        seen += [a["name"] for a in result.body["items"]]
        pages += 1
        cursor = result.body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"A{i}" for i in range(5)]
    assert pages == 3


def test_get_patch_delete(accounts: AccountsClient) -> None:
    account = accounts.add("Electricity", "001234").body
    got = accounts.request("GET", "/accounts/{id}", account_id=account["id"])
    assert (got.status, got.body) == (200, account)
    patched = accounts.request(
        "PATCH", "/accounts/{id}", account_id=account["id"], body={"name": "Power", "accountNumber": "5555"}
    )
    assert patched.status == 200
    assert (patched.body["name"], patched.body["accountNumber"]) == ("Power", "5555")
    assert patched.body["createdAt"] == account["createdAt"]
    assert patched.body["updatedAt"] >= account["updatedAt"]
    # the old number is free again, the new one is taken
    assert accounts.add("Other", "001234").status == 201
    assert_error(accounts.add("Dup", "55-55"), 409, "DUPLICATE_ACCOUNT_NUMBER")
    deleted = accounts.request("DELETE", "/accounts/{id}", account_id=account["id"])
    assert (deleted.status, deleted.body) == (204, None)
    assert_error(accounts.request("GET", "/accounts/{id}", account_id=account["id"]), 404, "NOT_FOUND")
    assert_error(accounts.request("DELETE", "/accounts/{id}", account_id=account["id"]), 404, "NOT_FOUND")
    assert get_usage_counter().usage_count(USER) == 1


def test_usage_route(accounts: AccountsClient) -> None:
    accounts.add("Electricity", "001234")
    result = accounts.request("GET", "/usage")
    assert result.status == 200
    assert result.body == {"tracked_accounts": {"used": 1, "limit": 5, "limitSource": "cache"}}


# -- isolation between users ----------------------------------------------------------------------
def test_another_users_account_is_404(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    account = accounts.add("Electricity", "001234").body
    other = AccountsClient(kinde, OTHER_USER)
    for method in ("GET", "DELETE"):
        assert_error(other.request(method, "/accounts/{id}", account_id=account["id"]), 404, "NOT_FOUND")
    patch = other.request("PATCH", "/accounts/{id}", account_id=account["id"], body={"name": "Mine now"})
    assert_error(patch, 404, "NOT_FOUND")
    assert other.list().body["items"] == []
    assert accounts.request("GET", "/accounts/{id}", account_id=account["id"]).body["name"] == "Electricity"
    # the same number is fine for another user
    assert other.add("Electricity", "001234").status == 201


def test_another_users_cursor_is_400(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    for i in range(3):
        accounts.add(f"A{i}", f"30{i}")
    cursor = accounts.list(query={"limit": "1"}).body["nextCursor"]
    other = AccountsClient(kinde, OTHER_USER)
    assert_error(other.list(query={"cursor": cursor}), 400, "BAD_REQUEST")


# -- 400 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", ["{not json", "", "   ", '"name": 1', "[1,", "[" * 5000 + "]" * 5000])
def test_body_that_is_not_json_is_400(accounts: AccountsClient, raw: str) -> None:
    assert_error(accounts.request("POST", "/accounts", raw_body=raw), 400, "BAD_REQUEST")


def test_wrong_content_type_is_400(accounts: AccountsClient) -> None:
    result = accounts.add("A", "1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(result, 400, "BAD_REQUEST")


def test_base64_body_is_decoded(accounts: AccountsClient) -> None:
    event_body = base64.b64encode(json.dumps({"name": "B64", "accountNumber": "64"}).encode()).decode()
    from local.lambda_runtime import stamp_token
    from tests.support import invoke_http, load_event

    event = stamp_token(load_event("accounts_create.json"), accounts.token)
    event["headers"].pop("idempotency-key")
    event.update(body=event_body, isBase64Encoded=True)
    result = invoke_http(accounts.handler, event)
    assert (result.status, result.body["name"]) == (201, "B64")


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "abc"},
        {"limit": "-1"},
        {"limit": "\u00b2"},  # isdigit() says yes, int() says no
        {"limit": "\u0661"},
        {"limit": "1e3"},
        {"limit": " 5"},
        {"cursor": "%%%"},
        {"cursor": "eyJ1IjoiMCIsImEiOiJ4In0"},
        {"cursor": ""},
    ],
)
def test_bad_query_parameters_are_400(accounts: AccountsClient, query: dict[str, str]) -> None:
    assert_error(accounts.list(query=query), 400, "BAD_REQUEST")


def test_forged_cursor_for_own_user_is_400_not_a_storage_error(accounts: AccountsClient) -> None:
    import hashlib

    tag = hashlib.sha256(USER.encode()).hexdigest()[:16]
    forged = base64.urlsafe_b64encode(json.dumps({"u": tag, "a": "not-an-id"}).encode()).decode()
    assert_error(accounts.list(query={"cursor": forged}), 400, "BAD_REQUEST")


# -- 401 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "", "garbage", "a.b.c"])
def test_missing_or_bad_token_is_401(accounts: AccountsClient, token: str | None) -> None:
    for method, route in AccountsClient.SAMPLES:
        result = accounts.request(
            method,
            route,
            token=token,
            account_id="01JD3W5V6Q2XKQY7M5R8T9C0AB" if "{id}" in route else None,
            body={"name": "x", "accountNumber": "1"} if method in ("POST", "PATCH") else None,
        )
        assert_error(result, 401, "UNAUTHORIZED")
        assert result.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    assert_error(accounts.list(token=kinde.mint(USER, ttl_seconds=-3600)), 401, "UNAUTHORIZED")


def test_a_sub_that_cannot_be_a_kinde_id_is_401_never_503(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    """A 2 KiB ``sub`` would make every key too long for DynamoDB: a retry never helps."""
    token = kinde.mint("kp_" + "a" * 2045)
    for method, route in [("POST", "/accounts"), ("GET", "/accounts"), ("GET", "/usage")]:
        body = {"name": "x", "accountNumber": "1"} if method == "POST" else None
        assert_error(accounts.request(method, route, body=body, token=token), 401, "UNAUTHORIZED")


def test_m2m_token_is_401(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    token = kinde.mint("client_abc", gty=["client_credentials"])
    assert_error(accounts.list(token=token), 401, "UNAUTHORIZED")


# -- 403 ------------------------------------------------------------------------------------------
def test_no_entitlement_is_403_by_default(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    kinde.plan_limits["basic"] = {"other_feature": 1}
    kinde.set_plan(USER, "basic")
    assert_error(accounts.add("A", "1"), 403, "NO_ENTITLEMENT")
    assert get_usage_counter().usage_count(USER) == 0
    assert accounts.request("GET", "/usage").body["tracked_accounts"]["limit"] == 0


def test_missing_entitlement_unlimited_policy(
    accounts: AccountsClient, kinde: KindeStandIn, env: Any
) -> None:
    from tests.support import clear_caches

    env.setenv("MISSING_ENTITLEMENT", "unlimited")
    clear_caches()
    kinde.plan_limits["basic"] = {"other_feature": 1}
    kinde.set_plan(USER, "basic")
    assert [accounts.add(f"A{i}", str(i)).status for i in range(7)] == [201] * 7


def test_free_plan_limit_is_three(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    kinde.set_plan(USER, "free")
    assert [accounts.add(f"A{i}", str(i)).status for i in range(4)] == [201, 201, 201, 403]


# -- 404 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "account_id", ["nope", "01JD3W5V6Q2XKQY7M5R8T9C0A", "../../etc", "01JD3W5V6Q2XKQY7M5R8T9C0AB"]
)
def test_bad_or_unknown_ids_are_404(accounts: AccountsClient, account_id: str) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        body = {"name": "x"} if method == "PATCH" else None
        assert_error(
            accounts.request(method, "/accounts/{id}", account_id=account_id, body=body), 404, "NOT_FOUND"
        )


def test_unknown_route_is_404_with_the_error_body(accounts: AccountsClient) -> None:
    from tests.support import invoke_http, load_event

    event = load_event("accounts_list.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nope"
    assert_error(invoke_http(accounts.handler, event), 404, "NOT_FOUND")


# -- 409 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["001234", "00-12 34", " 001234 ", "00 1234"])
def test_duplicate_account_number_is_409(accounts: AccountsClient, variant: str) -> None:
    assert accounts.add("Electricity", "001234").status == 201
    assert_error(accounts.add("Again", variant), 409, "DUPLICATE_ACCOUNT_NUMBER")
    assert get_usage_counter().usage_count(USER) == 1


def test_case_folded_numbers_collide_but_leading_zeros_count(accounts: AccountsClient) -> None:
    assert accounts.add("A", "AB-12").status == 201
    assert_error(accounts.add("B", "ab12"), 409, "DUPLICATE_ACCOUNT_NUMBER")
    assert accounts.add("C", "1234").status == 201
    assert accounts.add("D", "01234").status == 201


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("0012\u200b34", id="zero-width-space"),
        pytest.param("\uff10\uff10\uff11\uff12\uff13\uff14", id="fullwidth-digits"),
        pytest.param("0012\u201134", id="U+2011-non-breaking-hyphen"),
        pytest.param("00\u00ad1234", id="soft-hyphen"),
        pytest.param("0012\u201334", id="en-dash"),
        pytest.param("\u2060001234\ufeff", id="word-joiner-and-BOM"),
    ],
)
def test_invisible_and_lookalike_characters_do_not_make_a_new_number(
    accounts: AccountsClient, variant: str
) -> None:
    """The guard compares what a person reads: NFKC, with format characters and dashes gone."""
    assert accounts.add("Electricity", "001234").status == 201
    assert_error(accounts.add("Again", variant), 409, "DUPLICATE_ACCOUNT_NUMBER")
    assert get_usage_counter().usage_count(USER) == 1


def test_a_lookalike_number_is_stored_as_entered(accounts: AccountsClient) -> None:
    entered = "\uff21\uff22-12"  # fullwidth "AB"
    created = accounts.add("A", entered)
    assert created.status == 201 and created.body["accountNumber"] == entered
    assert_error(accounts.add("B", "ab12"), 409, "DUPLICATE_ACCOUNT_NUMBER")
    stored = accounts.request("GET", "/accounts/{id}", account_id=created.body["id"]).body
    assert stored["accountNumber"] == entered


def test_renumbering_to_a_lookalike_of_a_taken_number_is_409(accounts: AccountsClient) -> None:
    accounts.add("A", "111")
    second = accounts.add("B", "222").body
    result = accounts.request(
        "PATCH", "/accounts/{id}", account_id=second["id"], body={"accountNumber": "1\u200b11"}
    )
    assert_error(result, 409, "DUPLICATE_ACCOUNT_NUMBER")


def test_patch_to_a_taken_number_is_409(accounts: AccountsClient) -> None:
    accounts.add("A", "111")
    second = accounts.add("B", "222").body
    result = accounts.request(
        "PATCH", "/accounts/{id}", account_id=second["id"], body={"accountNumber": "1-11"}
    )
    assert_error(result, 409, "DUPLICATE_ACCOUNT_NUMBER")
    assert accounts.request("GET", "/accounts/{id}", account_id=second["id"]).body["accountNumber"] == "222"


# -- 413 ------------------------------------------------------------------------------------------
def test_huge_body_is_413(accounts: AccountsClient) -> None:
    result = accounts.add("x" * 17_000, "1")
    assert_error(result, 413, "PAYLOAD_TOO_LARGE")


# -- 422 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["name", "accountNumber"]),
        ({"name": "A"}, ["accountNumber"]),
        ({"name": 5, "accountNumber": "1"}, ["name"]),
        ({"name": "A", "accountNumber": 1234}, ["accountNumber"]),
        ({"name": "   ", "accountNumber": "1"}, ["name"]),
        ({"name": "x" * 201, "accountNumber": "1"}, ["name"]),
        ({"name": "bad\u0000name", "accountNumber": "1"}, ["name"]),
        ({"name": "A", "accountNumber": "1\n2"}, ["accountNumber"]),
        ({"name": "A", "accountNumber": " - - "}, ["accountNumber"]),  # normalises to nothing
        ({"name": "A", "accountNumber": "--"}, ["accountNumber"]),
        ({"name": "A", "accountNumber": "\u200b\u00ad"}, ["accountNumber"]),  # only invisible characters
        ({"name": "evil\u202egnp.exe", "accountNumber": "1"}, ["name"]),  # right-to-left override
        ({"name": "A", "accountNumber": "12\u202e34"}, ["accountNumber"]),
        ({"name": "a\u2066b\u2069", "accountNumber": "1\u200f"}, ["name", "accountNumber"]),
        ({"name": "A\u061c", "accountNumber": "\u200e1"}, ["name", "accountNumber"]),
        ({"name": None, "accountNumber": "1"}, ["name"]),
        ({"name": "A", "accountNumber": "1", "kindeId": "kp_x"}, ["kindeId"]),
        ([1, 2], ["body"]),
        ("just a string", ["body"]),
    ],
    ids=lambda value: (
        "+".join(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    ),
)
def test_invalid_create_is_422_with_fields(accounts: AccountsClient, body: Any, fields: list[str]) -> None:
    error = assert_error(accounts.request("POST", "/accounts", body=body), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["fields"]] == fields, error
    assert all(f["message"] for f in error["fields"])
    assert get_usage_counter().usage_count(USER) == 0


def test_name_of_200_characters_is_fine(accounts: AccountsClient) -> None:
    assert accounts.add("x" * 200, "y" * 200).status == 201


def test_renumbering_to_only_separators_is_422(accounts: AccountsClient) -> None:
    account = accounts.add("A", "1").body
    result = accounts.request(
        "PATCH", "/accounts/{id}", account_id=account["id"], body={"accountNumber": "- -"}
    )
    assert_error(result, 422, "VALIDATION_ERROR")
    stored = accounts.request("GET", "/accounts/{id}", account_id=account["id"]).body
    assert stored["accountNumber"] == "1"


@pytest.mark.parametrize("body", [{"name": "A\u202eB"}, {"accountNumber": "1\u202a2"}, {"name": "\u2067x"}])
def test_patching_in_a_bidi_control_is_422(accounts: AccountsClient, body: dict[str, str]) -> None:
    account = accounts.add("A", "1").body
    result = accounts.request("PATCH", "/accounts/{id}", account_id=account["id"], body=body)
    error = assert_error(result, 422, "VALIDATION_ERROR")
    assert "bidirectional" in error["fields"][0]["message"]
    stored = accounts.request("GET", "/accounts/{id}", account_id=account["id"]).body
    assert (stored["name"], stored["accountNumber"]) == ("A", "1")


def test_empty_patch_is_422(accounts: AccountsClient) -> None:
    account = accounts.add("A", "1").body
    result = accounts.request("PATCH", "/accounts/{id}", account_id=account["id"], body={})
    assert_error(result, 422, "VALIDATION_ERROR")


# -- idempotency ----------------------------------------------------------------------------------
def test_idempotent_retry_returns_the_first_response(accounts: AccountsClient) -> None:
    key = {"Idempotency-Key": "retry-1"}
    first = accounts.add("Electricity", "001234", headers=key)
    again = accounts.add("Electricity", "001234", headers=key)
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert get_usage_counter().usage_count(USER) == 1
    assert len(accounts.list().body["items"]) == 1


def test_same_key_different_body_is_422(accounts: AccountsClient) -> None:
    key = {"Idempotency-Key": "retry-2"}
    assert accounts.add("Electricity", "001234", headers=key).status == 201
    assert_error(accounts.add("Gas", "999", headers=key), 422, "IDEMPOTENCY_KEY_REUSED")
    assert get_usage_counter().usage_count(USER) == 1


def test_keys_are_scoped_to_the_user(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = accounts.add("Electricity", "001234", headers=key)
    theirs = AccountsClient(kinde, OTHER_USER).add("Electricity", "001234", headers=key)
    assert (mine.status, theirs.status) == (201, 201)
    assert mine.body["id"] != theirs.body["id"]


def test_failed_request_is_not_remembered(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    key = {"Idempotency-Key": "after-fault"}
    kinde.faults.extend([Fault(status=500)] * 3)
    assert_error(accounts.add("Electricity", "001234", headers=key), 503, "ENTITLEMENT_ERROR")
    assert accounts.add("Electricity", "001234", headers=key).status == 201


def test_request_still_running_is_409(accounts: AccountsClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from accounts_api.service import service

    key = {"Idempotency-Key": "in-flight"}
    inner: list[Any] = []
    original_add = service()._add

    def add_while_a_retry_arrives(*args: Any, **kwargs: Any) -> Any:
        if not inner:
            inner.append(accounts.add("Electricity", "001234", headers=key))
        return original_add(*args, **kwargs)

    monkeypatch.setattr(service(), "_add", add_while_a_retry_arrives)
    assert accounts.add("Electricity", "001234", headers=key).status == 201
    assert len(inner) == 1, "the patched add never ran"
    error = assert_error(inner[0], 409, "IDEMPOTENCY_IN_PROGRESS")
    assert error["message"]
    assert get_usage_counter().usage_count(USER) == 1


def test_a_replay_after_the_account_was_deleted_answers_the_first_answer(accounts: AccountsClient) -> None:
    """As Stripe does: the key names one request, whose answer stays its answer for the record's
    24 h; the replay creates nothing again (a deleted account is not re-created, nor counted)."""
    key = {"Idempotency-Key": "then-deleted"}
    first = accounts.add("Electricity", "001234", headers=key)
    assert first.status == 201
    assert accounts.request("DELETE", "/accounts/{id}", account_id=first.body["id"]).status == 204
    replay = accounts.add("Electricity", "001234", headers=key)
    assert (replay.status, replay.body) == (201, first.body)
    assert_error(accounts.request("GET", "/accounts/{id}", account_id=first.body["id"]), 404, "NOT_FOUND")
    assert accounts.list().body["items"] == []
    assert get_usage_counter().usage_count(USER) == 0
    assert accounts.add("Electricity", "001234").status == 201  # without the key: a new account


def test_bad_idempotency_key_is_400(accounts: AccountsClient) -> None:
    assert_error(accounts.add("A", "1", headers={"Idempotency-Key": "x" * 300}), 400, "BAD_REQUEST")


# -- Kinde down -----------------------------------------------------------------------------------
def test_kinde_down_add_is_503_and_reads_keep_working(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    account = accounts.add("Electricity", "001234").body
    from tests.support import clear_caches

    clear_caches()  # a cold container: no cached entitlement
    kinde.faults.extend([Fault(status=503)] * 3)
    error_result = accounts.add("Gas", "999")
    error = assert_error(error_result, 503, "ENTITLEMENT_ERROR")
    assert error["message"] == ENTITLEMENT_MESSAGE
    assert int(error_result.headers["retry-after"]) >= 1
    kinde.faults.extend([Fault(status=503)] * 30)
    listed = accounts.list()
    assert listed.status == 200
    assert listed.body["usage"] == {"used": 1, "limit": None, "limitSource": "unavailable"}
    assert accounts.request("GET", "/usage").body["tracked_accounts"]["limitSource"] == "unavailable"
    assert accounts.request("GET", "/accounts/{id}", account_id=account["id"]).status == 200
    renamed = accounts.request("PATCH", "/accounts/{id}", account_id=account["id"], body={"name": "Power"})
    assert renamed.status == 200
    assert accounts.request("DELETE", "/accounts/{id}", account_id=account["id"]).status == 204
    assert get_usage_counter().usage_count(USER) == 0


# -- observability --------------------------------------------------------------------------------
def test_logs_and_metrics(
    accounts: AccountsClient, kinde: KindeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import logging
    import os

    logs = io.StringIO()
    handlers = [
        h
        for h in logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).handlers
        if isinstance(h, logging.StreamHandler)
    ]
    previous = [h.setStream(logs) for h in handlers]
    for i in range(5):
        accounts.add(f"A{i}", str(i))
    accounts.add("A6", "6")
    out = capsys.readouterr().out
    assert '"AccountsCreated"' in out and '"LimitReached"' in out
    assert accounts.token not in out
    from tests.support import clear_caches

    clear_caches()
    kinde.faults.extend([Fault(status=500)] * 3)
    accounts.add("A7", "7")
    out = capsys.readouterr().out
    for h, stream in zip(handlers, previous, strict=True):
        h.setStream(stream)
    assert '"EntitlementErrors"' in out
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert lines and all(line["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" for line in lines)
    assert any(line.get("detail") == "Account API answered 500" for line in lines)
    assert accounts.token not in logs.getvalue()


def test_a_bug_is_a_500_error_body_without_a_trace(
    accounts: AccountsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accounts_api.service import service

    calls: list[tuple[Any, ...]] = []

    def broken(*args: Any) -> None:
        calls.append(args)
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service().repository, "get", broken)
    result = accounts.request("GET", "/accounts/{id}", account_id="01JD3W5V6Q2XKQY7M5R8T9C0AB")
    assert len(calls) == 1
    error = assert_error(result, 500, "INTERNAL_ERROR")
    assert "secret internals" not in json.dumps(error)


def test_rate_limit_header_with_odd_digits_is_a_503_not_a_500(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    from tests.support import clear_caches

    clear_caches()
    kinde.faults.extend([Fault(status=429, headers={"Retry-After": "\u00b2"})] * 3)
    assert_error(accounts.add("A", "1"), 503, "ENTITLEMENT_ERROR")


def test_idempotency_store_down_is_503_and_creates_nothing(
    accounts: AccountsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    boto3.client("dynamodb").delete_table(TableName="IdempotencyTable")
    error = assert_error(accounts.add("A", "1", headers={"Idempotency-Key": "k"}), 503, "SERVICE_UNAVAILABLE")
    assert error["message"]
    assert get_usage_counter().usage_count(USER) == 0
