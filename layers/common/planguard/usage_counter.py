"""The usage counter item: its read, the downgrade hold, the reconcile, and its part in an account write.

One item per user counts their accounts, with a ``version`` that every add and delete bumps (so a
repair is race-safe) and, while Kinde applies a downgrade, a hold. A hold is one conditional write
on the same item as the adds' counter updates, so DynamoDB serialises the two; the conditions
both writes carry are the limit rule's (``planguard.limits``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.dynamodb import TryAgain, call, s, with_retries
from planguard.keys import accounts_query, counter_key, iso
from planguard.limits import CONDITION_NAMES, add_condition, hold_condition
from planguard.plan_rule import HoldResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

COUNTER_ITEM = 2  # the counter's update is the third item of an account's transaction


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
        return cls(count, int(item["holdLimit"]["N"]), iso(datetime.fromtimestamp(until, UTC)))


class CounterConditionFailed(Exception):
    """An add was refused by the counter's condition: a limit or an active hold.

    Carries the counter as the failed condition saw it; what that means to the caller (which
    limit, which error) is the limit rule's to say (``planguard.limits.refusal``), not the store's.
    """

    def __init__(self, counter: Counter) -> None:
        super().__init__(f"counter condition failed at count {counter.count}")
        self.counter = counter


class UsageCounter:
    """Reads and writes of one table's usage counters."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    # -- reads -------------------------------------------------------------------------------
    def counter(self, user_id: str) -> Counter:
        """One GetItem of the usage counter (count and active hold); zero for a new user."""
        item = call(
            self._db.get_item,
            TableName=self._table,
            Key=counter_key(user_id),
            ConsistentRead=True,
            ProjectionExpression="#c, holdLimit, holdUntil",
            ExpressionAttributeNames={"#c": "count"},
        ).get("Item")
        return Counter.from_item(item, time.time())

    def usage_count(self, user_id: str) -> int:
        return self.counter(user_id).count

    # -- writes ------------------------------------------------------------------------------
    def place_hold(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """ONE conditional write: record ``limit`` as a hold only if ``count <= limit``.

        ``limit=None`` (the requested plan is unlimited) releases any hold. Refused: nothing is
        written and the answer carries the count that failed the condition.
        """
        until = time.time() + hold_seconds
        names = {**CONDITION_NAMES, "#hp": "holdPlan"}
        if limit is None:
            params: dict[str, Any] = {
                "UpdateExpression": "SET #c = if_not_exists(#c, :zero) REMOVE #hl, #hu, #hp",
                "ExpressionAttributeValues": {":zero": {"N": "0"}},
            }
        else:
            condition, values = hold_condition(limit)
            params = {
                "UpdateExpression": (
                    "SET #c = if_not_exists(#c, :zero), #hl = :limit, #hu = :until, #hp = :plan"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeValues": {
                    ":zero": {"N": "0"},
                    **values,
                    ":until": {"N": str(math.ceil(until))},  # never shorter than asked
                    ":plan": s(plan or ""),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        try:
            item = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id),
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
        key = counter_key(user_id)

        def attempt() -> tuple[int, int]:
            counter = (
                call(self._db.get_item, TableName=self._table, Key=key, ConsistentRead=True).get("Item") or {}
            )
            before = int(counter["count"]["N"]) if "count" in counter else 0
            version = counter.get("version")
            actual = 0
            params = {**accounts_query(self._table, user_id), "Select": "COUNT", "ConsistentRead": True}
            while True:
                page = call(self._db.query, **params)
                actual += int(page.get("Count", 0))
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            try:
                call(
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
                raise TryAgain() from None
            return before, actual

        return with_retries(attempt)

    # -- the counter's part in an account's transaction ------------------------------------------
    def _increment(self, user_id: str, limit: int | None) -> dict[str, Any]:
        """One more account, only within the entitlement's ``limit`` (None: unlimited) and any
        active hold; refused, the transaction returns the counter as it was."""
        condition, values = add_condition(limit, int(time.time()))
        return {
            "Update": {
                "TableName": self._table,
                "Key": counter_key(user_id),
                "UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one ADD #v :one",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {**CONDITION_NAMES, "#v": "version"},
                "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, **values},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _decrement(self, user_id: str) -> dict[str, Any]:
        """One account fewer; a counter already at zero is out of step and refuses."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": counter_key(user_id),
                "UpdateExpression": "SET #c = #c - :one ADD #v :one",
                "ConditionExpression": "#c > :zero",
                "ExpressionAttributeNames": {"#c": "count", "#v": "version"},
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
            }
        }

    def _refused_add(self, error: ClientError, user_id: str) -> CounterConditionFailed:
        """The refusal of an add, with the counter its condition saw (read again if not returned)."""
        reasons = error.response.get("CancellationReasons") or []
        item = reasons[COUNTER_ITEM].get("Item") if len(reasons) == COUNTER_ITEM + 1 else None
        if item and "count" in item:
            return CounterConditionFailed(Counter.from_item(dict(item), time.time()))
        return CounterConditionFailed(self.counter(user_id))
