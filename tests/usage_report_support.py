"""Stream records as Lambda's event source mapping delivers them, and a Kinde Management API that
records what it is asked (the usage-report tests and the bench share them)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from planguard.errors import EntitlementUnavailable
from planguard.keys import USAGE_SK
from usage_report_fn.kinde_port import KindeRejected

FEATURE = "tracked_accounts"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/AccountsTable/stream/2026-01-01T00:00:00.000"
_SEQUENCE = itertools.count(4_000_000_000_000_000_000_000)


def counter_image(pk: str, count: int, version: int = 1, **hold: Any) -> dict[str, Any]:
    image: dict[str, Any] = {
        "PK": {"S": pk},
        "SK": {"S": USAGE_SK},
        "count": {"N": str(count)},
        "version": {"N": str(version)},
    }
    if hold:
        image.update(
            {
                "holdLimit": {"N": str(hold["limit"])},
                "holdUntil": {"N": str(hold["until"])},
                "holdFrom": {"N": str(hold["since"])},
                "holdPlan": {"S": hold["plan"]},
            }
        )
    return image


def stream_record(
    event_name: str, old: dict[str, Any] | None, new: dict[str, Any] | None, sequence: int | None = None
) -> dict[str, Any]:
    """One record of the accounts table's stream (NEW_AND_OLD_IMAGES)."""
    image = new or old
    assert image is not None
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1795614236,
        "Keys": {"PK": image["PK"], "SK": image["SK"]},
        "SequenceNumber": str(sequence if sequence is not None else next(_SEQUENCE)),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = new
    if old is not None:
        body["OldImage"] = old
    return {
        "eventID": body["SequenceNumber"][-12:],
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": body,
        "eventSourceARN": STREAM_ARN,
    }


def count_changes(pk: str, counts: list[int]) -> list[dict[str, Any]]:
    """The records of a counter going through ``counts`` (from no item: the first is an INSERT)."""
    records, before = [], None
    for version, count in enumerate(counts, start=1):
        new = counter_image(pk, count, version)
        records.append(stream_record("MODIFY" if before else "INSERT", before, new))
        before = new
    return records


@dataclass(frozen=True)
class Agreement:
    id: str
    plan_code: str | None = "pro"
    expires_on: datetime | None = None


@dataclass(frozen=True)
class Organization:
    code: str
    is_default: bool = False
    billing_customer_id: str | None = None


@dataclass
class FakeManagementApi:
    """Kinde's side: customers, their agreements, the usage it received; faults queued per call."""

    customer_ids: dict[str, str] = field(default_factory=dict)  # user id or org code -> customer id
    agreements_of: dict[str, list[Agreement]] = field(default_factory=dict)
    rejected_agreements: set[str] = field(default_factory=set)
    faults: list[Exception | None] = field(default_factory=list)  # the next calls raise these in turn
    down_for: set[str] = field(default_factory=set)  # customer ids whose meter_usage is a 5xx
    calls: list[tuple[str, str]] = field(default_factory=list)
    usage: list[tuple[str, str, int]] = field(default_factory=list)  # (agreement, feature, value)

    def _call(self, name: str, argument: str) -> None:
        self.calls.append((name, argument))
        if self.faults and (fault := self.faults.pop(0)) is not None:
            raise fault

    def organization(self, code: str, deadline: float | None) -> Organization | None:
        self._call("organization", code)
        return Organization(code, billing_customer_id=self.customer_ids.get(code))

    def user_customer_id(self, user_id: str, deadline: float | None) -> str | None:
        self._call("user_customer_id", user_id)
        return self.customer_ids.get(user_id)

    def agreements(self, customer_id: str, feature_code: str, deadline: float | None) -> list[Agreement]:
        self._call("agreements", customer_id)
        return list(self.agreements_of.get(customer_id, []))

    def meter_usage(self, agreement_id: str, feature_code: str, value: int, deadline: float | None) -> None:
        self._call("meter_usage", agreement_id)
        if any(agreement_id.startswith(f"agr_{c}") for c in self.down_for):
            raise EntitlementUnavailable(detail="Management API answered 503")
        if agreement_id in self.rejected_agreements:
            raise KindeRejected(400, f"agreement {agreement_id} is not active")
        self.usage.append((agreement_id, feature_code, value))

    def customer(self, who: str, customer_id: str, *agreements: Agreement) -> None:
        self.customer_ids[who] = customer_id
        self.agreements_of[customer_id] = list(agreements) or [Agreement(f"agr_{customer_id}")]

    def last_value(self, agreement_id: str) -> int | None:
        values = [value for agreement, _, value in self.usage if agreement == agreement_id]
        return values[-1] if values else None

    def calls_of(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


def expired(days: int = 1) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def later(days: int = 30) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)
