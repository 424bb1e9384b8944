"""Fault injection on DynamoDB (issue 10, part 4).

A botocore ``before-send`` hook on the repository's client fails chosen requests *before* they
leave the process (moto ignores ``ClientRequestToken``, so a fault must never be injected after
moto committed): throttling, ``InternalServerError``, read/connect timeouts, a refused connection,
and ``TransactionConflict`` (a cancelled transaction, or ``TransactionConflictException`` on a
single-item call). For every DynamoDB call that create, rename, renumber, delete, reconcile, the
hold and the ``user.deleted`` webhook make, each fault is injected once (transient: the retries
absorb it and the request succeeds) and from that call on (persistent: a clear 503
``SERVICE_UNAVAILABLE`` with ``Retry-After``). After every run: the counter equals the accounts,
every account has its guard and every guard its account, and the next request succeeds.

Against a single-threaded moto server on 127.0.0.1; botocore's and our backoff are shortened.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.retries import standard
from planguard import dynamodb as repository_module
from planguard.accounts_store import AccountRepository, get_repository
from planguard.errors import ServiceUnavailable
from planguard.ids import new_account_id
from planguard.keys import guard_sk as _guard_sk
from planguard.keys import normalise_account_number

from local.kinde import KindeStandIn
from tests.support import (
    AccountsClient,
    clear_caches,
    deliver_webhook,
    place_hold,
    sign_webhook,
    transaction_cancelled,
)

TABLE = "AccountsTable"
PERSISTENT = 10_000
KINDS = [
    "throughput",
    "throttling",
    "internal",
    "read_timeout",
    "connect_timeout",
    "no_connection",
    "conflict",
]
ERROR_TYPES = {
    "throughput": (400, "ProvisionedThroughputExceededException"),
    "throttling": (400, "ThrottlingException"),
    "internal": (500, "InternalServerError"),
}


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FaultInjector:
    """Fails DynamoDB calls number ``first`` to ``first + count - 1`` (counting every request the
    client sends, retries included) with ``kind``; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.injected: Counter[str] = Counter()
        self.patched: Counter[str] = Counter()  # calls of the fixture's speed-ups, which must be live
        self.kind = ""
        self.first = -1
        self.count = 0

    def arm(self, kind: str, first: int, count: int) -> None:
        self.calls, self.kind, self.first, self.count = [], kind, first, count

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        index = len(self.calls)
        self.calls.append(operation)
        if not self.first <= index < self.first + self.count:
            return None
        self.injected[self.kind] += 1
        if self.kind == "read_timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        if self.kind == "connect_timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if self.kind == "no_connection":
            raise EndpointConnectionError(endpoint_url=request.url)
        if self.kind == "conflict" and operation == "TransactWriteItems":
            status, body = transaction_cancelled(request.body)
        else:
            status, name = ERROR_TYPES.get(self.kind, (400, "TransactionConflictException"))
            body = {"__type": f"com.amazonaws.dynamodb.v20120810#{name}", "message": f"injected {name}"}
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = uuid.uuid4().hex
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))


@pytest.fixture
def faults(env: pytest.MonkeyPatch, endpoint: str, kinde: KindeStandIn) -> FaultInjector:
    injector = FaultInjector()

    def patched[T](name: str, answer: T) -> Callable[..., T]:
        def counted(*_args: Any) -> T:
            injector.patched[name] += 1
            return answer

        return counted

    env.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
    env.setattr(standard.ExponentialBackoff, "delay_amount", patched("botocore backoff", 0.001))
    env.setattr(repository_module, "_backoff", patched("our backoff", None))
    # botocore's retry quota (a circuit breaker: 500 tokens, 5-10 per retry) would drain over
    # hundreds of injected faults in one process and stop absorbing them; each run here stands
    # for an independent incident, so the quota is left out.
    env.setattr(standard.RetryQuotaChecker, "acquire_retry_quota", patched("retry quota", True))
    return injector


