"""Which limit binds a user's adds, why an add is refused, and how a hold moves: the one rule, pure.

Two limits bind an add: the entitlement's (the plan Kinde reports; ``None`` is unlimited) and an
active downgrade hold's. An add fits while the count is below both, so the smaller binds. A hold
is placed only while the user is within it, and a later hold only lowers an active one (a plan
selection may be paid late or never, so it must never widen a limit); only Kinde applying a plan
after the hold was placed replaces it early. Past its end a hold lapses only once Kinde shows the
change (``late_step``), or at the longest a downgrade may stay pending. The rule is written twice:
here in Python, to explain a refusal, show ``/usage`` and read a refused write; and as the DynamoDB
conditions that enforce it inside the writes themselves, with the counter item
(``planguard.usage_counter``: a missing count is 0, and a hold past its end binds only while
younger than the maximum). ``tests/unit/test_limits.py`` checks that both say the same. No AWS
imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from planguard.errors import ApiError, LimitReached, NoEntitlement

# Kinde's clock and ours may differ: a plan applied within this margin after a hold was placed may
# have been applied before it, so it never ends the hold early.
CLOCK_SKEW_SECONDS = 60


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


def lowers(active_hold: int | None, limit: int) -> bool:
    """A hold at ``limit`` may take the place of the active one (``None``: none): it only lowers."""
    return active_hold is None or active_hold >= limit


HoldStep = Literal["refuse", "place", "extend"]


def hold_step(counter: CounterState, limit: int) -> HoldStep:
    """What a hold request at ``limit`` does to the counter as it stands: ``refuse`` (more accounts
    than ``limit``: nothing recorded), ``place`` (record it), or ``extend`` (an active, lower hold
    stays and at most lasts longer: the request still deserves protection while its own selection
    may be pending)."""
    if not hold_fits(limit, counter.count):
        return "refuse"
    return "place" if lowers(counter.hold_limit, limit) else "extend"


@dataclass(frozen=True)
class Replacement:
    """The hold that takes an active one's place once Kinde has applied a plan since it was
    placed: the fresh limit (``None``: unlimited, the hold goes), from when Kinde applied it, until
    every warm container's cached entitlement has caught up."""

    limit: int | None
    plan: str
    since: int  # epoch seconds: the plan's subscribed_on (whole seconds, as holdFrom is stored)
    until: int


def replacement(
    hold_from: int | None,
    plans: Iterable[tuple[str, float | None]],
    fresh_limit: int | None,
    cache_seconds: int,
) -> Replacement | None:
    """How a hold ends before its time: only when Kinde shows a plan applied (``subscribed_on``)
    more than ``CLOCK_SKEW_SECONDS`` after the hold was placed. None: the hold stands (no such
    plan, no usable ``subscribed_on``, or a hold placed before ``holdFrom`` was recorded)."""
    if hold_from is None:
        return None
    applied = [(at, key) for key, at in plans if at is not None and at > hold_from + CLOCK_SKEW_SECONDS]
    if not applied:
        return None
    at, plan = max(applied)
    since = math.floor(at)
    return Replacement(fresh_limit, plan, since, math.ceil(at) + cache_seconds + CLOCK_SKEW_SECONDS)


LateStep = Literal["extend", "end"]


def late_step(hold_limit: int, fresh_limit: int | None) -> LateStep:
    """A hold past its end, when Kinde shows no plan applied since it was placed: ``extend`` while
    Kinde's limit is above the hold's (the old, higher plan is still there: a downgrade applied at
    the end of a billing period), ``end`` when it is at or below (the change applied)."""
    return "extend" if fresh_limit is None or fresh_limit > hold_limit else "end"


def late_hold_until(now: float, hold_from: int, hold_seconds: int, max_seconds: int) -> int:
    """Where a lapsed hold's extension ends: ``hold_seconds`` on, never past ``max_seconds`` after
    it was placed (then it binds no more, whatever Kinde shows)."""
    return min(math.ceil(now + hold_seconds), hold_from + max_seconds)


def excess(used: int, limit: int | None) -> int:
    """How many accounts a user holds above ``limit`` (0: within it; ``None`` is unlimited): a plan
    applied after they added more leaves them over it, a state, not an error."""
    return 0 if limit is None else max(0, used - limit)


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
    """An active hold binds and is full: a fresher entitlement alone could not lift the refusal;
    only a plan Kinde applied since the hold was placed can end it early (``replacement``)."""
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
