"""Race-freedom against a real (single-threaded) moto server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from planguard.accounts_store import AccountRepository
from planguard.dynamodb import dynamodb_client
from planguard.errors import ApiError, NotFound
from planguard.usage_counter import CounterConditionFailed

USER = "kp_concurrent"


@pytest.fixture
def repository(endpoint: str) -> AccountRepository:
    boto3.client("dynamodb", endpoint_url=endpoint)
    return AccountRepository(dynamodb_client(endpoint), "AccountsTable")


def outcome(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except ApiError as error:
        return error.code
    except CounterConditionFailed:
        return "LIMIT_REACHED"
    return "ok"


def test_fifty_concurrent_adds_at_limit_five(repository: AccountRepository) -> None:
    user = f"{USER}-adds"
    start = threading.Barrier(50)

    def add(i: int) -> str:
        start.wait()
        return outcome(lambda: repository.create(user, f"Account {i}", f"N{i:03}", limit=5))

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = Counter(pool.map(add, range(50)))
    assert results == {"ok": 5, "LIMIT_REACHED": 45}
    assert len(repository.list_page(user, 100).items) == 5
    assert repository.usage.usage_count(user) == 5


def test_concurrent_deletes_of_one_account_never_go_negative(repository: AccountRepository) -> None:
    user = f"{USER}-deletes"
    account = repository.create(user, "Only", "1", limit=5)
    start = threading.Barrier(20)

    def delete(_: int) -> str:
        start.wait()
        return outcome(lambda: repository.delete(user, account.id))

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = Counter(pool.map(delete, range(20)))
    assert results == {"ok": 1, "NOT_FOUND": 19}
    assert repository.usage.usage_count(user) == 0
    with pytest.raises(NotFound):
        repository.get(user, account.id)


def test_concurrent_adds_and_deletes_keep_the_count_exact(repository: AccountRepository) -> None:
    user = f"{USER}-mixed"
    existing = [repository.create(user, f"Old {i}", f"OLD{i}", limit=5) for i in range(5)]
    start = threading.Barrier(25)

    def work(i: int) -> str:
        start.wait()
        if i < 5:
            return outcome(lambda: repository.delete(user, existing[i].id))
        return outcome(lambda: repository.create(user, f"New {i}", f"NEW{i}", limit=5))

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = Counter(pool.map(work, range(25)))
    accounts = repository.list_page(user, 100).items
    assert len(accounts) <= 5
    assert repository.usage.usage_count(user) == len(accounts)
    assert results["ok"] == 5 + len([a for a in accounts if a.name.startswith("New")])


def test_concurrent_duplicates_only_one_wins(repository: AccountRepository) -> None:
    user = f"{USER}-dups"
    start = threading.Barrier(10)

    def add(i: int) -> str:
        start.wait()
        return outcome(lambda: repository.create(user, f"Dup {i}", "00-1234", limit=None))

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = Counter(pool.map(add, range(10)))
    assert results == {"ok": 1, "DUPLICATE_ACCOUNT_NUMBER": 9}
    assert repository.usage.usage_count(user) == 1


def test_the_server_does_interleave_requests(endpoint: str) -> None:
    """Control: a count-then-put over the same server does exceed the limit, so the tests above
    would catch a racy implementation."""
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    user, limit = f"USER#{USER}-naive", 5
    start = threading.Barrier(20)

    def naive_add(i: int) -> bool:
        count = client.query(
            TableName="AccountsTable",
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": user}},
            Select="COUNT",
        )["Count"]
        start.wait()
        if count >= limit:
            return False
        client.put_item(TableName="AccountsTable", Item={"PK": {"S": user}, "SK": {"S": f"ACCOUNT#{i}"}})
        return True

    with ThreadPoolExecutor(max_workers=20) as pool:
        added = sum(pool.map(naive_add, range(20)))
    assert added > limit


def test_limit_reached_reports_the_stored_usage(repository: AccountRepository) -> None:
    user = f"{USER}-report"
    for i in range(3):
        repository.create(user, f"A{i}", str(i), limit=3)
    with pytest.raises(CounterConditionFailed) as caught:
        repository.create(user, "A4", "4", limit=3)
    assert caught.value.counter.count == 3


# -- the downgrade hold against concurrent adds from several processes ------------------------------
HOLD_ROUNDS, PROCESSES, ADDS_PER_PROCESS, HELD_LIMIT, PLAN_LIMIT = 12, 3, 2, 2, 5


def add_at(endpoint: str, user: str, worker: int, start_at: float) -> list[str]:
    """In another process: wait for the shared start, then add as fast as possible."""
    import os
    import time

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    repository = AccountRepository(dynamodb_client(endpoint), "AccountsTable")
    time.sleep(max(0.0, start_at - time.time()))
    return [
        outcome(lambda n=n: repository.create(user, f"W{worker}-{n}", f"{worker}-{n}", limit=PLAN_LIMIT))
        for n in range(ADDS_PER_PROCESS)
    ]


def test_a_hold_placed_during_concurrent_adds_is_never_exceeded(
    repository: AccountRepository, endpoint: str
) -> None:
    """Several processes add for one user (pro, limit 5) while the workflow holds the user at 2
    (pro -> a plan of 2). Whatever the interleaving: held means the count never passes 2."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    client = boto3.client("dynamodb", endpoint_url=endpoint)
    outcomes: Counter[str] = Counter()
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(time.sleep, [0.0] * PROCESSES))  # warm the workers before the rounds
        for round_number in range(HOLD_ROUNDS):
            user = f"{USER}-hold-{round_number}"
            repository.create(user, "First", "first", limit=PLAN_LIMIT)
            start_at = time.time() + 0.3
            adders = [pool.submit(add_at, endpoint, user, worker, start_at) for worker in range(PROCESSES)]
            offset = (round_number % 6 - 3) * 0.01  # from just before the adds start to mid-way
            time.sleep(max(0.0, start_at - time.time() + offset))
            hold = repository.usage.place_hold(user, HELD_LIMIT, "small", hold_seconds=300)
            for adder in adders:
                outcomes.update(adder.result(timeout=60))
            accounts = client.query(
                TableName="AccountsTable",
                KeyConditionExpression="PK = :pk AND begins_with(SK, :a)",
                ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}, ":a": {"S": "ACCOUNT#"}},
                Select="COUNT",
                ConsistentRead=True,
            )["Count"]
            count = repository.usage.usage_count(user)
            assert count == accounts, (round_number, count, accounts)
            assert count <= PLAN_LIMIT
            if hold.held:
                assert count <= HELD_LIMIT, (round_number, hold, count)
                assert hold.count <= HELD_LIMIT
            else:
                assert hold.count > HELD_LIMIT
            outcomes["held" if hold.held else "not held"] += 1
    # Both outcomes of the race happened, or the test proved nothing about it.
    assert outcomes["ok"] > 0 and outcomes["LIMIT_REACHED"] > 0, outcomes
    assert outcomes["held"] > 0 and outcomes["not held"] > 0, outcomes
    print(f"hold race over {HOLD_ROUNDS} rounds: {dict(outcomes)}")
