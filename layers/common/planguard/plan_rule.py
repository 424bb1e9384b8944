"""The downgrade rule: pure Python, no AWS, the same decisions as the workflow in ``kinde/`` (which
runs it in production); PlanCheckFunction runs this one for ``sam local invoke``, the stand-in and
``GET /plan-check``.

Whose usage: the user's (``billing_customer="user"``, the id is the user id) or, when Kinde bills
organizations, the organization's (``"organization"``, the id is the organization code). The rule
learns that customer's usage in one of two ways, given by the caller:

- ``read_usage(id) -> count | UsageCount``: a plain read, made only when the move is a downgrade, so a
  storage fault can only ever fail a downgrade (``GET /plan-check``: "could I move now?").
- ``place_hold(id, limit, plan) -> HoldResult``: the downgrade hold, ONE conditional write
  that records "adds are bound by ``limit``" only while ``count <= limit`` (and only lowering an
  active hold). It closes the race between reading the count and Kinde applying the smaller plan.
  Kinde fires the selection before payment and may apply it late or never, so a selection must
  never widen a limit: the hold is placed on every change that is not a clear upgrade. For a
  downgrade it *is* the read (its failure fails the change); for a lateral move or an unknown
  current plan it is best-effort protection that never changes the decision; a clear upgrade
  places and lifts nothing.

Either answer must name the id it was asked about, else the change cannot be judged: the workflow
meets a usage URL of the other mode this way, and the rule is the same in both languages.
Errors raised by either callable pass through unchanged, so a storage fault keeps its own type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planguard.settings import FEATURE_KEY, BillingCustomer, PlanLimits

if TYPE_CHECKING:  # the answer of the usage counter's hold; the rule itself stays free of AWS
    from planguard.usage_counter import HoldResult

logger = logging.getLogger(__name__)

DENY_MESSAGE = "You need to reduce your usage before moving to this plan:"


class PlanCheckError(ValueError):
    """The event cannot be decided; the caller must fail closed (Kinde: throw)."""


@dataclass(frozen=True)
class UsageCount:
    """A count read off the wire: whose count the answer says it is, and the count. (An
    in-process read answers the bare count, which is the asked id's by construction.)"""

    customer_id: str
    count: int


type ReadUsage = Callable[[str], int | UsageCount]
"""``read_usage(id)`` -> that customer's count, bare or as an answer naming the id."""

type PlaceHold = Callable[[str, int | None, str], HoldResult]
"""``place_hold(id, requested limit or None for unlimited, requested plan code)``."""

_MISSING_ID: dict[BillingCustomer, str] = {
    "user": "Missing user id in event context.",
    "organization": "Missing organization code in event context.",
}


@dataclass(frozen=True)
class PlanDecision:
    allowed: bool
    message: str | None = None
    reasons: tuple[str, ...] = ()
    used: int | None = None
    limit: int | None = None
    # What placing the hold answered (place_hold mode), None when no hold was placed or it failed.
    # Not part of to_json(): callers that show it add it themselves.
    hold: HoldResult | None = None

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


def _cannot_check(customer: BillingCustomer, why: str) -> PlanCheckError:
    return PlanCheckError(f"Cannot check the {customer} limits: {why}")


def _count(value: object, source: str, customer: BillingCustomer) -> int:
    """A usage count is a whole number >= 0; anything else cannot be judged."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _cannot_check(customer, f"{source} is {value!r}, not a count")
    return value


def _named(answered: object, sent: str, customer: BillingCustomer) -> None:
    """The answer is about the id that was sent, or it cannot be trusted."""
    if answered != sent:
        raise _cannot_check(customer, f"the answer is about {answered!r}, not {sent!r}")


def _judge(used: int, limit: int, hold: HoldResult | None = None) -> PlanDecision:
    # With a hold, the conditional write has decided; its count explains a denial.
    over = not hold.held if hold is not None else used > limit
    if over:
        return PlanDecision(
            allowed=False,
            message=DENY_MESSAGE,
            reasons=deny_reasons(used, limit),
            used=used,
            limit=limit,
            hold=hold,
        )
    return PlanDecision(allowed=True, used=used, limit=limit, hold=hold)


def _is_larger(requested: int | None, current: int | None) -> bool:
    """``None`` is unlimited: nothing is larger than it, and it is larger than any number."""
    if current is None:
        return False
    return requested is None or requested > current


def _protect(
    place_hold: PlaceHold, customer_id: str, limit: int | None, plan: str, customer: BillingCustomer
) -> HoldResult | None:
    """A lateral move or an unknown current plan: hold at this plan's limit in case the change
    lowers it. Best-effort — the answer never changes the decision, and a failure never blocks."""
    try:
        return _checked_hold(place_hold, customer_id, limit, plan, customer)
    except Exception:
        logger.warning(
            "could not place the hold for a move that is not a downgrade; allowing it anyway",
            extra={"customer_id": customer_id, "requested_plan": plan, "limit": limit},
            exc_info=True,
        )
        return None


def _checked_hold(
    place_hold: PlaceHold, customer_id: str, limit: int | None, plan: str, customer: BillingCustomer
) -> HoldResult:
    hold = place_hold(customer_id, limit, plan)
    if not isinstance(hold.held, bool):
        raise _cannot_check(customer, f"held is {hold.held!r}, not a boolean")
    _count(hold.count, "the held count", customer)
    _named(hold.kinde_id, customer_id, customer)
    return hold


def check_plan_change(
    *,
    user_id: str | None,
    current_plan: str | None,
    requested_plan: str | None,
    plan_limits: PlanLimits,
    read_usage: ReadUsage | None = None,
    place_hold: PlaceHold | None = None,
    billing_customer: BillingCustomer = "user",
    org_code: str | None = None,
) -> PlanDecision:
    """Decide a plan change. Give exactly one of ``read_usage`` (read only) or ``place_hold``.

    ``billing_customer`` says whose usage counts: the user's (``user_id``) or the organization's
    (``org_code``; the user id is then not needed). Raises ``PlanCheckError`` when the change
    cannot be judged; whatever ``read_usage`` or a downgrade's ``place_hold`` raises passes through
    unchanged (fail closed).
    """
    if (read_usage is None) == (place_hold is None):
        raise TypeError("check_plan_change needs exactly one of read_usage and place_hold")
    customer_id = org_code if billing_customer == "organization" else user_id
    if not customer_id:
        raise PlanCheckError(_MISSING_ID[billing_customer])
    if not requested_plan:
        raise PlanCheckError("Missing requested plan code.")
    if requested_plan not in plan_limits:
        raise PlanCheckError(f"Unknown requested plan: {requested_plan}")
    requested_limit = plan_limits[requested_plan].get(FEATURE_KEY)
    # A current plan outside our table (legacy, or none yet) is not ours to judge.
    current = plan_limits.get(current_plan) if current_plan else None
    current_limit = current.get(FEATURE_KEY) if current is not None else None
    if current is not None and _is_larger(requested_limit, current_limit):
        return PlanDecision(allowed=True)  # a clear upgrade: nothing to protect, nothing lifted
    if current is None or not _is_smaller(requested_limit, current_limit):
        hold = None
        if place_hold is not None:
            hold = _protect(place_hold, customer_id, requested_limit, requested_plan, billing_customer)
        return PlanDecision(allowed=True, hold=hold)
    assert requested_limit is not None  # a smaller limit is a number
    if place_hold is not None:
        # The hold is the read: one conditional write, count <= limit or nothing recorded.
        hold = _checked_hold(place_hold, customer_id, requested_limit, requested_plan, billing_customer)
        return _judge(hold.count, requested_limit, hold)
    assert read_usage is not None
    usage = read_usage(customer_id)
    if isinstance(usage, UsageCount):
        used = _count(usage.count, "usage", billing_customer)
        _named(usage.customer_id, customer_id, billing_customer)
    else:
        used = _count(usage, "usage", billing_customer)
    return _judge(used, requested_limit)
