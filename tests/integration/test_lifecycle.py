"""The plan lifecycle: upgrade at once, the downgrade hold, and Kinde's user.deleted webhook.

The entitlement cache is warm here, as in production (the template's 60 s): the stand-in is
told the new plan while the function still remembers the old one.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import boto3
import pytest
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn
from tests.support import (
    OTHER_USER,
    USER,
    AccountsClient,
    clear_caches,
    deliver_webhook,
    hold_event,
    invoke_http,
    place_hold,
    seed,
    sign_webhook,
)


def add(accounts: AccountsClient, n: int) -> Any:
    return accounts.add(f"Account {n}", f"N-{n:04d}")


def fill(accounts: AccountsClient, count: int) -> None:
    for n in range(count):
        assert add(accounts, n).status == 201


def delete_one(accounts: AccountsClient) -> None:
    first = accounts.list().body["items"][0]["id"]
    assert accounts.request("DELETE", "/accounts/{id}", account_id=first).status == 204


def usage(accounts: AccountsClient) -> dict[str, Any]:
    body: dict[str, Any] = accounts.request("GET", "/usage").body["tracked_accounts"]
    return body


def partition(user: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").query(
        TableName="AccountsTable",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}},
        ConsistentRead=True,
    )["Items"]
    return items


# -- upgrade at once ----------------------------------------------------------------------------
def test_an_upgrade_is_honoured_at_once_with_one_extra_kinde_call(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    kinde.set_plan(USER, "free")
    fill(accounts, 3)
    kinde.set_plan(USER, "pro")  # Kinde applied the upgrade; the warm cache still says free
    calls = kinde.account_api_calls
    assert add(accounts, 3).status == 201
    assert kinde.account_api_calls == calls + 1  # the one re-read, on the refusal
    assert add(accounts, 4).status == 201
    assert kinde.account_api_calls == calls + 1  # the fresh answer is cached
    assert usage(accounts) == {"used": 5, "limit": 5, "limitSource": "cache"}


def test_refusals_re_read_at_most_once_per_user_per_five_seconds(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    kinde.set_plan(USER, "free")
    fill(accounts, 3)
    calls = kinde.account_api_calls
    for n in range(5):
        refused = add(accounts, 10 + n)
        assert refused.error_code == "LIMIT_REACHED"
        assert refused.body["error"]["usage"] == {"used": 3, "limit": 3}
    assert kinde.account_api_calls == calls + 1
    # Another user has a re-read budget of their own.
    other = AccountsClient(kinde, OTHER_USER)
    kinde.set_plan(OTHER_USER, "free")
    fill(other, 3)
    calls = kinde.account_api_calls
    assert add(other, 3).error_code == "LIMIT_REACHED"
    assert kinde.account_api_calls == calls + 1


def test_a_fresh_answer_is_not_asked_for_when_the_cache_was_not_used(
    accounts: AccountsClient, kinde: KindeStandIn, env: pytest.MonkeyPatch
) -> None:
    env.setenv("ENTITLEMENT_CACHE_SECONDS", "0")
    clear_caches()
    kinde.set_plan(USER, "free")
    fill(accounts, 3)
    calls = kinde.account_api_calls
    assert add(accounts, 3).error_code == "LIMIT_REACHED"
    assert kinde.account_api_calls == calls + 1  # the add's own read; no second one


def test_a_plan_gained_after_no_entitlement_is_honoured_at_once(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    kinde.plan_limits["starter"] = {}  # a plan without the tracked_accounts feature
    kinde.set_plan(USER, "starter")
    assert add(accounts, 0).error_code == "NO_ENTITLEMENT"
    kinde.set_plan(USER, "pro")
    assert add(accounts, 0).status == 201


# -- the downgrade hold ---------------------------------------------------------------------------
def test_hold_held_records_the_limit_until_its_expiry(env: pytest.MonkeyPatch, aws: None) -> None:
    seed(USER, 3)
    before = time.time()
    result = place_hold(USER, 3)
    assert result.status == 200
    assert result.headers["cache-control"] == "no-store"
    body = result.body
    assert {k: body[k] for k in ("kindeId", "count", "held", "limit")} == {
        "kindeId": USER,
        "count": 3,
        "held": True,
        "limit": 3,
    }
    until = datetime.fromisoformat(body["holdUntil"].replace("Z", "+00:00")).timestamp()
    assert before + 300 + 60 - 2 <= until <= time.time() + 300 + 60 + 1  # hold + cache seconds


def test_hold_refused_records_nothing_and_reports_the_count(env: pytest.MonkeyPatch, aws: None) -> None:
    seed(USER, 4)
    result = place_hold(USER, 3)
    assert result.status == 200
    assert result.body == {"kindeId": USER, "count": 4, "held": False, "limit": 3, "holdUntil": None}
    assert get_usage_counter().counter(USER).hold_limit is None


def test_hold_for_a_user_with_no_accounts_yet(env: pytest.MonkeyPatch, aws: None) -> None:
    result = place_hold("kp_newcomer", 0)
    assert (result.body["held"], result.body["count"]) == (True, 0)
    assert get_usage_counter().counter("kp_newcomer").hold_limit == 0


def test_an_add_right_after_a_held_downgrade_is_refused_at_the_new_limit(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    fill(accounts, 3)  # pro, 3 of 5; the cache is warm with pro's 5
    assert place_hold(USER, 3).body["held"] is True  # the workflow allowed pro -> free
    calls = kinde.account_api_calls
    refused = add(accounts, 3)  # Kinde has not applied the plan yet: the stand-in still says pro
    assert refused.status == 403
    assert refused.error_code == "LIMIT_REACHED"
    assert refused.body["error"]["usage"] == {"used": 3, "limit": 3}
    assert "(3)" in refused.body["error"]["message"]
    # A hold's refusal reads Kinde's entitlements list once (no plan applied since: it stands)...
    assert kinde.account_api_calls == calls + 1
    assert add(accounts, 3).error_code == "LIMIT_REACHED"
    assert kinde.account_api_calls == calls + 1  # ...and at most once per user per 5 s
    assert usage(accounts) == {"used": 3, "limit": 3, "limitSource": "hold"}
    assert get_usage_counter().usage_count(USER) == 3


def test_a_hold_from_before_hold_from_was_stored_runs_to_its_end_without_asking_kinde(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    fill(accounts, 2)
    boto3.client("dynamodb").update_item(  # as the first build stored a hold: no holdFrom
        TableName="AccountsTable",
        Key={"PK": {"S": f"USER#{USER}"}, "SK": {"S": "USAGE#tracked_accounts"}},
        UpdateExpression="SET holdLimit = :l, holdUntil = :u",
        ExpressionAttributeValues={":l": {"N": "2"}, ":u": {"N": str(int(time.time()) + 300)}},
    )
    calls = kinde.account_api_calls
    assert add(accounts, 2).body["error"]["usage"] == {"used": 2, "limit": 2}
    assert kinde.account_api_calls == calls  # nothing Kinde shows could end it: not asked


def test_a_kinde_failure_on_the_hold_re_read_keeps_the_refusal(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    from local.kinde import Fault

    fill(accounts, 3)
    assert place_hold(USER, 3).body["held"] is True
    kinde.faults.extend([Fault(status=503)] * 3)
    refused = add(accounts, 3)
    assert (refused.status, refused.error_code) == (403, "LIMIT_REACHED")
    assert kinde.faults == []  # the re-read was tried (and failed three times)


def test_an_unlimited_entitlement_is_still_bound_by_a_hold(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    kinde.plan_limits["enterprise"] = {"tracked_accounts": None}
    kinde.set_plan(USER, "enterprise")
    fill(accounts, 2)
    assert place_hold(USER, 2).body["held"] is True
    assert add(accounts, 2).error_code == "LIMIT_REACHED"
    assert usage(accounts) == {"used": 2, "limit": 2, "limitSource": "hold"}


def test_an_expired_hold_gives_the_entitlement_limit_back(
    accounts: AccountsClient, env: pytest.MonkeyPatch
) -> None:
    env.setenv("DOWNGRADE_HOLD_SECONDS", "4")  # long enough for a loaded machine to add within it
    env.setenv("ENTITLEMENT_CACHE_SECONDS", "0")
    # Kinde never applies this downgrade (still pro): past its end the hold would be extended, up to
    # the longest a downgrade may stay pending; here that is the hold's own length.
    env.setenv("DOWNGRADE_HOLD_MAX_SECONDS", "4")
    clear_caches()
    fill(accounts, 2)
    hold = place_hold(USER, 2).body
    assert hold["held"] is True
    assert add(accounts, 2).error_code == "LIMIT_REACHED"
    until = datetime.fromisoformat(hold["holdUntil"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, until - time.time()) + 1.1)  # the hold's end is stored in whole seconds
    assert usage(accounts) == {"used": 2, "limit": 5, "limitSource": "kinde"}
    assert add(accounts, 2).status == 201


def test_a_later_hold_only_lowers_and_an_unlimited_one_places_nothing(accounts: AccountsClient) -> None:
    fill(accounts, 2)
    first = place_hold(USER, 2).body
    assert first["held"] is True
    assert add(accounts, 2).error_code == "LIMIT_REACHED"
    # A higher limit (a selection that may never be paid) keeps the lower hold, answering with it.
    higher = place_hold(USER, 4, plan="pro").body
    assert (higher["held"], higher["limit"], higher["count"]) == (True, 2, 2)
    assert higher["holdUntil"] >= first["holdUntil"]
    assert add(accounts, 2).error_code == "LIMIT_REACHED"
    assert usage(accounts) == {"used": 2, "limit": 2, "limitSource": "hold"}
    # An unlimited plan has nothing to hold: the answer is the active hold, nothing is written.
    unlimited = place_hold(USER, None, plan="enterprise").body
    assert (unlimited["held"], unlimited["limit"], unlimited["count"]) == (True, 2, 2)
    assert get_usage_counter().counter(USER).hold_limit == 2
    # A lower one replaces it.
    assert place_hold(USER, 2, plan="free").body["held"] is True
    delete_one(accounts)
    lower = place_hold(USER, 1, plan="tiny").body
    assert (lower["held"], lower["limit"]) == (True, 1)
    assert usage(accounts) == {"used": 1, "limit": 1, "limitSource": "hold"}


def test_with_no_hold_an_unlimited_request_answers_limit_null(env: pytest.MonkeyPatch, aws: None) -> None:
    seed(USER, 3)
    body = place_hold(USER, None, plan="enterprise").body
    assert body == {"kindeId": USER, "count": 3, "held": True, "limit": None, "holdUntil": None}


@pytest.mark.parametrize(
    ("credential", "mode"),
    [
        (None, "api_key"),
        ("wrong-key", "api_key"),
        ("user-token", "api_key"),
        (None, "none"),
        ("no-key-configured", "none"),
    ],
)
def test_hold_takes_the_usage_key_only(
    credential: str | None, mode: str, env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    from usage_count_api.handler import lambda_handler

    env.setenv("USAGE_AUTH", mode)
    if credential == "no-key-configured":  # nobody may hold, even in "none" mode
        env.delenv("USAGE_API_KEY")
    clear_caches()
    event = hold_event(USER, {"limit": "3", "plan": "free"}, key=None)
    if credential == "user-token":  # the user's own token reads a count, but never holds
        event["headers"]["authorization"] = f"Bearer {kinde.mint(USER)}"
    elif credential is not None:
        event["headers"]["x-api-key"] = credential
    result = invoke_http(lambda_handler, event, "UsageCountFunction")
    assert (result.status, result.error_code) == (401, "UNAUTHORIZED")
    assert result.headers["www-authenticate"].startswith("Bearer")
    assert get_usage_counter().counter(USER).hold_limit is None


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "1000001"},
        {"limit": "3.0"},
        {"limit": "\u00b2"},
        {"limit": "3,4"},
        {"plan": "free"},
        {"limit": "3", "plan": "x" * 200},
        {"limit": "3", "plan": "free plan"},
    ],
)
def test_a_bad_hold_request_is_400(query: dict[str, str], env: pytest.MonkeyPatch, aws: None) -> None:
    from usage_count_api.handler import lambda_handler

    result = invoke_http(lambda_handler, hold_event(USER, query), "UsageCountFunction")
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")
    assert result.body["error"]["message"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "limit=3&plan=free"),
        ("application/json", '{"limit": 3, "plan": "free"}'),
        ("application/json", '{"limit": "3", "plan": "free"}'),
    ],
)
def test_hold_fields_may_come_as_a_form_or_json(
    content_type: str, body: str, env: pytest.MonkeyPatch, aws: None
) -> None:
    from usage_count_api.handler import lambda_handler

    seed(USER, 1)
    event = hold_event(USER, None)
    event["headers"]["content-type"] = content_type
    event["body"] = body
    result = invoke_http(lambda_handler, event, "UsageCountFunction")
    assert result.status == 200
    assert (result.body["held"], result.body["limit"], result.body["count"]) == (True, 3, 1)


# -- user.deleted ---------------------------------------------------------------------------------
def user_deleted(kinde: KindeStandIn, user: str = USER, **overrides: Any) -> str:
    return sign_webhook(kinde, "user.deleted", {"user": {"id": user}}, **overrides)


def test_user_deleted_removes_every_item_of_that_user_only(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    fill(accounts, 3)
    place_hold(USER, 3)
    seed(OTHER_USER, 2)
    result = deliver_webhook(user_deleted(kinde), "msg_1")
    assert (result.status, result.body) == (200, {"received": True})
    assert partition(USER) == []
    assert get_usage_counter().usage_count(OTHER_USER) == 2
    assert len(partition(OTHER_USER)) == 2 * 2 + 1  # accounts, guards, counter
    # The deleted user's token is still valid (Kinde's tokens outlive their user): refused.
    assert accounts.request("GET", "/usage").error_code == "USER_DELETED"
    assert add(accounts, 0).error_code == "USER_DELETED"
    assert partition(USER) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param("", 400, "BAD_REQUEST", id="empty"),  # not a JWT
        pytest.param("not-a-jwt", 400, "BAD_REQUEST", id="one-part"),
        pytest.param("a.b.c", 400, "BAD_REQUEST", id="undecodable-parts"),
        # a JWT with the wrong algorithm (alg none, no signature)
        pytest.param(
            "eyJhbGciOiJub25lIn0.eyJ0eXBlIjoidXNlci5kZWxldGVkIn0.", 401, "UNAUTHORIZED", id="alg-none"
        ),
    ],
)
def test_garbage_is_refused_and_records_nothing(
    body: str, status: int, code: str, accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    """The webhook contract: a body that is not a JWT is a 400; a wrong key, algorithm or
    signature is a 401. Each case is pinned to one answer."""
    fill(accounts, 1)
    result = deliver_webhook(body, "msg_garbage")
    assert (result.status, result.error_code) == (status, code)
    assert get_usage_counter().usage_count(USER) == 1
    assert deliver_webhook(user_deleted(kinde), "msg_garbage").status == 200  # not marked processed
    assert get_usage_counter().usage_count(USER) == 0


def test_a_forged_key_or_an_unknown_kid_is_401(accounts: AccountsClient, kinde: KindeStandIn) -> None:
    from local.kinde import SigningKey, new_rsa_key

    fill(accounts, 1)
    forged = SigningKey(kinde.keys[-1].kid, new_rsa_key())  # the right kid, an attacker's key
    unknown = SigningKey("attacker-kid", new_rsa_key())
    for key in (forged, unknown):
        result = deliver_webhook(user_deleted(kinde, key=key), f"msg_{key.kid}")
        assert (result.status, result.error_code) == (401, "UNAUTHORIZED")
    assert get_usage_counter().usage_count(USER) == 1


def test_an_unknown_type_answers_200_and_is_logged(
    accounts: AccountsClient, kinde: KindeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    fill(accounts, 1)
    body = sign_webhook(kinde, "subscriber.created", {"user": {"id": USER}})
    assert deliver_webhook(body, "msg_other").body == {"received": True}
    assert "webhook type not handled" in caplog.messages
    assert get_usage_counter().usage_count(USER) == 1


def test_a_user_with_no_data_and_a_malformed_user_id(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    assert deliver_webhook(user_deleted(kinde, "kp_nobody"), "msg_nobody").status == 200
    result = deliver_webhook(sign_webhook(kinde, "user.deleted", {"user": {"id": "../x"}}), "msg_bad")
    assert (result.status, result.error_code) == (400, "BAD_REQUEST")


def test_more_accounts_than_one_page_of_deletes(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    seed(USER, 230)
    assert deliver_webhook(user_deleted(kinde), "msg_many").status == 200
    assert partition(USER) == []


def test_a_failure_half_way_is_retried_by_kinde_and_completes(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planguard.accounts_store import AccountRepository
    from planguard.errors import ServiceUnavailable

    seed(USER, 5)
    original = AccountRepository.delete
    calls = {"n": 0}

    def flaky_delete(self: AccountRepository, user_id: str, account_id: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ServiceUnavailable()
        original(self, user_id, account_id)

    monkeypatch.setattr(AccountRepository, "delete", flaky_delete)
    body = user_deleted(kinde)
    first = deliver_webhook(body, "msg_flaky")
    assert (first.status, first.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert calls["n"] == 3  # the cascade went through the patched delete: two, then the fault
    assert get_usage_counter().usage_count(USER) == 3  # two went, each with its count
    assert len(partition(USER)) == 3 * 2 + 1
    second = deliver_webhook(body, "msg_flaky")  # Kinde's retry of the same delivery
    assert second.status == 200
    assert calls["n"] == 3 + 3  # the retry removed the three left, through the same delete
    assert partition(USER) == []


def test_a_deleted_users_tokens_are_refused_for_as_long_as_a_token_lives(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    """Kinde's access tokens outlive their user: after user.deleted the marker refuses them (403)
    on the add, the list and /usage, writes nothing, and lets other users be; after the longest
    token lifetime (24 h by default) it refuses nothing."""
    fill(accounts, 2)
    assert deliver_webhook(user_deleted(kinde), "msg_deleted").status == 200
    assert partition(USER) == []
    for result in (add(accounts, 7), accounts.list(), accounts.request("GET", "/usage")):
        assert (result.status, result.error_code) == (403, "USER_DELETED")
    assert partition(USER) == []  # the refused add wrote nothing
    assert add(AccountsClient(kinde, OTHER_USER), 0).status == 201
    counter = get_usage_counter()
    real = counter.clock
    counter.clock = lambda: real() + 86400 + 61
    try:
        assert add(accounts, 7).status == 201
    finally:
        counter.clock = real


def test_a_token_issued_after_the_deletion_is_not_refused(
    accounts: AccountsClient, kinde: KindeStandIn
) -> None:
    """A token issued before the event is a leftover; one issued after it is a new sign-in's."""
    body = kinde.sign_webhook("user.deleted", {"user": {"id": USER}}, age_seconds=120)
    assert deliver_webhook(body, "msg_earlier").status == 200
    before = kinde.mint(USER, iat=int(time.time()) - 300)
    assert accounts.add("A", "1", token=before).error_code == "USER_DELETED"
    assert accounts.request("GET", "/usage", token=before).error_code == "USER_DELETED"
    assert add(accounts, 0).status == 201  # this client's token was minted after the event
