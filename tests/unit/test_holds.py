"""The downgrade hold's writes on moto: it only lowers, extends a lower one, stores ``holdFrom``,
answers an unlimited request from a consistent read, is replaced only on the same ``holdFrom``;
and a refused hold's count comes from the stored state even when the failed condition's item is
not returned (a botocore hook strips it, as a DynamoDB implementation ignoring
``ReturnValuesOnConditionCheckFailure`` would)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from planguard.accounts_store import AccountRepository
from planguard.errors import ServiceUnavailable
from planguard.keys import counter_key
from planguard.limit_rule import Replacement
from planguard.usage_counter import HOLD_ATTEMPTS, Counter, HoldResult, UsageCounter

USER = "kp_holds"
NOW = 1_800_000_000.25


class Calls:
    """The DynamoDB operations a client made, in order, and whether each read was consistent."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        consistent = params.get("ConsistentRead") is True
        self.seen.append(f"{model.name}{' (consistent)' if consistent else ''}")


@pytest.fixture
def client(aws: None) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def calls(client: Any) -> Calls:
    recorder = Calls()
    client.meta.events.register("before-parameter-build.dynamodb", recorder)
    return recorder


@pytest.fixture
def repo(client: Any) -> AccountRepository:
    return AccountRepository(client, "AccountsTable", clock=lambda: NOW)


