"""DynamoDB access for the single-table model — the only module that knows keys.

    account           PK=USER#<kindeId>  SK=ACCOUNT#<id>
    number guard      PK=USER#<kindeId>  SK=ACCOUNTNUMBER#<sha256 of the normalised number>
    usage counter     PK=USER#<kindeId>  SK=USAGE#tracked_accounts
                      count=<int> version=<int> [holdLimit=<int> holdUntil=<epoch s> holdPlan=<str>]

Create and delete are each one ``TransactWriteItems`` (account, guard and counter move together,
the limit and any downgrade hold are one condition on the counter), so concurrent requests can
never push the count past a limit or leave it different from the number of accounts. A hold is
one conditional write on the same counter item, so it and the adds are serialised by DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from planguard.errors import BadRequest, DuplicateAccountNumber, NotFound, ServiceUnavailable
from planguard.ids import is_account_id, new_account_id
from planguard.plan_rule import HoldResult
from planguard.settings import FEATURE_KEY, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 6
_NORMALISE = re.compile(r"[\s\-]+")


def normalise_account_number(number: str) -> str:
    """Trimmed, case-folded, spaces and hyphens removed; leading zeros kept."""
    return _NORMALISE.sub("", number.strip().casefold())


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    account_number: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "accountNumber": self.account_number,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(data["id"], data["name"], data["accountNumber"], data["createdAt"], data["updatedAt"])


@dataclass(frozen=True)
class Page:
    items: list[Account]
    next_cursor: str | None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> str:
    return _iso(datetime.now(UTC))


@dataclass(frozen=True)
class Counter:
    """The usage counter item: the count, and the downgrade hold when one is active."""

    count: int
    hold_limit: int | None = None
    hold_until: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any] | None, now: float) -> Counter:
        item = item or {}
        count = int(item["count"]["N"]) if "count" in item else 0
        until = float(item["holdUntil"]["N"]) if "holdUntil" in item else 0.0
        if "holdLimit" not in item or until <= now:
            return cls(count)
        return cls(count, int(item["holdLimit"]["N"]), _iso(datetime.fromtimestamp(until, UTC)))


class CounterConditionFailed(Exception):
    """An add was refused by the counter's condition: a limit or an active hold.

    Carries the counter as the failed condition saw it; what that means to the caller (which
    limit, which error) is decided by the accounts service, not here.
    """

    def __init__(self, counter: Counter) -> None:
        super().__init__(f"counter condition failed at count {counter.count}")
        self.counter = counter


class _TryAgain(Exception):
    """This attempt lost a race (or was throttled): read again and retry, within the budget."""


def _user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _account_sk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def _guard_sk(normalised: str) -> str:
    """Hashed: a 200-character number can case-fold past DynamoDB's 1 KiB sort-key limit."""
    return f"ACCOUNTNUMBER#{hashlib.sha256(normalised.encode()).hexdigest()}"


USAGE_SK = f"USAGE#{FEATURE_KEY}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _account_from_item(item: dict[str, Any]) -> Account:
    return Account(
        id=item["id"]["S"],
        name=item["name"]["S"],
        account_number=item["accountNumber"]["S"],
        created_at=item["createdAt"]["S"],
        updated_at=item["updatedAt"]["S"],
    )


