"""The usage counter item as read: a user's count and the downgrade hold active on it.

Its attributes are laid out in ``planguard.keys``; this is what the stores and the limit rule see
of them at a given moment (an expired hold is no hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from planguard.keys import iso


@dataclass(frozen=True)
class Counter:
    """The count, and the downgrade hold when one is active: its limit, its end (ISO-8601 and
    epoch seconds) and when it was placed (``hold_from``, epoch seconds; None on a hold placed
    before that was recorded)."""

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
