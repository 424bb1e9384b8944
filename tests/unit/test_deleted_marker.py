"""The marker Kinde's user.deleted leaves: which tokens it refuses and for how long, and that an
add's transaction and the usage read see it (moto) at no round trip more."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from planguard.accounts_store import AccountRepository
from planguard.deleted_marker import mark_deleted, marker_until, refuses
from planguard.errors import UserDeleted
from planguard.keys import deleted_marker_key, user_pk

NOW = 1_800_000_000
GONE = "kp_gone"


def marker(until: int, at: int) -> dict[str, Any]:
    return {"deletedUntil": {"N": str(until)}, "deletedAt": {"N": str(at)}}


@pytest.mark.parametrize(
    ("item", "issued_at", "refused"),
    [
        pytest.param(None, NOW - 10, False, id="no marker"),
        pytest.param(marker(NOW + 10, NOW - 5), NOW - 10, True, id="issued before the deletion"),
        pytest.param(marker(NOW + 10, NOW - 5), NOW - 5, True, id="issued the same second"),
        pytest.param(marker(NOW + 10, NOW - 5), NOW - 4, False, id="issued after: a new sign-in"),
        pytest.param(marker(NOW, NOW - 5), NOW - 10, False, id="past its end, not yet removed by the TTL"),
        pytest.param({"deletedUntil": {"N": str(NOW + 10)}}, NOW + 100, True, id="no deletedAt: any token"),
    ],
)
def test_which_tokens_a_marker_refuses(item: dict[str, Any] | None, issued_at: int, refused: bool) -> None:
    assert refuses(item, NOW, issued_at) is refused


def test_a_marker_lasts_until_the_last_token_issued_before_it_expires() -> None:
    assert marker_until(NOW + 0.5, 86400) == NOW + 1 + 86400 + 60  # a minute for Kinde's clock


@pytest.fixture
def repo(aws: None) -> AccountRepository:
    return AccountRepository(boto3.client("dynamodb"), "AccountsTable")


def test_an_add_and_the_usage_read_see_the_marker(repo: AccountRepository) -> None:
    now = time.time()
    mark_deleted(repo.usage.client, "AccountsTable", user_pk(GONE), deleted_at=now, until=int(now) + 100)
    with pytest.raises(UserDeleted):
        repo.create(GONE, "A", "1", 5, issued_at=int(now) - 10)
    assert repo.usage.counter(GONE).count == 0  # the refused transaction wrote nothing
    assert repo.usage.shown(GONE, int(now) - 10).deleted is True
    assert repo.usage.shown(GONE, int(now) + 10).deleted is False  # a token issued after it
    assert repo.create(GONE, "A", "1", 5, issued_at=int(now) + 10).name == "A"
    assert repo.create(GONE, "B", "2", 5).name == "B"  # not a token's add (seeding, tools)
    assert repo.usage.shown("kp_other", int(now) - 10) == repo.usage.counter("kp_other")


def test_the_marker_lives_beside_the_partition_never_in_it(repo: AccountRepository) -> None:
    mark_deleted(repo.usage.client, "AccountsTable", user_pk(GONE), deleted_at=NOW, until=NOW + 100)
    assert deleted_marker_key(user_pk(GONE))["PK"] == {"S": f"DELETED#USER#{GONE}"}
    items = boto3.client("dynamodb").query(
        TableName="AccountsTable",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{GONE}"}},
    )["Items"]
    assert items == []


def test_a_later_mark_never_shortens_an_earlier_one(repo: AccountRepository) -> None:
    client = repo.usage.client
    mark_deleted(client, "AccountsTable", user_pk(GONE), deleted_at=NOW, until=NOW + 2000)
    mark_deleted(client, "AccountsTable", user_pk(GONE), deleted_at=NOW, until=NOW + 1000)
    item = client.get_item(TableName="AccountsTable", Key=deleted_marker_key(user_pk(GONE)))["Item"]
    assert item["deletedUntil"] == {"N": str(NOW + 2000)}


class Throttled:
    """A client whose BatchGetItem leaves every key unprocessed ``times`` times, then answers."""

    def __init__(self, client: Any, times: int) -> None:
        self.client, self.times, self.calls = client, times, 0

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.times:
            return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}
        answer: dict[str, Any] = self.client.batch_get_item(**kwargs)
        return answer


def test_keys_left_unprocessed_are_read_again_a_few_times(repo: AccountRepository) -> None:
    from planguard.errors import ServiceUnavailable
    from planguard.usage_counter import BATCH_ATTEMPTS, UsageCounter

    repo.create(GONE, "A", "1", 5)
    once = Throttled(repo.usage.client, 1)
    assert UsageCounter(once, "AccountsTable").shown(GONE, NOW).count == 1  # type: ignore[arg-type]
    assert once.calls == 2
    always = Throttled(repo.usage.client, BATCH_ATTEMPTS)
    with pytest.raises(ServiceUnavailable):
        UsageCounter(always, "AccountsTable").shown(GONE, NOW)  # type: ignore[arg-type]
    assert always.calls == BATCH_ATTEMPTS
