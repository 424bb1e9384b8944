"""The usage counter item: its read, the downgrade hold's writes, the reconcile, its part in an
account's transaction, and the DynamoDB conditions that encode the limit rule on it.

One item per user counts their accounts (key and attributes laid out in ``planguard.keys``), with a
``version`` that every add and delete bumps (so a repair is race-safe) and, while Kinde applies a
plan change, a hold. A hold binds adds until ``holdUntil``, and past it for as long as Kinde has
not shown the change applied (a downgrade applied at the end of a billing period), up to
``hold_max_seconds`` after ``holdFrom``: such a *lapsed* hold is still a hold, until the add's
decision reads Kinde and ends or extends it. The hold's writes are conditional writes on the same
item as the adds' counter updates, so DynamoDB serialises them. The conditions all of them carry
say in DynamoDB's words what ``planguard.limit_rule`` says in Python (``tests/unit/test_limits.py``
runs one table through both).
The answer to a refused write is built from the stored state only, never guessed: the item the
failed condition returned, or a consistent read when the DynamoDB implementation leaves it out.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.deleted_marker import refuses
from planguard.dynamodb import TryAgain, call, dynamodb_client, s, with_retries
from planguard.errors import ServiceUnavailable
from planguard.keys import accounts_query, counter_key, deleted_marker_key, iso, user_pk
from planguard.limit_rule import Replacement, hold_step, late_hold_until
from planguard.settings import (
    DOWNGRADE_HOLD_MAX_SECONDS,
    DOWNGRADE_HOLD_SECONDS,
    BillingCustomer,
    get_settings,
)

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
# A BatchGetItem may leave keys unprocessed when throttled: read those again, a few times at most.
BATCH_ATTEMPTS = 3

# The item's attribute names, as its expressions spell them.
COUNT = {"#c": "count"}
CONDITION_NAMES = {**COUNT, "#hl": "holdLimit", "#hu": "holdUntil", "#hf": "holdFrom"}
HOLD_NAMES = {**CONDITION_NAMES, "#hp": "holdPlan"}
VERSIONED = {**COUNT, "#v": "version"}


# -- the item as read ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Counter:
    """The count, and the downgrade hold when one binds: its limit, its end (ISO-8601 and epoch
    seconds) and when it was placed (``hold_from``, epoch seconds; None on a hold placed before
    that was recorded). ``hold_lapsed``: past its end, still binding until Kinde is asked (a hold
    older than the maximum, or without ``holdFrom``, is no hold past its end). ``deleted``: the
    user was deleted in Kinde (only on a read that asked for the marker)."""

    count: int
    hold_limit: int | None = None
    hold_until: str | None = None
    hold_from: int | None = None
    hold_ends_at: float | None = field(default=None, compare=False)
    hold_lapsed: bool = False
    deleted: bool = False

    @classmethod
    def from_item(cls, item: dict[str, Any] | None, now: float, oldest: float | None = None) -> Counter:
        """The counter at ``now``; a hold past its end still binds when placed after ``oldest``
        (``now`` minus the longest a downgrade may stay pending; None: never)."""
        item = item or {}
        count = int(item["count"]["N"]) if "count" in item else 0
        if "holdLimit" not in item:
            return cls(count)
        until = float(item["holdUntil"]["N"]) if "holdUntil" in item else 0.0
        since = int(float(item["holdFrom"]["N"])) if "holdFrom" in item else None
        lapsed = until <= now
        if lapsed and (since is None or oldest is None or since <= oldest):
            return cls(count)
        moment = iso(datetime.fromtimestamp(until, UTC))
        return cls(count, int(item["holdLimit"]["N"]), moment, since, until, lapsed)


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


# How the usage routes' answers name whose count they give: the workflow checks it is the id it sent.
ID_FIELD: dict[BillingCustomer, str] = {"user": "kindeId", "organization": "orgCode"}


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

    def to_json(self, kind: BillingCustomer = "user") -> dict[str, Any]:
        """The hold route's answer, naming the id under its kind's field (``ID_FIELD``)."""
        return {
            ID_FIELD[kind]: self.kinde_id,
            "count": self.count,
            "held": self.held,
            "limit": self.limit,
            "holdUntil": self.hold_until,
        }


# -- the limit rule as DynamoDB evaluates it on this item ----------------------------------------
# No hold binds: none, or one past its end that is older than the maximum (or has no holdFrom).
# A hold past its end but younger still binds: only the add's decision, having read Kinde, ends it.
NO_HOLD = "(attribute_not_exists(#hl) OR (#hu <= :now AND (attribute_not_exists(#hf) OR #hf <= :oldest)))"
HOLD_BINDS = "(#hu > :now OR #hf > :oldest)"


def _times(now: int, oldest: int | None) -> dict[str, Any]:
    """``:now`` and ``:oldest`` (None: no hold binds past its end, as ``Counter.from_item``)."""
    return {":now": {"N": str(now)}, ":oldest": {"N": str(now if oldest is None else oldest)}}


def add_condition(limit: int | None, now: int, oldest: int | None = None) -> tuple[str, dict[str, Any]]:
    """The add's condition and its values: ``fits(limit)`` and ``fits(binding hold)``, in one, so a
    hold binds every add, unlimited ones included. ``now``: epoch seconds, for the hold's end;
    ``oldest``: a hold placed after it still binds past its end."""
    within_hold = f"({NO_HOLD} OR #c < #hl)"
    values: dict[str, Any] = _times(now, oldest)
    if limit is None:
        return within_hold, values
    values[":limit"] = {"N": str(limit)}
    return f"(attribute_not_exists(#c) OR #c < :limit) AND {within_hold}", values


def hold_condition(limit: int, now: int, oldest: int | None = None) -> tuple[str, dict[str, Any]]:
    """The placing write's condition: ``hold_step(...) == "place"``, i.e. ``hold_fits(limit)`` and
    ``lowers(binding hold, limit)``."""
    return (
        f"(attribute_not_exists(#c) OR #c <= :limit) AND ({NO_HOLD} OR #hl >= :limit)",
        {":limit": {"N": str(limit)}, **_times(now, oldest)},
    )


def extend_condition(
    limit: int, now: int, until: int, oldest: int | None = None, *, longer: bool = True
) -> tuple[str, dict[str, Any]]:
    """The extending write's condition: a binding hold at or below ``limit`` that ends before
    ``until`` (``longer``), or at or after it (only its start moves)."""
    return (
        f"#hl <= :limit AND {HOLD_BINDS} AND #hu {'<' if longer else '>='} :until",
        {":limit": {"N": str(limit)}, ":until": {"N": str(until)}, **_times(now, oldest)},
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
    and starts (tests move it); ``hold_seconds``: how long Kinde may take to apply a change (a hold
    past its end is extended by that much while Kinde still shows the old plan);
    ``hold_max_seconds``: how long after ``holdFrom`` a hold may bind at most."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Callable[[], float] = time.time,
        *,
        kind: BillingCustomer = "user",
        hold_seconds: int = DOWNGRADE_HOLD_SECONDS,
        hold_max_seconds: int = DOWNGRADE_HOLD_MAX_SECONDS,
    ) -> None:
        self._db = client
        self._table = table_name
        self.clock = clock
        self.kind: BillingCustomer = kind  # whose counters: users' or organizations' (keys.py)
        self.hold_seconds = hold_seconds
        self.hold_max_seconds = hold_max_seconds

    def _oldest(self, now: float) -> int:
        """A hold placed after this (epoch seconds) may still bind past its end."""
        return math.floor(now) - self.hold_max_seconds

    def _counter(self, item: dict[str, Any] | None, now: float) -> Counter:
        return Counter.from_item(item, now, self._oldest(now))

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
            Key=counter_key(user_id, self.kind),
            ConsistentRead=True,
            ProjectionExpression="#c, holdLimit, holdUntil, holdFrom",
            ExpressionAttributeNames=COUNT,
        ).get("Item")
        return self._counter(item, self.clock())

    def shown(self, user_id: str, issued_at: int) -> Counter:
        """The counter and whether Kinde deleted the user after their token was issued at
        ``issued_at``, in one round trip (a ``BatchGetItem`` of the counter and the deletion
        marker): what the reads show."""
        keys = [counter_key(user_id, self.kind), deleted_marker_key(user_pk(user_id, self.kind))]
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "PK, SK, #c, holdLimit, holdUntil, holdFrom, deletedUntil, deletedAt",
                "ExpressionAttributeNames": COUNT,
            }
        }
        found: list[dict[str, Any]] = []
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:  # DynamoDB left keys unprocessed (throttled): a short, growing pause
                time.sleep(0.02 * 2**attempt)
            answer = call(self._db.batch_get_item, RequestItems=request)
            found += answer.get("Responses", {}).get(self._table, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise ServiceUnavailable()
        now = self.clock()
        counter = next((item for item in found if item["SK"] == keys[0]["SK"]), None)
        marker = next((item for item in found if item["SK"] == keys[1]["SK"]), None)
        shown = self._counter(counter, now)
        return replace(shown, deleted=True) if refuses(marker, now, issued_at) else shown

    def usage_count(self, user_id: str) -> int:
        return self.counter(user_id).count

    # -- the downgrade hold ----------------------------------------------------------------------
    def place_hold(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """Bind the user's adds to ``limit`` for ``hold_seconds``, only while they are within it.

        ``held`` is true only when the stored state now has a binding hold at or below ``limit``:
        this one, or a lower one already there (then extended to last at least as long, and
        started afresh: only a plan Kinde applies after this request may replace it; answered with
        its own limit). ``limit=None`` (an unlimited plan) writes nothing and answers
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
                # It lasts at least until this request's end, and starts now: a plan Kinde applied
                # before this selection is no news about it.
                longer = (counter.hold_ends_at or 0) < until
                extended = self._extend(user_id, limit, int(now), until, longer=longer)
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
                Key=counter_key(user_id, self.kind),
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
        condition, values = hold_condition(limit, now, self._oldest(now))
        try:
            item = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id, self.kind),
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
        return True, self._counter(item, now)

    def _extend(self, user_id: str, limit: int, now: int, until: int, *, longer: bool) -> Counter | None:
        """The extending write, one for both: the binding lower hold starts at ``now`` (its
        ``holdFrom``) and, when ``longer``, lasts until ``until``. None when it is no longer there
        as read (gone, replaced, or its end moved meanwhile)."""
        condition, values = extend_condition(limit, now, until, self._oldest(now), longer=longer)
        try:
            item = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id, self.kind),
                UpdateExpression="SET #hf = :now, #hu = :until" if longer else "SET #hf = :now",
                ConditionExpression=condition,
                ExpressionAttributeNames=_names("#hl", "#hu", "#hf"),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError:
            return None
        return self._counter(item, now)

    def extend_lapsed_hold(self, user_id: str, hold_from: int) -> bool:
        """A hold past its end while Kinde still shows the old, higher plan: it lasts
        ``hold_seconds`` more (never past ``hold_max_seconds`` after ``holdFrom``), from the same
        ``holdFrom``. False: it moved meanwhile."""
        until = late_hold_until(self.clock(), hold_from, self.hold_seconds, self.hold_max_seconds)
        return self._update_hold(user_id, hold_from, "SET #hu = :until", {":until": {"N": str(until)}})

    def end_hold(self, user_id: str, hold_from: int) -> bool:
        """The hold placed at ``hold_from`` ends (Kinde shows the change applied). False: a newer
        hold is there; it stays."""
        return self._update_hold(user_id, hold_from, "REMOVE #hl, #hu, #hp, #hf", {})

    def release_hold(self, user_id: str) -> int | None:
        """Support ends a user's hold, whatever it is: its limit, or None when there was none."""
        try:
            old = call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id, self.kind),
                UpdateExpression="REMOVE #hl, #hu, #hp, #hf",
                ConditionExpression="attribute_exists(#hl)",
                ExpressionAttributeNames=_names("#hl", "#hu", "#hp", "#hf"),
                ReturnValues="UPDATED_OLD",
            )["Attributes"]
        except ClientError:
            return None
        return int(old["holdLimit"]["N"])

    def _update_hold(self, user_id: str, hold_from: int, update: str, values: dict[str, Any]) -> bool:
        condition, conditioned = replace_condition(hold_from)
        names = ("#hl", "#hu", "#hp", "#hf") if update.startswith("REMOVE") else ("#hu", "#hf")
        try:
            call(
                self._db.update_item,
                TableName=self._table,
                Key=counter_key(user_id, self.kind),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(*names),
                ExpressionAttributeValues={**conditioned, **values},
            )
        except ClientError:  # the condition: placed, replaced or ended meanwhile
            return False
        return True

    def _refused(self, response: Mapping[str, Any], user_id: str, now: float) -> Counter:
        """The counter that refused a write: as the condition returned it, else read (consistently:
        a refusal must never be explained by a count of 0 that was never stored)."""
        item = returned_item(response)
        return self._counter(item, now) if item is not None else self.counter(user_id)

    # -- repair and removal ----------------------------------------------------------------------
    def reconcile(self, user_id: str) -> tuple[int, int]:
        """Recount a user's accounts and set the counter: ``(counter before, accounts)``.

        Every add and delete bumps the counter's ``version``; the repair is conditional on the
        version read before the recount, so a write that lands meanwhile makes it start over.
        """
        key = counter_key(user_id, self.kind)

        def attempt() -> tuple[int, int]:
            counter = (
                call(self._db.get_item, TableName=self._table, Key=key, ConsistentRead=True).get("Item") or {}
            )
            before = int(counter["count"]["N"]) if "count" in counter else 0
            version = counter.get("version")
            actual = 0
            params = {
                **accounts_query(self._table, user_id, self.kind),
                "Select": "COUNT",
                "ConsistentRead": True,
            }
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
            call(self._db.delete_item, TableName=self._table, Key=counter_key(user_id, self.kind), **at_zero)
        except ClientError:  # the condition: not zero
            return False
        return True

    # -- the counter's part in an account's transaction --------------------------------------------
    def increment(self, user_id: str, limit: int | None) -> dict[str, Any]:
        """One more account, only within the entitlement's ``limit`` (None: unlimited) and any
        active hold; refused, the transaction returns the counter as it was."""
        now = int(self.clock())
        condition, values = add_condition(limit, now, self._oldest(now))
        return {
            "Update": {
                "TableName": self._table,
                "Key": counter_key(user_id, self.kind),
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
                "Key": counter_key(user_id, self.kind),
                "UpdateExpression": "SET #c = #c - :one ADD #v :one",
                "ConditionExpression": "#c > :zero",
                "ExpressionAttributeNames": VERSIONED,
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":zero": {"N": "0"}},
            }
        }

    def refused_add(self, error: ClientError, user_id: str) -> CounterConditionFailed:
        """The refusal of an add, with the counter its condition saw (read again if not returned)."""
        reasons = error.response.get("CancellationReasons") or []
        item = reasons[COUNTER_ITEM].get("Item") if len(reasons) > COUNTER_ITEM else None
        if item and "count" in item:
            return CounterConditionFailed(self._counter(dict(item), self.clock()))
        return CounterConditionFailed(self.counter(user_id))


@functools.cache
def get_usage_counter(kind: BillingCustomer | None = None) -> UsageCounter:
    """One per container and kind of customer (default: ``BILLING_CUSTOMER``'s, the same object
    as asking for that kind); the client and its connection pool are reused warm."""
    settings = get_settings()
    if kind is None:
        return get_usage_counter(settings.billing_customer)
    return UsageCounter(
        dynamodb_client(settings.dynamodb_endpoint_url),
        settings.table_name,
        kind=kind,
        hold_seconds=settings.downgrade_hold_seconds,
        hold_max_seconds=settings.downgrade_hold_max_seconds,
    )