def repository_with(injector: FaultInjector) -> AccountRepository:
    """The functions' repository (one client, as in a warm container), the injector in front."""
    clear_caches()
    repository = get_repository()
    hook: Any = injector  # botocore types handlers as returning None; before-send may answer
    repository._db.meta.events.register_first("before-send.dynamodb", hook, unique_id="faults")
    return repository


def seed_user(repository: AccountRepository, user: str, accounts: int) -> list[str]:
    """Plain puts (no transaction): ``accounts`` accounts with their guards and counter."""
    db, ids = repository._db, []
    for n in range(accounts):
        account_id = new_account_id()
        number = f"{user}-{n}"
        key = normalise_account_number(number)
        now = "2024-01-01T00:00:00.000Z"
        db.put_item(
            TableName=TABLE,
            Item={
                "PK": {"S": f"USER#{user}"},
                "SK": {"S": f"ACCOUNT#{account_id}"},
                "id": {"S": account_id},
                "name": {"S": f"Seed {n}"},
                "accountNumber": {"S": number},
                "accountNumberKey": {"S": key},
                "createdAt": {"S": now},
                "updatedAt": {"S": now},
            },
        )
        db.put_item(
            TableName=TABLE,
            Item={"PK": {"S": f"USER#{user}"}, "SK": {"S": _guard_sk(key)}, "accountId": {"S": account_id}},
        )
        ids.append(account_id)
    db.put_item(
        TableName=TABLE,
        Item={
            "PK": {"S": f"USER#{user}"},
            "SK": {"S": "USAGE#tracked_accounts"},
            "count": {"N": str(accounts)},
            "version": {"N": "1"},
        },
    )
    return sorted(ids)


def user_items(repository: AccountRepository, user: str) -> list[dict[str, Any]]:
    return repository._db.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}},
        ConsistentRead=True,
    )["Items"]


def check_invariants(repository: AccountRepository, user: str) -> int:
    """Counter = accounts, every account has its guard and every guard its account; returns count."""
    items = user_items(repository, user)
    accounts = {i["id"]["S"]: i for i in items if i["SK"]["S"].startswith("ACCOUNT#")}
    guards = {i["SK"]["S"]: i["accountId"]["S"] for i in items if i["SK"]["S"].startswith("ACCOUNTNUMBER#")}
    counters = [i for i in items if i["SK"]["S"] == "USAGE#tracked_accounts"]
    count = int(counters[0]["count"]["N"]) if counters else 0
    assert count == len(accounts), (count, len(accounts))
    assert len(guards) == len(accounts), (guards, list(accounts))
    for account_id, item in accounts.items():
        assert guards.get(_guard_sk(item["accountNumberKey"]["S"])) == account_id
    return count


def delete_user_items(repository: AccountRepository, user: str) -> None:
    for item in user_items(repository, user):
        repository._db.delete_item(TableName=TABLE, Key={"PK": item["PK"], "SK": item["SK"]})


# -- the operations under test: each returns "ok" or "503", and its retry after a 503 -------------


