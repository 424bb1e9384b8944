"""Which limit binds a user's adds, and why an add is refused: the one rule, pure (no AWS imports).

Two limits bind an add: the entitlement's (the plan Kinde reports; ``None`` is unlimited) and an
active downgrade hold's. An add fits while the count is below both, so the smaller binds. The
same rule is written here twice, side by side: in Python, to explain a refusal and show ``/usage``,
and as the DynamoDB conditions that enforce it inside the add's and the hold's own writes (where
a missing count is 0 and an expired hold is no hold). ``tests/unit/test_limits.py`` checks that
both say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from planguard.errors import ApiError, LimitReached, NoEntitlement

# The counter item's attributes the conditions read (their home is the counter item, planguard.keys).
CONDITION_NAMES = {"#c": "count", "#hl": "holdLimit", "#hu": "holdUntil"}


class EntitlementLimit(Protocol):
    """What the rule reads of an entitlement (``planguard.entitlements.Entitlement``)."""

    @property
    def limit(self) -> int | None: ...
    @property
    def missing(self) -> bool: ...


class CounterState(Protocol):
    """What the rule reads of the usage counter (``planguard.usage_counter.Counter``)."""

    @property
    def count(self) -> int: ...
    @property
    def hold_limit(self) -> int | None: ...  # None: no active hold


def fits(limit: int | None, count: int) -> bool:
    """One more add fits under ``limit`` (``None``: unlimited)."""
    return limit is None or count < limit


def hold_fits(limit: int, count: int) -> bool:
    """A hold at ``limit`` may be placed: the user is within it now."""
    return count <= limit


@dataclass(frozen=True)
class Binding:
    """The limit an add is held to, and which of the two limits it is (on a tie, both)."""

    limit: int | None
    by_entitlement: bool
    by_hold: bool


def binding(entitlement: int | None, hold: int | None) -> Binding:
    """The smaller of the entitlement's limit and an active hold's; ``None`` is unlimited."""
    if hold is None:
        return Binding(entitlement, by_entitlement=True, by_hold=False)
    if entitlement is None or hold < entitlement:
        return Binding(hold, by_entitlement=False, by_hold=True)
    return Binding(entitlement, by_entitlement=True, by_hold=hold == entitlement)


def refuses_without_writing(entitlement: EntitlementLimit) -> bool:
    """A zero limit lets nothing through: refused before any write (a new user has no counter
    for a condition to fail on)."""
    return entitlement.limit == 0


def refused_by_hold(entitlement: EntitlementLimit, counter: CounterState) -> bool:
    """An active hold binds and is full: a fresher entitlement could not lift the refusal, so
    Kinde is not asked again."""
    hold = counter.hold_limit
    return hold is not None and binding(entitlement.limit, hold).by_hold and not fits(hold, counter.count)


def refusal(entitlement: EntitlementLimit, counter: CounterState) -> ApiError:
    """Why an add was refused: the hold when it binds (the smaller limit), else the entitlement
    (missing, or its limit reached)."""
    if refused_by_hold(entitlement, counter) and counter.hold_limit is not None:
        return LimitReached(used=counter.count, limit=counter.hold_limit)
    if entitlement.missing:
        return NoEntitlement()
    return LimitReached(used=counter.count, limit=entitlement.limit or 0)


def shown_limit(entitlement: int | None, source: str, hold: int | None) -> tuple[int | None, str]:
    """``/usage``'s ``(limit, limitSource)``: the binding limit, named ``hold`` only when the hold
    is strictly smaller (on a tie the user's plan is the better name for it)."""
    bound = binding(entitlement, hold)
    return bound.limit, (source if bound.by_entitlement else "hold")


# -- the same rule as DynamoDB evaluates it on the counter item --------------------------------------
def add_condition(limit: int | None, now: int) -> tuple[str, dict[str, Any]]:
    """The add's condition and its values: ``fits(limit)`` and ``fits(active hold)``, in one, so a
    hold binds every add, unlimited ones included. ``now``: epoch seconds, for the hold's expiry."""
    within_hold = "(attribute_not_exists(#hl) OR #hu <= :now OR #c < #hl)"
    values: dict[str, Any] = {":now": {"N": str(now)}}
    if limit is None:
        return within_hold, values
    values[":limit"] = {"N": str(limit)}
    return f"(attribute_not_exists(#c) OR #c < :limit) AND {within_hold}", values


def hold_condition(limit: int) -> tuple[str, dict[str, Any]]:
    """The hold's condition and its values: ``hold_fits(limit)``."""
    return "attribute_not_exists(#c) OR #c <= :limit", {":limit": {"N": str(limit)}}
