"""The usage counter item: its read, the downgrade hold's writes, the reconcile, its part in an
account's transaction, and the DynamoDB conditions that encode the limit rule on it.

One item per user counts their accounts (key and attributes laid out in ``planguard.keys``), with a
``version`` that every add and delete bumps (so a repair is race-safe) and, while Kinde applies a
plan change, a hold. The hold's writes are conditional writes on the same item as the adds' counter
updates, so DynamoDB serialises them. The conditions all of them carry say in DynamoDB's words what
``planguard.limit_rule`` says in Python (``tests/unit/test_limits.py`` runs one table through both).
The answer to a refused write is built from the stored state only, never guessed: the item the
failed condition returned, or a consistent read when the DynamoDB implementation leaves it out.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.dynamodb import TryAgain, call, dynamodb_client, s, with_retries
from planguard.errors import ServiceUnavailable
from planguard.keys import accounts_query, counter_key, iso
from planguard.limit_rule import Replacement, hold_step
from planguard.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "COUNTER_ITEM",
    "Counter",
    "CounterConditionFailed",
    "HoldResult",
    "UsageCounter",
    "get_usage_counter",
]

logger = logging.getLogger(__name__)

COUNTER_ITEM = 2  # the counter's update is the third item of an account's transaction
# Each attempt is one placing write, then at most one read and one extending write. Another try
# is needed only when the stored state moved between two of them (an add, a delete, a hold ending).
HOLD_ATTEMPTS = 4

# The item's attribute names, as its expressions spell them.
COUNT = {"#c": "count"}
CONDITION_NAMES = {**COUNT, "#hl": "holdLimit", "#hu": "holdUntil"}
HOLD_NAMES = {**CONDITION_NAMES, "#hf": "holdFrom", "#hp": "holdPlan"}
VERSIONED = {**COUNT, "#v": "version"}


# -- the item as read ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counter:
    """The count, and the downgrade hold when one is active: its limit, its end (ISO-8601 and
    epoch seconds) and when it was placed (``hold_from``, epoch seconds; None on a hold placed
    before that was recorded). An expired hold is no hold."""

    count: int
    hold_limit: int | None = None
    hold_until: str | None = None
    hold_from: int | None = None
    hold_ends_at: float | None = field(default=None, compare=False)

    @classmethod
    def from_item(cls, item: dict[str, Any] | None, now: float) -> Counter:
        item = item or {}
        count = int(item["count"]["N"]) if "count" in item else 0
        until = float(item["holdUntil"]["N"]) if "holdUntil" in item else 0.0
        if "holdLimit" not in item or until <= now:
            return cls(count)
        since = int(float(item["holdFrom"]["N"])) if "holdFrom" in item else None
        moment = iso(datetime.fromtimestamp(until, UTC))
        return cls(count, int(item["holdLimit"]["N"]), moment, since, until)


def returned_item(response: Mapping[str, Any]) -> dict[str, Any] | None:
    """The item a failed condition returned (``ReturnValuesOnConditionCheckFailure``), or None when
    the DynamoDB implementation left it out: then only a consistent read can tell the count."""
    item = response.get("Item")
    return dict(item) if isinstance(item, dict) and "count" in item else None


class CounterConditionFailed(Exception):
    """An add was refused by the counter's condition: a limit or an active hold.

    Carries the counter as the failed condition saw it; what that means to the caller (which
    limit, which error) is the limit rule's to say (``planguard.limit_rule.refusal``).
    """

    def __init__(self, counter: Counter) -> None:
        super().__init__(f"counter condition failed at count {counter.count}")
        self.counter = counter


@dataclass(frozen=True)
class HoldResult:
    """What placing a downgrade hold answered: ONE conditional write on the usage counter.

    ``held`` is true when the stored state has an active hold at or below the requested limit:
    this one (``limit`` is the requested one), or a lower one already there (``limit`` is that
    one's, and it lasts at least until ``hold_until``, ISO-8601 UTC); false when the user has more
    accounts than the requested limit (nothing recorded, ``count`` is the stored count that failed
    the condition). An unlimited request writes nothing: ``held`` with the active hold's limit, or
    ``limit=None`` when there is none.
    """

    kinde_id: str
    count: int
    held: bool
    limit: int | None
    hold_until: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kindeId": self.kinde_id,
            "count": self.count,
            "held": self.held,
            "limit": self.limit,
            "holdUntil": self.hold_until,
        }


# -- the limit rule as DynamoDB evaluates it on this item ----------------------------------------
def add_condition(limit: int | None, now: int) -> tuple[str, dict[str, Any]]:
    """The add's condition and its values: ``fits(limit)`` and ``fits(active hold)``, in one, so a
    hold binds every add, unlimited ones included. ``now``: epoch seconds, for the hold's expiry."""
    within_hold = "(attribute_not_exists(#hl) OR #hu <= :now OR #c < #hl)"
    values: dict[str, Any] = {":now": {"N": str(now)}}
    if limit is None:
        return within_hold, values
    values[":limit"] = {"N": str(limit)}
    return f"(attribute_not_exists(#c) OR #c < :limit) AND {within_hold}", values


def hold_condition(limit: int, now: int) -> tuple[str, dict[str, Any]]:
    """The placing write's condition: ``hold_step(...) == "place"``, i.e. ``hold_fits(limit)`` and
    ``lowers(active hold, limit)``."""
    return (
        "(attribute_not_exists(#c) OR #c <= :limit)"
        " AND (attribute_not_exists(#hl) OR #hu <= :now OR #hl >= :limit)",
        {":limit": {"N": str(limit)}, ":now": {"N": str(now)}},
    )


def extend_condition(limit: int, now: int, until: int) -> tuple[str, dict[str, Any]]:
    """The extending write's condition: an active hold at or below ``limit`` that ends before ``until``."""
    return (
        "#hl <= :limit AND #hu > :now AND #hu < :until",
        {":limit": {"N": str(limit)}, ":now": {"N": str(now)}, ":until": {"N": str(until)}},
    )


def replace_condition(hold_from: int) -> tuple[str, dict[str, Any]]:
    """The replacing write's condition: still the hold that the refused add saw (a hold placed or
    replaced meanwhile is newer news, and stays)."""
    return "#hf = :from", {":from": {"N": str(hold_from)}}


def _names(*keys: str) -> dict[str, str]:
    """Only the attribute names an expression uses: DynamoDB refuses unused ones."""
    return {key: HOLD_NAMES[key] for key in keys}


# -- reads and writes --------------------------------------------------------------------------------
class UsageCounter:
    """Reads and writes of one table's usage counters. ``clock``: epoch seconds, when a hold ends
    and starts (tests move it)."""

    def __init__(
        self, client: DynamoDBClient, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table_name
        self.clock = clock

    @property
    def client(self) -> DynamoDBClient:
        return self._db

    @property
    def table_name(self) -> str:
        return self._table

    def counter(self, user_id: str) -> Counter:
        """One GetItem of the usage counter (count and active hold); zero for a new user."""
        item = call(
            self._db.get_item,
            TableName=self._table,
            Key=counter_key(user_id),
            ConsistentRead=True,
            ProjectionExpression="#c, holdLimit, holdUntil, holdFrom",
            ExpressionAttributeNames=COUNT,
        ).get("Item")
        return Counter.from_item(item, self.clock())

    def usage_count(self, user_id: str) -> int:
        return self.counter(user_id).count

    # -- the downgrade hold ----------------------------------------------------------------------
    def place_hold(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """Bind the user's adds to ``limit`` for ``hold_seconds``, only while they are within it.

        ``held`` is true only when the stored state now has an active hold at or below ``limit``:
        this one, or a lower one already there (then extended to last at least as long, and
        answered with its own limit). ``limit=None`` (an unlimited plan) writes nothing and answers
        the active hold, if any. Raises ``ServiceUnavailable`` when the state keeps moving.
        """
        if limit is None:
            counter = self.counter(user_id)
            return HoldResult(user_id, counter.count, True, counter.hold_limit, counter.hold_until)
        for _ in range(HOLD_ATTEMPTS):
            now = self.clock()
            until = math.ceil(now + hold_seconds)  # never shorter than asked
            placed, counter = self._place(user_id, limit, plan, int(now), until)
            if placed:
                return HoldResult(user_id, counter.count, True, limit, counter.hold_until)
            step = hold_step(counter, limit)
            if step == "refuse":
                return HoldResult(user_id, counter.count, False, limit, None)
            if step == "extend":
                if (counter.hold_ends_at or 0) >= until:  # the lower hold already lasts long enough
                    return HoldResult(user_id, counter.count, True, counter.hold_limit, counter.hold_until)
                extended = self._extend(user_id, limit, int(now), until)
                if extended is not None and extended.hold_limit is not None:
                    return HoldResult(user_id, extended.count, True, extended.hold_limit, extended.hold_until)
            # "place": the read shows the write would now succeed; or the extension lost a race.
        logger.warning("the hold of %s kept changing under its writes; giving up", user_id)
        raise ServiceUnavailable()

    def replace_hold(self, user_id: str, hold_from: int, new: Replacement) -> bool:
        """Replace the hold placed at ``hold_from`` by ``new`` (an unlimited one removes it), in one
        write conditioned on the same ``holdFrom``. False: a newer hold is there; it stays."""
        condition, values = replace_condition(hold_from)
        if new.limit is None:
            update = "REMOVE #hl, #hu, #hp, #hf"
        else:
            update = "SET #hl = :limit, #hu = :until, #hf = :since, #hp = :plan"
            values = {
                **values,
                ":limit": {"N": str(new.limit)},
                ":until": {"N": str(new.until)},
                ":since": {"N": str(new.since)},
                ":plan": s(new.plan),
            }
        try:
            call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names("#hl", "#hu", "#hp", "#hf"),
                ExpressionAttributeValues=values,
            )
        except ClientError:  # the condition: placed or replaced again meanwhile
            return False
        return True

    def _place(
        self, user_id: str, limit: int, plan: str | None, now: int, until: int
    ) -> tuple[bool, Counter]:
        """The placing write: ``(True, counter after)``, or ``(False, counter that refused it)``."""
        condition, values = hold_condition(limit, now)
        try:
            item = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id),
                UpdateExpression=(
                    "SET #c = if_not_exists(#c, :zero), #hl = :limit, #hu = :until, #hp = :plan, #hf = :now"
                ),
                ConditionExpression=condition,
                ExpressionAttributeNames=_names("#c", "#hl", "#hu", "#hp", "#hf"),
                ExpressionAttributeValues={
                    **values,
                    ":zero": {"N": "0"},
                    ":until": {"N": str(until)},
                    ":plan": s(plan or ""),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            return False, self._refused(error.response, user_id, now)
        return True, Counter.from_item(item, now)

    def _extend(self, user_id: str, limit: int, now: int, until: int) -> Counter | None:
        """The extending write: the active lower hold lasts until ``until``; None when it is no
        longer there to extend (or already lasts longer)."""
        condition, values = extend_condition(limit, now, until)
        try:
            item = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id),
                UpdateExpression="SET #hu = :until",
                ConditionExpression=condition,
                ExpressionAttributeNames=_names("#hl", "#hu"),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError:
            return None
        return Counter.from_item(item, now)

    def _refused(self, response: Mapping[str, Any], user_id: str, now: float) -> Counter:
        """The counter that refused a write: as the condition returned it, else read (consistently:
        a refusal must never be explained by a count of 0 that was never stored)."""
        item = returned_item(response)
        return Counter.from_item(item, now) if item is not None else self.counter(user_id)

    # -- repair and removal ----------------------------------------------------------------------
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
                    ExpressionAttributeNames=VERSIONED,
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

    def delete_if_zero(self, user_id: str) -> bool:
        """Remove the counter (and any hold with it) only at zero; False when it is not zero (an
        add landed, or the counter drifted)."""
        at_zero = {
            "ConditionExpression": "attribute_not_exists(#c) OR #c = :zero",
            "ExpressionAttributeNames": COUNT,
            "ExpressionAttributeValues": {":zero": {"N": "0"}},
        }
        try:
            call(self._db.delete_item, TableName=self._table, Key=counter_key(user_id), **at_zero)
        except ClientError:  # the condition: not zero
            return False
        return True

    # -- the counter's part in an account's transaction --------------------------------------------
    def increment(self, user_id: str, limit: int | None) -> dict[str, Any]:
        """One more account, only within the entitlement's ``limit`` (None: unlimited) and any
        active hold; refused, the transaction returns the counter as it was."""
        condition, values = add_condition(limit, int(self.clock()))
        return {
            "Update": {
                "TableName": self._table,
                "Key": counter_key(user_id),
                "UpdateExpression": "SET #c = if_not_exists(#c, :zero) + :one ADD #v :one",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {**CONDITION_NAMES, **VERSIONED},
                "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, **values},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def decrement(self, user_id: str) -> dict[str, Any]:
        """One account fewer; a counter already at zero is out of step and refuses."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": counter_key(user_id),
                "UpdateExpression": "SET #c = #c - :one ADD #v :one",
                "ConditionExpression": "#c > :zero",
                "ExpressionAttributeNames": VERSIONED,
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
            }
        }

    def refused_add(self, error: ClientError, user_id: str) -> CounterConditionFailed:
        """The refusal of an add, with the counter its condition saw (read again if not returned)."""
        reasons = error.response.get("CancellationReasons") or []
        item = reasons[COUNTER_ITEM].get("Item") if len(reasons) == COUNTER_ITEM + 1 else None
        if item and "count" in item:
            return CounterConditionFailed(Counter.from_item(dict(item), self.clock()))
        return CounterConditionFailed(self.counter(user_id))


@functools.cache
def get_usage_counter() -> UsageCounter:
    """One per container: the client and its connection pool are reused warm."""
    settings = get_settings()
    return UsageCounter(dynamodb_client(settings.dynamodb_endpoint_url), settings.table_name)
