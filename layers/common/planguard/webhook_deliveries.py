"""Kinde webhook deliveries already processed: the one record of which events were handled."""

from __future__ import annotations

import functools
import hashlib
import time
from typing import TYPE_CHECKING, Any

from planguard.repository import _call, _s, dynamodb_client
from planguard.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class WebhookDeliveries:
    """Kinde webhook deliveries already processed, in the idempotency table (its TTL cleans up).

    A delivery is marked only after it succeeded, so a failed attempt is retried by Kinde,
    never locked out; Kinde retries a delivery for up to 36 hours, hence the 72-hour memory.
    """

    TTL_SECONDS = 72 * 3600

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def _key(self, delivery_id: str) -> dict[str, Any]:
        return {"id": _s(f"webhook#{hashlib.sha256(delivery_id.encode()).hexdigest()}")}

    def seen(self, delivery_id: str) -> bool:
        item = _call(
            self._db.get_item, TableName=self._table, Key=self._key(delivery_id), ConsistentRead=True
        ).get("Item")
        return item is not None and int(item.get("expiration", {}).get("N", "0")) > time.time()

    def mark(self, delivery_id: str, event_type: str) -> None:
        item = {
            **self._key(delivery_id),
            "status": _s("COMPLETED"),
            "eventType": _s(event_type[:128]),
            "expiration": {"N": str(int(time.time()) + self.TTL_SECONDS)},
        }
        _call(self._db.put_item, TableName=self._table, Item=item)


@functools.cache
def get_deliveries() -> WebhookDeliveries:
    settings = get_settings()
    return WebhookDeliveries(
        dynamodb_client(settings.dynamodb_endpoint_url), settings.idempotency_table_name or ""
    )