@pytest.fixture
def stripped(client: Any) -> Iterator[list[int]]:
    """Every failed UpdateItem comes back without its ``Item``; yields how many were stripped."""
    count = [0]

    def strip(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.pop("Item", None) is not None:
            count[0] += 1

    client.meta.events.register("after-call.dynamodb.UpdateItem", strip)
    yield count
    client.meta.events.unregister("after-call.dynamodb.UpdateItem", strip)


def put(client: Any, count: int, hold: int | None = None, until: float = NOW + 300, since: int = 0) -> None:
    item: dict[str, Any] = {**counter_key(USER), "count": {"N": str(count)}, "version": {"N": "1"}}
    if hold is not None:
        item |= {
            "holdLimit": {"N": str(hold)},
            "holdUntil": {"N": str(int(until))},
            "holdFrom": {"N": str(since)},
            "holdPlan": {"S": "free"},
        }
    client.put_item(TableName="AccountsTable", Item=item)


def stored(client: Any) -> dict[str, str]:
    item = client.get_item(TableName="AccountsTable", Key=counter_key(USER), ConsistentRead=True).get(
        "Item", {}
    )
    return {name: next(iter(value.values())) for name, value in item.items() if name not in ("PK", "SK")}


# -- placing ----------------------------------------------------------------------------------------
def test_a_hold_records_its_limit_plan_start_and_end(repo: AccountRepository, client: Any) -> None:
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert (result.held, result.count, result.limit) == (True, 0, 3)
    assert stored(client) == {
        "count": "0",
        "holdLimit": "3",
        "holdPlan": "free",
        "holdFrom": str(int(NOW)),
        "holdUntil": str(math.ceil(NOW + 360)),
    }
    assert repo.usage.counter(USER).hold_from == int(NOW)


def test_a_higher_request_extends_the_lower_hold_and_answers_with_it(
    repo: AccountRepository, client: Any
) -> None:
    put(client, 3, hold=3, until=NOW + 100, since=int(NOW) - 200)
    result = repo.usage.place_hold(USER, 4, "basic", 360)
    assert result == HoldResult(USER, 3, True, 3, repo.usage.counter(USER).hold_until)
    after = stored(client)
    assert (after["holdLimit"], after["holdPlan"]) == ("3", "free")
    assert after["holdUntil"] == str(math.ceil(NOW + 360))  # the later selection's end
    # ...and it starts afresh: only a plan Kinde applies after this selection may replace it.
    assert after["holdFrom"] == str(int(NOW))


def test_a_lower_hold_that_already_lasts_longer_keeps_its_end_and_starts_afresh(
    repo: AccountRepository, client: Any
) -> None:
    put(client, 2, hold=2, until=NOW + 1000, since=int(NOW) - 5)
    before = stored(client)
    result = repo.usage.place_hold(USER, 5, "pro", 360)
    assert (result.held, result.limit, result.count) == (True, 2, 2)
    assert stored(client) == {**before, "holdFrom": str(int(NOW))}


def test_an_extension_is_one_write_that_moves_the_start_with_the_end(
    repo: AccountRepository, client: Any, calls: Calls
) -> None:
    """A newer selection the lower hold protects: only a plan Kinde applies after it may replace
    the hold, so ``holdFrom`` moves in the same conditional write as ``holdUntil``."""
    put(client, 1, hold=1, until=NOW + 100, since=int(NOW) - 300)
    calls.seen.clear()
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert (result.held, result.limit) == (True, 1)
    assert calls.seen == ["UpdateItem", "UpdateItem"]  # the refused placing write, then one extension
    after = stored(client)
    assert (after["holdFrom"], after["holdUntil"]) == (str(int(NOW)), str(math.ceil(NOW + 360)))


@pytest.mark.parametrize(("active", "limit"), [(5, 3), (3, 3)])
def test_a_lower_or_equal_request_takes_the_place_of_the_active_hold(
    repo: AccountRepository, client: Any, active: int, limit: int
) -> None:
    put(client, 2, hold=active, until=NOW + 50, since=int(NOW) - 100)
    result = repo.usage.place_hold(USER, limit, "free", 360)
    assert (result.held, result.limit) == (True, limit)
    assert (stored(client)["holdFrom"], stored(client)["holdUntil"]) == (
        str(int(NOW)),
        str(math.ceil(NOW + 360)),
    )


def test_an_expired_lower_hold_does_not_keep_a_request_low(repo: AccountRepository, client: Any) -> None:
    put(client, 2, hold=2, until=NOW - 1)
    assert repo.usage.place_hold(USER, 4, "basic", 360).limit == 4


@pytest.mark.parametrize("active", [None, 2])
def test_more_accounts_than_asked_is_refused_and_records_nothing(
    repo: AccountRepository, client: Any, active: int | None
) -> None:
    put(client, 4, hold=active and 5)
    before = stored(client)
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert result == HoldResult(USER, 4, False, 3, None)
    assert stored(client) == before


# -- an unlimited request writes nothing ------------------------------------------------------------------
def test_an_unlimited_request_answers_the_active_hold_from_a_consistent_read(
    repo: AccountRepository, client: Any, calls: Calls
) -> None:
    put(client, 3, hold=3)
    calls.seen.clear()
    result = repo.usage.place_hold(USER, None, "max", 360)
    assert (result.held, result.count, result.limit) == (True, 3, 3)
    assert calls.seen[-1:] == ["GetItem (consistent)"]
    assert "UpdateItem" not in calls.seen


def test_an_unlimited_request_with_no_hold_writes_nothing_at_all(
    repo: AccountRepository, client: Any
) -> None:
    assert repo.usage.place_hold(USER, None, "max", 360) == HoldResult(USER, 0, True, None, None)
    assert stored(client) == {}  # not even a counter for a user who never added an account


# -- counting a refused hold when the item is not returned ------------------------------------------------
def test_without_the_returned_item_the_count_is_read_consistently_never_zero(
    repo: AccountRepository, client: Any, calls: Calls, stripped: list[int]
) -> None:
    put(client, 5)
    calls.seen.clear()
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert result == HoldResult(USER, 5, False, 3, None)
    assert stripped == [1]  # the hook ran: the answer came from the read
    assert calls.seen == ["UpdateItem", "GetItem (consistent)"]


def test_without_the_returned_item_an_active_lower_hold_is_still_extended(
    repo: AccountRepository, client: Any, stripped: list[int]
) -> None:
    put(client, 2, hold=2, until=NOW + 10, since=7)
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert (result.held, result.limit, result.count) == (True, 2, 2)
    assert stored(client)["holdUntil"] == str(math.ceil(NOW + 360))
    assert stripped == [1]


def test_a_read_that_shows_the_write_would_now_succeed_retries_it(
    repo: AccountRepository, client: Any, calls: Calls, stripped: list[int]
) -> None:
    """Between the refused write and the read, an account went: the write is tried again."""
    put(client, 4)

    def one_account_goes(**_: Any) -> None:
        client.meta.events.unregister("before-call.dynamodb.GetItem", one_account_goes)
        put(client, 3)  # a delete landed meanwhile

    client.meta.events.register("before-call.dynamodb.GetItem", one_account_goes)
    calls.seen.clear()
    result = repo.usage.place_hold(USER, 3, "free", 360)
    assert (result.held, result.count, result.limit) == (True, 3, 3)
    assert [c for c in calls.seen if c != "PutItem"] == ["UpdateItem", "GetItem (consistent)", "UpdateItem"]
    assert stored(client)["holdLimit"] == "3"


def test_retries_are_bounded(repo: AccountRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state that keeps moving under the writes ends in a 503, never in a guessed answer."""
    attempts: list[int] = []

    def always_moved(self: UsageCounter, user_id: str, *_: Any) -> tuple[bool, Counter]:
        attempts.append(1)
        return False, Counter(0)  # refused, yet read as "would now succeed"

    monkeypatch.setattr(UsageCounter, "_place", always_moved)
    with pytest.raises(ServiceUnavailable):
        repo.usage.place_hold(USER, 3, "free", 360)
    assert len(attempts) == HOLD_ATTEMPTS


def test_held_only_from_a_stored_hold_at_or_below_the_request(
    repo: AccountRepository, client: Any, stripped: list[int]
) -> None:
    """The lower hold seen by the read is gone before it can be extended: not answered from the
    stale read, but placed again at the requested limit."""
    put(client, 2, hold=2, until=NOW + 10)

    def hold_goes(params: dict[str, Any], **_: Any) -> None:
        if params.get("UpdateExpression") == "SET #hf = :now, #hu = :until":  # just before the extension
            client.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", hold_goes)
            put(client, 2)

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", hold_goes)
    result = repo.usage.place_hold(USER, 4, "basic", 360)
    assert (result.held, result.limit) == (True, 4)
    assert stored(client)["holdLimit"] == "4"


# -- replacing ------------------------------------------------------------------------------------------
def test_a_hold_is_replaced_only_if_it_is_still_the_same_one(repo: AccountRepository, client: Any) -> None:
    put(client, 3, hold=3, since=1000)
    new = Replacement(5, "pro", 2000, 2120)
    assert repo.usage.replace_hold(USER, 999, new) is False  # placed again meanwhile: it stays
    assert stored(client)["holdLimit"] == "3"
    assert repo.usage.replace_hold(USER, 1000, new) is True
    after = stored(client)
    assert (after["holdLimit"], after["holdFrom"], after["holdUntil"], after["holdPlan"]) == (
        "5",
        "2000",
        "2120",
        "pro",
    )


def test_an_unlimited_fresh_limit_removes_the_hold(repo: AccountRepository, client: Any) -> None:
    put(client, 3, hold=3, since=1000)
    assert repo.usage.replace_hold(USER, 1000, Replacement(None, "max", 2000, 2120)) is True
    assert stored(client) == {"count": "3", "version": "1"}


def test_the_real_clock_is_the_default(client: Any) -> None:
    repo = AccountRepository(client, "AccountsTable")
    before = time.time()
    repo.usage.place_hold(USER, 1, "free", 10)
    assert before - 1 <= repo.usage.counter(USER).hold_from <= time.time()  # type: ignore[operator]
