"""The downgrade rule (DESIGN.md §5): pure Python, no AWS, the same decisions as the seed workflow.

Usage is read only when the move is a downgrade, through the ``read_usage`` callable, so a
storage fault can only ever fail a downgrade — never an upgrade or a lateral move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planguard.settings import FEATURE_KEY, PlanLimits

DENY_MESSAGE = "You need to reduce your usage before moving to this plan:"


class PlanCheckError(ValueError):
    """The event cannot be decided; the caller must fail closed (Kinde: throw)."""


class UsageUnavailable(RuntimeError):
    """Usage could not be read, so a downgrade cannot be judged: fail closed."""


@dataclass(frozen=True)
class HoldResult:
    """What placing a downgrade hold answered: ONE conditional write on the usage counter.

    ``held`` is true when ``count <= limit`` and the hold was recorded (until ``hold_until``,
    ISO-8601 UTC); false when the user has more than ``limit`` accounts (nothing recorded,
    ``count`` is the count that failed the condition). ``limit=None`` releases any hold.
    """

    kinde_id: str
    count: int
    held: bool
    limit: int | None
    hold_until: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "kindeId": self.kinde_id,
            "count": self.count,
            "held": self.held,
            "limit": self.limit,
            "holdUntil": self.hold_until,
        }


@dataclass(frozen=True)
class PlanDecision:
    allowed: bool
    message: str | None = None
    reasons: tuple[str, ...] = ()
    used: int | None = None
    limit: int | None = None

    @property
    def excess(self) -> int | None:
        if self.used is None:
            return None
        return max(0, self.used - self.limit) if self.limit is not None else 0

    def to_json(self) -> dict[str, Any]:
        usage = None
        if self.used is not None:
            usage = {FEATURE_KEY: {"used": self.used, "limit": self.limit, "excess": self.excess}}
        return {
            "allowed": self.allowed,
            "message": self.message,
            "reasons": list(self.reasons),
            "usage": usage,
        }


def deny_reasons(used: int, limit: int) -> tuple[str, str]:
    """The seed's two reasons, word for word."""
    return (
        f"Your current usage is {used}, but the new plan only allows up to {limit}.",
        f"Please reduce your usage to {limit} or fewer to continue.",
    )


def _is_smaller(requested: int | None, current: int | None) -> bool:
    """``None`` is unlimited: larger than any number."""
    if requested is None:
        return False
    return current is None or requested < current


def check_plan_change(
    *,
    user_id: str | None,
    current_plan: str | None,
    requested_plan: str | None,
    plan_limits: PlanLimits,
    read_usage: Callable[[str], int],
) -> PlanDecision:
    if not user_id:
        raise PlanCheckError("Missing user id in event context.")
    if not requested_plan:
        raise PlanCheckError("Missing requested plan code.")
    if requested_plan not in plan_limits:
        raise PlanCheckError(f"Unknown requested plan: {requested_plan}")
    if not current_plan or current_plan not in plan_limits:
        return PlanDecision(allowed=True)
    requested_limit = plan_limits[requested_plan].get(FEATURE_KEY)
    current_limit = plan_limits[current_plan].get(FEATURE_KEY)
    if not _is_smaller(requested_limit, current_limit):
        return PlanDecision(allowed=True)
    assert requested_limit is not None  # a smaller limit is a number
    try:
        used = read_usage(user_id)
    except Exception as exc:
        raise UsageUnavailable(f"Cannot check the user limits: {exc}") from exc
    if isinstance(used, bool) or not isinstance(used, int):
        raise UsageUnavailable(f"Cannot check the user limits: usage is {used!r}, not a count")
    if used > requested_limit:
        return PlanDecision(
            allowed=False,
            message=DENY_MESSAGE,
            reasons=deny_reasons(used, requested_limit),
            used=used,
            limit=requested_limit,
        )
    return PlanDecision(allowed=True, used=used, limit=requested_limit)
