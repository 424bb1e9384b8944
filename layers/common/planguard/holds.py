"""The downgrade hold's writes on the usage counter: placing one (it only lowers, or extends a lower
one) and replacing one once Kinde has applied a plan since it was placed.

Each is a conditional write on the counter item, the item every add's condition reads, so DynamoDB
serialises holds and adds. The conditions are the limit rule's (``planguard.limits``); the answer
to a refused write is built from the stored state only, never guessed: the item the failed
condition returned, or a consistent read when the DynamoDB implementation leaves it out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.counter_item import Counter, returned_item
from planguard.dynamodb import call, s
from planguard.errors import ServiceUnavailable
from planguard.keys import counter_key
from planguard.limits import (
    HOLD_NAMES,
    Replacement,
    extend_condition,
    hold_condition,
    hold_step,
    replace_condition,
)
from planguard.plan_rule import HoldResult

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

# Each attempt is one placing write, then at most one read and one extending write. Another try
# is needed only when the stored state moved between two of them (an add, a delete, a hold ending).
HOLD_ATTEMPTS = 4


def _names(*keys: str) -> dict[str, str]:
    """Only the attribute names an expression uses: DynamoDB refuses unused ones."""
    return {key: HOLD_NAMES[key] for key in keys}


class HoldWrites:
    """The hold's writes on one table. ``read``: the consistent counter read; ``clock``: epoch seconds."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        read: Callable[[str], Counter],
        clock: Callable[[], float],
    ) -> None:
        self._db = client
        self._table = table_name
        self._read = read
        self._clock = clock

    def place(self, user_id: str, limit: int | None, plan: str | None, hold_seconds: int) -> HoldResult:
        """Bind the user's adds to ``limit`` for ``hold_seconds``, only while they are within it.

        ``held`` is true only when the stored state now has an active hold at or below ``limit``:
        this one, or a lower one already there (then extended to last at least as long, and
        answered with its own limit). ``limit=None`` (an unlimited plan) writes nothing and answers
        the active hold, if any. Raises ``ServiceUnavailable`` when the state keeps moving.
        """
        if limit is None:
            counter = self._read(user_id)
            return HoldResult(user_id, counter.count, True, counter.hold_limit, counter.hold_until)
        for _ in range(HOLD_ATTEMPTS):
            now = self._clock()
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

    def replace(self, user_id: str, hold_from: int, new: Replacement) -> bool:
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

    # -- the two conditional writes of a hold request ------------------------------------------------
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
        return Counter.from_item(item, now) if item is not None else self._read(user_id)
