"""The plan each user is on (with plan changes due later) and the Account API's answers built from it.

Like Kinde, each plan a user is on carries ``subscribed_on``: when it was applied, on the
stand-in's clock. That clock is the real one plus ``clock_offset`` seconds, which tests move
forward to play "an hour later" without waiting (a pending change then applies, at its own time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

DEFAULT_PLAN = "free"
PlanLimits = dict[str, dict[str, int | None]]  # plan code -> feature key -> limit (None: unlimited)
DEFAULT_PAGE_SIZE = 10  # the entitlements list's page when the caller gives no page_size
MAX_PAGE_SIZE = 100


def iso(epoch: float) -> str:
    """ISO-8601 UTC with seconds, as Kinde writes ``subscribed_on``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PlanStore:
    """Users' plans (``DEFAULT_PLAN`` until set), when each was applied, and plan changes waiting
    for their time."""

    def __init__(
        self,
        plan_limits: PlanLimits,
        lock: threading.RLock,
        saved: Callable[[], None],
        state: dict[str, Any] | None = None,
    ) -> None:
        self.plan_limits = plan_limits
        state = state or {}
        self.plans: dict[str, str] = dict(state.get("plans", {}))
        # user -> (plan, when it applies, epoch seconds)
        self.pending: dict[str, tuple[str, float]] = {
            user: (plan, float(at)) for user, (plan, at) in state.get("pending", {}).items()
        }
        # user -> when their plan was applied (epoch seconds): Kinde's subscribed_on
        self.subscribed: dict[str, float] = {
            user: float(at) for user, at in state.get("subscribed", {}).items()
        }
        self.clock_offset = 0.0  # seconds the stand-in's clock runs ahead of the real one
        self.page_size = DEFAULT_PAGE_SIZE
        self._lock = lock
        self._saved = saved  # called after a change that the state file keeps

    def now(self) -> float:
        """The stand-in's clock (Kinde's), epoch seconds."""
        return time.time() + self.clock_offset

    def check_plan(self, plan: str) -> None:
        if plan not in self.plan_limits:
            raise ValueError(f"Unknown plan {plan!r}; known plans: {', '.join(self.plan_limits)}")

    def plan_of(self, user_id: str) -> str:
        """The user's plan now (a late plan change whose time has come is applied first)."""
        return self.subscription(user_id)[0]

    def subscription(self, user_id: str) -> tuple[str, float]:
        """``(plan, subscribed_on)`` now: a pending change whose time has come is applied first, at
        its own time; a user never seen before is on ``DEFAULT_PLAN`` from now."""
        with self._lock:
            plan, at = self.pending.get(user_id, (None, 0.0))
            if plan is not None and self.now() >= at:
                self.pending.pop(user_id)
                self.plans[user_id] = plan
                self.subscribed[user_id] = at
                self._saved()
            if user_id not in self.subscribed:
                self.subscribed[user_id] = self.now()
                self._saved()
            return self.plans.get(user_id, DEFAULT_PLAN), self.subscribed[user_id]

    def set_plan(self, user_id: str, plan: str) -> None:
        """``plan`` applies now (replacing any change still waiting); the plan the user is already
        on keeps its ``subscribed_on`` (a token minted for it changes nothing)."""
        self.check_plan(plan)
        with self._lock:
            if self.plans.get(user_id) != plan or user_id not in self.subscribed:
                self.subscribed[user_id] = self.now()
            self.plans[user_id] = plan
            self.pending.pop(user_id, None)
        self._saved()

    def set_plan_later(self, user_id: str, plan: str, at: float) -> None:
        """``plan`` becomes the user's at ``at`` (epoch seconds, the stand-in's clock), replacing any
        change already waiting."""
        with self._lock:
            self.pending[user_id] = (plan, at)
        self._saved()

    def drop_pending(self, user_id: str) -> None:
        """A newer selection that will never apply supersedes the change that was waiting."""
        with self._lock:
            self.pending.pop(user_id, None)
        self._saved()

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "plans": dict(self.plans),
                "pending": dict(self.pending),
                "subscribed": dict(self.subscribed),
            }


def entitlement_body(store: PlanStore, user_id: str, feature: str) -> dict[str, Any] | None:
    """``GET /account_api/v1/entitlement/{feature}``: the user's plan's limit for it (None: 404)."""
    return _wrap(_entitlement(store, store.plan_of(user_id), feature))


def _entitlement(store: PlanStore, plan: str, feature: str) -> dict[str, Any] | None:
    features = store.plan_limits.get(plan, {})
    if feature not in features:
        return None
    return {
        "id": f"entitlement_{plan}_{feature}",
        "fixed_charge": None,
        "price_name": plan.title(),
        "unit_amount": None,
        "feature_key": feature,
        "feature_name": feature.replace("_", " ").capitalize(),
        "entitlement_limit_max": features[feature],
        "entitlement_limit_min": None,
    }


def _wrap(entitlement: dict[str, Any] | None) -> dict[str, Any] | None:
    if entitlement is None:
        return None
    return {"data": {"org_code": "org_dev", "entitlement": entitlement}, "metadata": {}}


def entitlements_body(store: PlanStore, user_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    """``GET /account_api/v1/entitlements?page_size=&starting_after=``: the user's plan with its
    ``subscribed_on`` (on every page) and one page of its entitlements, ordered by id."""
    query = query or {}
    plan, since = store.subscription(user_id)
    entitlements = sorted(
        (item for feature in store.plan_limits.get(plan, {}) if (item := _entitlement(store, plan, feature))),
        key=lambda item: str(item["id"]),
    )
    size = query.get("page_size", "")
    page_size = min(int(size), MAX_PAGE_SIZE) if size.isdigit() and int(size) > 0 else store.page_size
    after = query.get("starting_after")
    start = next((n + 1 for n, item in enumerate(entitlements) if item["id"] == after), 0) if after else 0
    page = entitlements[start : start + page_size]
    more = start + page_size < len(entitlements)
    return {
        "data": {
            "org_code": "org_dev",
            "plans": [{"key": plan, "subscribed_on": iso(since)}],
            "entitlements": page,
        },
        "metadata": {"has_more": more, "next_page_starting_after": page[-1]["id"] if more and page else None},
    }
