"""The marker a deletion in Kinde leaves: while it lasts, the tokens issued before it are refused.

Kinde's access tokens outlive their user: after ``user.deleted`` a token issued before it stays
valid until it expires, and with every item of the user gone nothing else would stop its adds.
So the webhook first puts a marker (its own item, ``planguard.keys.deleted_marker_key``, beside the
deleted partition, never in it): ``deletedAt``, the event's signed time, and ``deletedUntil``, when
the last token issued before it has expired; the table's TTL removes it some time after that, and
until DynamoDB does, ``deletedUntil`` in the past means no marker. A token issued after the
deletion (``iat`` later than ``deletedAt``, both Kinde's clock) is not refused: Kinde ids are not
reused, but a token of a new sign-up would be news, not a leftover. Generic over the partition:
a user's (``USER#<id>``), or an organization's.

It costs no extra round trip: an add's transaction carries ``condition_check``, and the reads that
show usage fetch the marker in the same ``BatchGetItem`` as the usage counter.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.dynamodb import call
from planguard.keys import deleted_marker_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

UNTIL = "deletedUntil"  # epoch seconds; the table's TTL attribute
AT = "deletedAt"  # epoch seconds, Kinde's clock: the event's signed timestamp
NAMES = {"#u": UNTIL, "#at": AT}
# Kinde's clock and ours may differ: a token issued just before the deletion (Kinde's clock) may
# expire a little later on ours.
CLOCK_SKEW_SECONDS = 60


def marker_until(deleted_at: float, token_lifetime_seconds: int) -> int:
    """When the last token issued before a deletion at ``deleted_at`` has expired (our clock)."""
    return math.ceil(deleted_at) + token_lifetime_seconds + CLOCK_SKEW_SECONDS


def refuses(item: dict[str, Any] | None, now: float, issued_at: float | None) -> bool:
    """A marker item as read refuses a token issued at ``issued_at`` (None: unknown, refused)."""
    if item is None or UNTIL not in item or float(item[UNTIL]["N"]) <= now:
        return False
    return issued_at is None or AT not in item or issued_at <= float(item[AT]["N"])


def condition_check(table: str, partition: str, now: int, issued_at: int | None) -> dict[str, Any]:
    """A transaction item that fails while ``partition`` is marked deleted for a token issued at
    ``issued_at`` (epoch seconds; None: any token)."""
    condition = "attribute_not_exists(#u) OR #u <= :now"
    values: dict[str, Any] = {":now": {"N": str(now)}}
    names = {"#u": UNTIL}
    if issued_at is not None:
        condition += " OR #at < :iat"
        values[":iat"] = {"N": str(issued_at)}
        names = NAMES
    return {
        "ConditionCheck": {
            "TableName": table,
            "Key": deleted_marker_key(partition),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def mark_deleted(client: DynamoDBClient, table: str, partition: str, deleted_at: float, until: int) -> None:
    """Refuse ``partition``'s tokens issued up to ``deleted_at`` until ``until``; a mark already
    lasting at least as long stays as it is."""
    try:
        call(
            client.update_item,
            TableName=table,
            Key=deleted_marker_key(partition),
            UpdateExpression="SET #u = :until, #at = :at",
            ConditionExpression="attribute_not_exists(#u) OR #u < :until",
            ExpressionAttributeNames=NAMES,
            ExpressionAttributeValues={
                ":until": {"N": str(until)},
                ":at": {"N": str(math.floor(deleted_at))},
            },
        )
    except ClientError:  # the condition: a mark lasting at least as long is there already
        return