def _cancellation_codes(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code") or "None") for reason in reasons]


def _is_transient(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter


def _transient_or_fault(error: ClientError, codes: list[str]) -> NoReturn:
    """Contention and throttling are worth another attempt; anything else is a storage fault."""
    if "TransactionConflict" in codes or "ThrottlingError" in codes or _is_transient(error):
        logger.info("write contended or throttled (%s)", codes or error.response.get("Error"))
        raise _TryAgain() from None
    logger.error("DynamoDB error: %s %s", error.response.get("Error"), codes)
    raise ServiceUnavailable() from None


def _call(method: Any, **kwargs: Any) -> dict[str, Any]:
    """A single-item call; throttling past botocore's retries becomes a 503, not a 500.

    ``TransactionConflictException`` (the item is in another request's transaction right now) is
    contention, not a fault, and botocore does not retry it: retried here, bounded and jittered.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            result: dict[str, Any] = method(**kwargs)
            return result
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise
            if code == "TransactionConflictException" and attempt < CONFLICT_RETRIES - 1:
                logger.info("single-item call conflicted with a transaction; retrying")
                _backoff(attempt)
                continue
            logger.error("DynamoDB error: %s", error.response.get("Error"))
            raise ServiceUnavailable() from None
        except BotoCoreError as error:
            logger.error("DynamoDB unreachable: %s", error)
            raise ServiceUnavailable() from None
    raise AssertionError("unreachable")  # pragma: no cover


def _with_retries[T](attempt: Callable[[], T]) -> T:
    """The one retry loop for writes: bounded, jittered; past the budget a 503 that wrote nothing."""
    for number in range(CONFLICT_RETRIES):
        try:
            return attempt()
        except _TryAgain:
            _backoff(number)
    raise ServiceUnavailable()


class Cursor:
    """Opaque page cursor bound to its user: base64url JSON of a user tag and the last account id."""

    @staticmethod
    def _tag(user_id: str) -> str:
        return hashlib.sha256(user_id.encode()).hexdigest()[:16]

    @classmethod
    def encode(cls, user_id: str, last_id: str) -> str:
        raw = json.dumps({"u": cls._tag(user_id), "a": last_id}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, user_id: str, cursor: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise BadRequest("The cursor is not valid.") from None
        if (
            not isinstance(data, dict)
            or data.get("u") != cls._tag(user_id)
            or not isinstance(data.get("a"), str)
            or not is_account_id(data["a"])
        ):
            raise BadRequest("The cursor is not valid.")
        return str(data["a"])


class AccountRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # -- reads -------------------------------------------------------------------------------
    def counter(self, user_id: str) -> Counter:
        """One GetItem of the usage counter (count and active hold); zero for a new user."""
        item = _call(
            self._db.get_item,
            TableName=self._table,
            Key=self._counter_key(user_id),
            ConsistentRead=True,
            ProjectionExpression="#c, holdLimit, holdUntil",
            ExpressionAttributeNames={"#c": "count"},
        ).get("Item")
        return Counter.from_item(item, time.time())

    def usage_count(self, user_id: str) -> int:
        return self.counter(user_id).count

    def get(self, user_id: str, account_id: str) -> Account:
        if not is_account_id(account_id):
            raise NotFound()
        item = self._get_account_item(user_id, account_id)
        if item is None:
            raise NotFound()
        return _account_from_item(item)

    def list_page(self, user_id: str, limit: int, cursor: str | None = None) -> Page:
        """Oldest first; reads ``limit + 1`` so the last page says so (``next_cursor`` None)."""
        params = {**self._accounts_query(user_id), "Limit": limit + 1}
        if cursor:
            last_id = Cursor.decode(user_id, cursor)
            params["ExclusiveStartKey"] = {"PK": _s(_user_pk(user_id)), "SK": _s(_account_sk(last_id))}
        items = [_account_from_item(item) for item in _call(self._db.query, **params).get("Items", [])]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, Cursor.encode(user_id, items[-1].id))
        return Page(items, None)

    # -- writes ------------------------------------------------------------------------------
    def create(self, user_id: str, name: str, account_number: str, limit: int | None) -> Account:
        """Account + guard + counter in one transaction; ``limit=None`` means unlimited.

        The counter's condition also honours an active downgrade hold, so a hold binds every add,
        unlimited ones included. Refused: ``CounterConditionFailed`` with the counter as it was.
        """
        pk = _user_pk(user_id)
        normalised = normalise_account_number(account_number)
        within_limit = "(attribute_not_exists(#c) OR #c < :limit)" if limit is not None else ""
        within_hold = "(attribute_not_exists(#hl) OR #hu <= :now OR #c < #hl)"
        values: dict[str, Any] = {":zero": {"N": "0"}, ":one": {"N": "1"}}
        if limit is not None:
            values[":limit"] = {"N": str(limit)}

        def attempt() -> Account:
            account_id, now = new_account_id(), _now()
            values[":now"] = {"N": str(int(time.time()))}
            account_item = {
                "PK": _s(pk),
                "SK": _s(_account_sk(account_id)),
                "id": _s(account_id),
                "name": _s(name),
                "accountNumber": _s(account_number),
                "accountNumberKey": _s(normalised),
                "createdAt": _s(now),
                "updatedAt": _s(now),
            }
            counter_update = {
                "TableName": self._table,
                "Key": self._counter_key(user_id),
                "UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one ADD #v :one",
                "ConditionExpression": " AND ".join(filter(None, (within_limit, within_hold))),
                "ExpressionAttributeNames": {
                    "#c": "count",
                    "#v": "version",
                    "#hl": "holdLimit",
                    "#hu": "holdUntil",
                },
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            try:
                self._transact(
                    [
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": account_item,
                                "ConditionExpression": "attribute_not_exists(PK)",
                            }
                        },
                        self._put_guard(pk, normalised, account_id),
                        {"Update": counter_update},
                    ]
                )
            except ClientError as error:
                codes = _cancellation_codes(error)
                if codes[2:3] == ["ConditionalCheckFailed"]:
                    raise CounterConditionFailed(self._counter_from_reason(error, user_id)) from None
                if codes[1:2] == ["ConditionalCheckFailed"]:
                    raise DuplicateAccountNumber() from None
                _transient_or_fault(error, codes)
            return _account_from_item(account_item)

        return _with_retries(attempt)

    def update(self, user_id: str, account_id: str, name: str | None, account_number: str | None) -> Account:
        """Rename and/or renumber; a new number moves its guard in the same transaction."""
        if not is_account_id(account_id):
            raise NotFound()
        pk, sk = _user_pk(user_id), _account_sk(account_id)

        def attempt() -> Account:
            current = self._get_account_item(user_id, account_id)
            if current is None:
                raise NotFound()
            old_key = current["accountNumberKey"]["S"]
            new_key = normalise_account_number(account_number) if account_number is not None else old_key
            names = {"#n": "name", "#a": "accountNumber", "#k": "accountNumberKey", "#u": "updatedAt"}
            values = {
                ":n": _s(name if name is not None else current["name"]["S"]),
                ":a": _s(account_number if account_number is not None else current["accountNumber"]["S"]),
                ":k": _s(new_key),
                ":u": _s(_now()),
                ":old": _s(old_key),
            }
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": {"PK": _s(pk), "SK": _s(sk)},
                "UpdateExpression": "SET #n = :n, #a = :a, #k = :k, #u = :u",
                "ConditionExpression": "attribute_exists(PK) AND #k = :old",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
            try:
                if new_key == old_key:
                    item = _call(self._db.update_item, **update, ReturnValues="ALL_NEW")["Attributes"]
                    return _account_from_item(item)
                self._transact(
                    [
                        {"Update": update},
                        self._delete_guard(pk, old_key, account_id),
                        self._put_guard(pk, new_key, account_id),
                    ]
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    raise _TryAgain() from None  # deleted or renumbered meanwhile: read again
                codes = _cancellation_codes(error)
                if codes[2:3] == ["ConditionalCheckFailed"]:
                    raise DuplicateAccountNumber() from None
                if "ConditionalCheckFailed" in codes:
                    raise _TryAgain() from None
                _transient_or_fault(error, codes)
            # What the transaction wrote, without reading it back (one call fewer).
            return Account(
                account_id, values[":n"]["S"], values[":a"]["S"], current["createdAt"]["S"], values[":u"]["S"]
            )

        return _with_retries(attempt)

    def delete(self, user_id: str, account_id: str) -> None:
        """Account, guard and one count go together; a concurrent second delete is a 404."""
        if not is_account_id(account_id):
            raise NotFound()

        def attempt() -> None:
            current = self._get_account_item(user_id, account_id)
            if current is None:
                raise NotFound()
            self._delete_account(user_id, current)

        _with_retries(attempt)

    def delete_user(self, user_id: str) -> int:
        """Remove every item of a user (Kinde deleted them); returns how many accounts went.

        Each account goes with its guard and a counter decrement in one transaction, as a DELETE
        does, so an add racing this can never leave the counter wrong; the counter (with any hold)
        goes last, only at zero. Safe to run again after an interruption: it resumes.
        """
        removed = 0
        for _ in range(CONFLICT_RETRIES):
            while items := _call(
                self._db.query, **self._accounts_query(user_id), ConsistentRead=True, Limit=100
            ).get("Items", []):
                for item in items:
                    with contextlib.suppress(NotFound):  # a concurrent delete took it
                        self.delete(user_id, item["id"]["S"])
                        removed += 1
            for item in _call(self._db.query, **self._user_query(user_id), ConsistentRead=True)["Items"]:
                if item["SK"]["S"] != USAGE_SK:  # nothing else should be left; leave nothing
                    _call(
                        self._db.delete_item, TableName=self._table, Key={"PK": item["PK"], "SK": item["SK"]}
                    )
            try:
                _call(
                    self._db.delete_item,
                    TableName=self._table,
                    Key=self._counter_key(user_id),
                    ConditionExpression="attribute_not_exists(#c) OR #c = :zero",
                    ExpressionAttributeNames={"#c": "count"},
                    ExpressionAttributeValues={":zero": {"N": "0"}},
                )
                return removed
            except ClientError:  # an add landed meanwhile, or the counter drifted: recount, go again
                logger.warning("counter of %s not zero after removing its accounts", user_id)
                self.reconcile(user_id)
        raise ServiceUnavailable()

    def place_hold(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """ONE conditional write: record ``limit`` as a hold only if ``count <= limit``.

        ``limit=None`` (the requested plan is unlimited) releases any hold. Refused: nothing is
        written and the answer carries the count that failed the condition.
        """
        until = time.time() + hold_seconds
        names = {"#c": "count", "#hl": "holdLimit", "#hu": "holdUntil", "#hp": "holdPlan"}
        if limit is None:
            params: dict[str, Any] = {
                "UpdateExpression": "SET #c = if_not_exists(#c, :zero) REMOVE #hl, #hu, #hp",
                "ExpressionAttributeValues": {":zero": {"N": "0"}},
            }
        else:
            params = {
                "UpdateExpression": (
                    "SET #c = if_not_exists(#c, :zero), #hl = :limit, #hu = :until, #hp = :plan"
                ),
                "ConditionExpression": "attribute_not_exists(#c) OR #c <= :limit",
                "ExpressionAttributeValues": {
                    ":zero": {"N": "0"},
                    ":limit": {"N": str(limit)},
                    ":until": {"N": str(math.ceil(until))},  # never shorter than asked
                    ":plan": _s(plan or ""),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            item = _call(
                self._db.update_item,
                TableName=self._table,
                Key=self._counter_key(user_id),
                ExpressionAttributeNames=names,
                ReturnValues="ALL_NEW",
                **params,
            )["Attributes"]
        except ClientError as error:  # the condition: more accounts than the requested limit
            count = Counter.from_item(error.response.get("Item"), 0).count  # type: ignore[arg-type]
            return HoldResult(user_id, count, held=False, limit=limit, hold_until=None)
        counter = Counter.from_item(item, time.time())
        return HoldResult(user_id, counter.count, held=True, limit=limit, hold_until=counter.hold_until)

    def reconcile(self, user_id: str) -> tuple[int, int]:
        """Recount a user's accounts and set the counter: ``(counter before, accounts)``.

        Every add and delete bumps the counter's ``version``; the repair is conditional on the
        version read before the recount, so a write that lands meanwhile makes it start over.
        """
        key = self._counter_key(user_id)

        def attempt() -> tuple[int, int]:
            counter = (
                _call(self._db.get_item, TableName=self._table, Key=key, ConsistentRead=True).get("Item")
                or {}
            )
            before = int(counter["count"]["N"]) if "count" in counter else 0
            version = counter.get("version")
            actual = 0
            params = {**self._accounts_query(user_id), "Select": "COUNT", "ConsistentRead": True}
            while True:
                page = _call(self._db.query, **params)
                actual += int(page.get("Count", 0))
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            try:
                _call(
                    self._db.update_item,
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #c = :actual ADD #v :one",
                    ConditionExpression="#v = :version" if version else "attribute_not_exists(#v)",
                    ExpressionAttributeNames={"#c": "count", "#v": "version"},
                    ExpressionAttributeValues={
                        ":actual": {"N": str(actual)},
                        ":one": {"N": "1"},
                        **({":version": version} if version else {}),
                    },
                )
            except ClientError:  # a write landed during the recount: count again
                raise _TryAgain() from None
            return before, actual

        return _with_retries(attempt)

    # -- internals ---------------------------------------------------------------------------
    def _counter_key(self, user_id: str) -> dict[str, Any]:
        return {"PK": _s(_user_pk(user_id)), "SK": _s(USAGE_SK)}

    def _user_query(self, user_id: str) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(_user_pk(user_id))},
        }

    def _accounts_query(self, user_id: str) -> dict[str, Any]:
        """Query arguments for a user's accounts: ``ACCOUNT#`` sort keys, oldest id first."""
        return {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": _s(_user_pk(user_id)), ":prefix": _s("ACCOUNT#")},
        }

    def _delete_account(self, user_id: str, current: dict[str, Any]) -> None:
        """One attempt at removing an account read as ``current`` with its guard and one count."""
        pk, account_id = _user_pk(user_id), current["id"]["S"]
        key = current["accountNumberKey"]["S"]
        try:
            self._transact(
                [
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"PK": _s(pk), "SK": _s(_account_sk(account_id))},
                            "ConditionExpression": "attribute_exists(PK) AND #k = :k",
                            "ExpressionAttributeNames": {"#k": "accountNumberKey"},
                            "ExpressionAttributeValues": {":k": _s(key)},
                        }
                    },
                    self._delete_guard(pk, key, account_id),
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": self._counter_key(user_id),
                            "UpdateExpression": "SET #c = #c - :one ADD #v :one",
                            "ConditionExpression": "#c > :zero",
                            "ExpressionAttributeNames": {"#c": "count", "#v": "version"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
                        }
                    },
                ]
            )
        except ClientError as error:
            codes = _cancellation_codes(error)
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise _TryAgain() from None  # gone or renumbered meanwhile: read again (gone -> 404)
            if codes[2:3] == ["ConditionalCheckFailed"]:
                logger.error("usage counter of %s is out of step; run reconcile", user_id)
                raise ServiceUnavailable() from None
            _transient_or_fault(error, codes)

    def _put_guard(self, pk: str, number_key: str, account_id: str) -> dict[str, Any]:
        """Claim an account number for ``account_id``; fails if the user already tracks it."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {"PK": _s(pk), "SK": _s(_guard_sk(number_key)), "accountId": _s(account_id)},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _delete_guard(self, pk: str, number_key: str, account_id: str) -> dict[str, Any]:
        """Release an account number, only if it is still ``account_id``'s."""
        return {
            "Delete": {
                "TableName": self._table,
                "Key": {"PK": _s(pk), "SK": _s(_guard_sk(number_key))},
                "ConditionExpression": "accountId = :id",
                "ExpressionAttributeValues": {":id": _s(account_id)},
            }
        }

    def _get_account_item(self, user_id: str, account_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = _call(
            self._db.get_item,
            TableName=self._table,
            Key={"PK": _s(_user_pk(user_id)), "SK": _s(_account_sk(account_id))},
            ConsistentRead=True,
        ).get("Item")
        return item

    def _counter_from_reason(self, error: ClientError, user_id: str) -> Counter:
        reasons = error.response.get("CancellationReasons") or []
        item = reasons[2].get("Item") if len(reasons) == 3 else None
        if item and "count" in item:
            return Counter.from_item(dict(item), time.time())
        return self.counter(user_id)

    def _transact(self, items: list[dict[str, Any]]) -> None:
        # A fresh token per logical attempt: botocore's own retries of a lost response reuse it,
        # so DynamoDB applies the transaction at most once.
        try:
            self._db.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)  # type: ignore[arg-type]
        except BotoCoreError as error:
            logger.error("DynamoDB unreachable: %s", error)
            raise ServiceUnavailable() from None


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """A client with botocore's standard retries (throttling) and short timeouts.

    A bare botocore client: boto3 adds nothing a low-level client uses, and its import is cold
    start every container pays (the usage count sits on Kinde's plan-change path).
    """
    # Worst case (1 + 2 s) x 3 attempts stays inside the functions' 15 s timeout, so a stuck
    # DynamoDB ends in our 503 body, not in API Gateway's bare 500.
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=1,
        read_timeout=2,
        tcp_keepalive=True,
    )
    client = _botocore_session().create_client("dynamodb", endpoint_url=endpoint_url, config=config)
    return cast("DynamoDBClient", client)


@functools.cache
def get_repository() -> AccountRepository:
    """One repository per container: the client and its connection pool are reused warm."""
    settings = get_settings()
    return AccountRepository(dynamodb_client(settings.dynamodb_endpoint_url), settings.table_name)
