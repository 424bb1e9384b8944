"""What a batch of the accounts table's stream records means for Kinde: per customer, one report.

Pure: the records as Lambda's event source mapping delivers them (DynamoDB JSON images), no AWS.
A stream keeps each item's changes in order, so a customer's last record holds the newest count.
Only a change of the count is worth a report: a downgrade hold's writes leave it as it was, and
the hold route creates a counter at 0 (what a new customer has anyway). A removed counter (the
customer deleted) is 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from planguard.keys import USAGE_SK, CustomerKind, customer_of
from planguard.usage_counter import Counter


@dataclass(frozen=True)
class Customer:
    kind: CustomerKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


@dataclass(frozen=True)
class CounterChange:
    """One stream record of a usage counter: the count before and after (0 when there was no item
    before, or is none after)."""

    sequence: str
    customer: Customer
    before: int
    after: int
    removed: bool

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class Report:
    """The count to send for one customer, and the record a retry must start from: the first of
    the batch's records that changed this customer's count (a later one may be a hold write)."""

    customer: Customer
    value: int
    removed: bool
    retry_from: str


def _count(image: Mapping[str, Any] | None) -> int:
    return Counter.from_item(dict(image or {}), 0).count


def counter_change(record: Mapping[str, Any]) -> CounterChange | None:
    """The change a record carries, or None for a record that is not a usage counter's (the
    mapping's filter lets none through; a sample event or a replay might)."""
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    if keys.get("SK", {}).get("S") != USAGE_SK:
        return None
    owner = customer_of(str(keys.get("PK", {}).get("S", "")))
    if owner is None:
        return None
    removed = record.get("eventName") == "REMOVE"
    return CounterChange(
        sequence=str(stream["SequenceNumber"]),
        customer=Customer(*owner),
        before=_count(stream.get("OldImage")),
        after=0 if removed else _count(stream.get("NewImage")),
        removed=removed,
    )


def reports(records: Iterable[Mapping[str, Any]]) -> list[Report]:
    """Per customer whose count changed in the batch, its newest count; in the order the
    customers' first changes came."""
    newest: dict[Customer, CounterChange] = {}
    first_change: dict[Customer, str] = {}
    for record in records:
        change = counter_change(record)
        if change is None:
            continue
        newest[change.customer] = change
        if change.changed:
            first_change.setdefault(change.customer, change.sequence)
    return [
        Report(customer, newest[customer].after, newest[customer].removed, sequence)
        for customer, sequence in first_change.items()
    ]
