"""The usage counter item: its read, the downgrade hold, the reconcile, and its part in an account write.

One item per user counts their accounts, with a ``version`` that every add and delete bumps (so a
repair is race-safe) and, while Kinde applies a plan change, a hold. The hold's writes
(``planguard.holds``) are conditional writes on the same item as the adds' counter updates, so
DynamoDB serialises them; the conditions all of them carry are the limit rule's (``planguard.limits``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.counter_item import Counter
from planguard.dynamodb import TryAgain, call, with_retries
from planguard.holds import HoldWrites
from planguard.keys import accounts_query, counter_key
from planguard.limits import CONDITION_NAMES, Replacement, add_condition
from planguard.plan_rule import HoldResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["COUNTER_ITEM", "Counter", "CounterConditionFailed", "UsageCounter"]

COUNTER_ITEM = 2  # the counter's update is the third item of an account's transaction


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

    def __init__(
        self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table_name
        self.clock = clock  # epoch seconds: when a hold ends and starts (tests move it)
        # Through a lambda: a test that replaces ``self.clock`` moves the holds' clock too.
        self._holds = HoldWrites(client, table_name, self.counter, lambda: self.clock())  # noqa: PLW0108

    # -- reads -------------------------------------------------------------------------------
    def counter(self, user_id: str) -> Counter:
        """One GetItem of the usage counter (count and active hold); zero for a new user."""
        item = call(
            self._db.get_item,
            TableName=self._table,
            Key=counter_key(user_id),
            ConsistentRead=True,
            ProjectionExpression="#c, holdLimit, holdUntil, holdFrom",
            ExpressionAttributeNames={"#c": "count"},
        ).get("Item")
        return Counter.from_item(item, self.clock())

    def usage_count(self, user_id: str) -> int:
        return self.counter(user_id).count

    # -- the downgrade hold (planguard.holds) -----------------------------------------------------
    def place_hold(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """Bind the user's adds to ``limit`` for ``hold_seconds`` while they are within it; a later
        hold only lowers (``planguard.holds.HoldWrites.place``)."""
        return self._holds.place(user_id, limit, plan, hold_seconds)

    def replace_hold(self, user_id: str, hold_from: int, new: Replacement) -> bool:
        """Replace the hold placed at ``hold_from`` once Kinde has applied a plan since; False when a
        newer hold is there (``planguard.holds.HoldWrites.replace``)."""
        return self._holds.replace(user_id, hold_from, new)

    # -- writes ------------------------------------------------------------------------------
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
        condition, values = add_condition(limit, int(self.clock()))
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
            return CounterConditionFailed(Counter.from_item(dict(item), self.clock()))
        return CounterConditionFailed(self.counter(user_id))
