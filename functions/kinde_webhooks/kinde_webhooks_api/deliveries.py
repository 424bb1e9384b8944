"""Kinde webhook events already processed: the one record of which events were handled."""

from __future__ import annotations

import functools
import hashlib
import math
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from planguard.dynamodb import call, dynamodb_client, s
from planguard.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# How long a processed event is remembered, and so the oldest event acted on: Kinde retries a
# delivery for up to 36 hours, and gives up on an endpoint that has failed for 72.
WINDOW_SECONDS = 72 * 3600


class WebhookDeliveries:
    """Kinde events already processed, by their signed ``event_id``, in the idempotency table
    (its TTL cleans up).

    An event is marked only after it succeeded, so a failed attempt is retried by Kinde, never
    locked out. The mark is a conditional put: two deliveries of one event racing each other both
    act (acting twice is harmless, each step is idempotent) and exactly one mark wins.
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _key(self, event_id: str) -> dict[str, Any]:
        return {"id": s(f"webhook#{hashlib.sha256(event_id.encode()).hexdigest()}")}

    def seen(self, event_id: str) -> bool:
        item = call(
            self._db.get_item, TableName=self._table, Key=self._key(event_id), ConsistentRead=True
        ).get("Item")
        return item is not None

    def mark(self, event_id: str, event_type: str, occurred_at: float) -> bool:
        """Record the event as processed; False when another delivery of it recorded it first.

        Kept ``WINDOW_SECONDS`` from the later of now and the event's signed time, so the record
        outlives every moment at which the event is not yet too old to act on.
        """
        expiration = math.ceil(max(time.time(), occurred_at) + WINDOW_SECONDS)
        item = {
            **self._key(event_id),
            "status": s("COMPLETED"),
            "eventType": s(event_type[:128]),
            "expiration": {"N": str(expiration)},
        }
        try:
            call(
                self._db.put_item,
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError:  # call re-raises only the failed condition
            return False
        return True


@functools.cache
def get_deliveries() -> WebhookDeliveries:
    settings = get_settings()
    return WebhookDeliveries(
        dynamodb_client(settings.dynamodb_endpoint_url), settings.idempotency_table_name or ""
    )
