"""What a verified Kinde webhook says, and whether it is still news: pure rules, no AWS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planguard.errors import BadRequest
from planguard.request_parsing import epoch_seconds

# Our clock and Kinde's may differ a little; an event signed further ahead than this is not one
# Kinde sent just now.
FUTURE_SKEW_SECONDS = 300
MAX_TIMESTAMP_LENGTH = 64


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    event_id: str
    occurred_at: float  # the signed timestamp, epoch seconds
    data: dict[str, Any]

    @classmethod
    def from_claims(cls, claims: dict[str, Any], now: float) -> WebhookEvent:
        """The event, or ``BadRequest`` (nothing is recorded): ``type`` and ``event_id`` missing,
        or a ``timestamp`` we cannot read or more than ``FUTURE_SKEW_SECONDS`` ahead of ``now``.

        A timestamp is required although only its age is checked: without one, a captured body
        could be replayed once its deduplication record has expired."""
        event_type, event_id, data = claims.get("type"), claims.get("event_id"), claims.get("data")
        if not isinstance(event_type, str) or not event_type or not isinstance(event_id, str) or not event_id:
            raise BadRequest("The webhook must carry a type and an event_id.")
        occurred_at = parse_timestamp(claims.get("timestamp"))
        if occurred_at is None:
            raise BadRequest("The webhook must carry its timestamp (ISO-8601).")
        if occurred_at > now + FUTURE_SKEW_SECONDS:
            raise BadRequest("The webhook's timestamp is in the future.")
        return cls(event_type, event_id, occurred_at, data if isinstance(data, dict) else {})

    def is_stale(self, now: float, window_seconds: float) -> bool:
        """Older than the deduplication window: its record may be gone, so acting on it again
        could undo what happened since (a replayed ``user.deleted`` would delete a returning user)."""
        return now - self.occurred_at > window_seconds


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (no offset means UTC), or None if it is not one."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH:
        return None
    return epoch_seconds(value)