class Run:
    def __init__(self, kinde: KindeStandIn, repository: AccountRepository, user: str, ids: list[str]) -> None:
        self.kinde, self.repository, self.user, self.ids = kinde, repository, user, ids
        self.client = AccountsClient(kinde, user)
        self.webhook_id = f"msg_{uuid.uuid4().hex}"
        self.webhook = sign_webhook(kinde, "user.deleted", {"user": {"id": user}})

    @staticmethod
    def http(result: Any, ok: int) -> str:
        if result.status == ok:
            return "ok"
        assert (result.status, result.error_code) == (503, "SERVICE_UNAVAILABLE"), (
            result.status,
            result.body,
        )
        assert result.headers.get("retry-after", "").isdigit()
        return "503"

    def create(self) -> str:
        return self.http(self.client.add("New", f"{self.user}-new"), 201)

    def rename(self) -> str:
        return self.http(
            self.client.request("PATCH", "/accounts/{id}", account_id=self.ids[0], body={"name": "R"}), 200
        )

    def renumber(self) -> str:
        body = {"accountNumber": f"{self.user}-renumbered"}
        return self.http(
            self.client.request("PATCH", "/accounts/{id}", account_id=self.ids[0], body=body), 200
        )

    def delete(self) -> str:
        return self.http(self.client.request("DELETE", "/accounts/{id}", account_id=self.ids[0]), 204)

    def reconcile(self) -> str:
        try:
            assert self.repository.usage.reconcile(self.user) == (len(self.ids), len(self.ids))
        except ServiceUnavailable:
            return "503"
        return "ok"

    def hold(self) -> str:
        result = place_hold(self.user, 3)
        if result.status == 200:
            assert result.body["held"] is True, result.body
        return self.http(result, 200)

    def user_deleted(self) -> str:
        return self.http(deliver_webhook(self.webhook, self.webhook_id), 200)


OPERATIONS: dict[str, tuple[int, Callable[[Run], str]]] = {
    "create": (1, Run.create),
    "rename": (2, Run.rename),
    "renumber": (2, Run.renumber),
    "delete": (2, Run.delete),
    "reconcile": (2, Run.reconcile),
    "hold": (1, Run.hold),
    "user.deleted": (2, Run.user_deleted),
}
FIGURES: Counter[str] = Counter()


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_every_fault_on_every_call(faults: FaultInjector, kinde: KindeStandIn, operation: str) -> None:
    seeded, call = OPERATIONS[operation]
    rng = random.Random(f"{operation}-{os.environ.get('FUZZ_SEED', '1')}")
    random.seed(rng.random())

    repository = repository_with(faults)

    def start(tag: str) -> Run:
        user = f"kp_fault_{tag}_{uuid.uuid4().hex[:8]}"
        kinde.set_plan(user, "pro")
        return Run(kinde, repository, user, seed_user(repository, user, seeded))

    # A dry run: which DynamoDB calls the operation makes.
    run = start("dry")
    faults.arm("", -1, 0)
    assert call(run) == "ok"
    sequence = list(faults.calls)
    assert sequence, operation
    check_invariants(run.repository, run.user)
    delete_user_items(run.repository, run.user)

    outcomes: Counter[str] = Counter()
    for index, kind in [(i, k) for i in range(len(sequence)) for k in KINDS]:
        for persistent in (False, True):
            run = start(f"{index}")
            faults.arm(kind, index, PERSISTENT if persistent else (2 if kind == "conflict" else 1))
            result = call(run)
            how = "persistent" if persistent else "once"
            label = f"{operation} call {index} ({sequence[index]}) {kind} {how}"
            faults.arm("", -1, 0)
            if not persistent:
                assert result == "ok", f"{label}: a transient fault was not absorbed"
            else:
                assert result == "503", f"{label}: {result}"
            check_invariants(run.repository, run.user)
            if operation == "user.deleted" and result == "ok":
                assert user_items(run.repository, run.user) == []
            # The next request succeeds (a failed operation retried as a client would).
            if result == "503":
                assert call(run) == "ok", label
                check_invariants(run.repository, run.user)
            # A user Kinde deleted: their token, still valid, is refused by the marker.
            assert run.client.list().status == (403 if operation == "user.deleted" else 200)
            delete_user_items(run.repository, run.user)
            outcomes[f"{'once' if not persistent else 'persistent'} -> {result}"] += 1
    # Every run retried, so each speed-up ran: none was left behind by a move of what it patches.
    assert set(faults.patched) == {"botocore backoff", "our backoff", "retry quota"}, faults.patched
    FIGURES.update({f"{operation}: {k}": v for k, v in outcomes.items()})
    FIGURES["calls"] += len(sequence)
    print(f"\n{operation}: calls {sequence}; runs {dict(outcomes)}; injected {sum(faults.injected.values())}")
