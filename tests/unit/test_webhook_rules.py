"""The pure webhook rules at their edges: jose's time checks, the signed timestamp, its age."""

from __future__ import annotations

from typing import Any

import pytest
from kinde_webhooks_api.deliveries import WINDOW_SECONDS
from kinde_webhooks_api.events import FUTURE_SKEW_SECONDS, WebhookEvent, parse_timestamp
from kinde_webhooks_api.webhook_token import WebhookRefused, check_times
from planguard.errors import BadRequest

NOW = 1_800_000_000


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"exp": NOW + 1, "nbf": NOW, "iat": NOW + 3600},  # a future iat is fine, as in jose
        {"exp": NOW + 0.5, "nbf": NOW - 0.5, "iat": 1.5},  # floats are numbers
        {"exp": 10**400},  # JSON's 1e400 is Infinity in JavaScript: never expires there either
    ],
)
def test_times_jose_accepts(claims: dict[str, Any]) -> None:
    check_times(claims, NOW)


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"exp": NOW}, "exp"),  # exp is the first second it is no longer valid: no leeway
        ({"exp": NOW - 1}, "exp"),
        ({"nbf": NOW + 1}, "nbf"),
        ({"nbf": NOW + 0.5}, "nbf"),
        ({"iat": str(NOW)}, "iat"),
        ({"iat": True}, "iat"),
        ({"iat": None}, "iat"),
        ({"exp": str(NOW + 60)}, "exp"),
        ({"exp": False}, "exp"),
        ({"nbf": [NOW]}, "nbf"),
    ],
)
def test_times_jose_refuses(claims: dict[str, Any], check: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        check_times(claims, NOW)
    assert refused.value.check == check


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2027-01-15T08:00:00Z", 1800000000.0),
        ("2027-01-15T08:00:00+00:00", 1800000000.0),
        ("2027-01-15T19:00:00.250+11:00", 1800000000.25),
        ("2027-01-15T08:00:00", 1800000000.0),  # no offset: UTC
        ("yesterday", None),
        ("", None),
        (1800000000, None),
        (None, None),
        ("2027-01-15T08:00:00Z" + " " * 100, None),
    ],
)
def test_the_signed_timestamp(value: Any, epoch: float | None) -> None:
    assert parse_timestamp(value) == epoch


def event(**claims: Any) -> dict[str, Any]:
    return {"type": "user.deleted", "event_id": "event_1", "timestamp": "2027-01-15T08:00:00Z", **claims}


def test_an_event_at_the_edges_of_its_time() -> None:
    parsed = WebhookEvent.from_claims(event(data=[1]), NOW - FUTURE_SKEW_SECONDS)  # 5 min ahead: fine
    assert (parsed.type, parsed.event_id, parsed.occurred_at, parsed.data) == (
        "user.deleted",
        "event_1",
        NOW,
        {},
    )
    with pytest.raises(BadRequest, match="in the future"):
        WebhookEvent.from_claims(event(), NOW - FUTURE_SKEW_SECONDS - 1)
    assert not parsed.is_stale(NOW + WINDOW_SECONDS, WINDOW_SECONDS)
    assert parsed.is_stale(NOW + WINDOW_SECONDS + 1, WINDOW_SECONDS)
    assert WINDOW_SECONDS == 72 * 3600


@pytest.mark.parametrize(
    "claims", [{"type": ""}, {"type": None}, {"event_id": 5}, {"event_id": ""}, {"timestamp": "soon"}]
)
def test_an_event_without_what_we_need(claims: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        WebhookEvent.from_claims(event(**claims), NOW)
