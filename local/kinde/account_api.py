"""The plan each user is on (with plan changes due later) and the Account API's answers built from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

DEFAULT_PLAN = "free"
PlanLimits = dict[str, dict[str, int | None]]  # plan code -> feature key -> limit (None: unlimited)


class PlanStore:
    """Users' plans (``DEFAULT_PLAN`` until set) and plan changes waiting for their time."""

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
        self._lock = lock
        self._saved = saved  # called after a change that the state file keeps

    def check_plan(self, plan: str) -> None:
        if plan not in self.plan_limits:
            raise ValueError(f"Unknown plan {plan!r}; known plans: {', '.join(self.plan_limits)}")

    def plan_of(self, user_id: str) -> str:
        """The user's plan now (a late plan change whose time has come is applied first)."""
        with self._lock:
            plan, at = self.pending.get(user_id, (None, 0.0))
            if plan is not None and time.time() >= at:
                self.pending.pop(user_id)
                self.plans[user_id] = plan
                self._saved()
            return self.plans.get(user_id, DEFAULT_PLAN)

    def set_plan(self, user_id: str, plan: str) -> None:
        self.check_plan(plan)
        with self._lock:
            self.plans[user_id] = plan
            self.pending.pop(user_id, None)
        self._saved()

    def set_plan_later(self, user_id: str, plan: str, at: float) -> None:
        """``plan`` becomes the user's at ``at`` (epoch seconds), replacing any change already waiting."""
        with self._lock:
            self.pending[user_id] = (plan, at)
        self._saved()

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            return {"plans": dict(self.plans), "pending": dict(self.pending)}


def entitlement_body(store: PlanStore, user_id: str, feature: str) -> dict[str, Any] | None:
    """``GET /account_api/v1/entitlement/{feature}``: the user's plan's limit for it (None: 404)."""
    plan = store.plan_of(user_id)
    features = store.plan_limits.get(plan, {})
    if feature not in features:
        return None
    entitlement = {
        "id": f"entitlement_{plan}_{feature}",
        "fixed_charge": None,
        "price_name": plan.title(),
        "unit_amount": None,
        "feature_key": feature,
        "feature_name": feature.replace("_", " ").capitalize(),
        "entitlement_limit_max": features[feature],
        "entitlement_limit_min": None,
    }
    return {"data": {"org_code": "org_dev", "entitlement": entitlement}, "metadata": {}}


def entitlements_body(store: PlanStore, user_id: str) -> dict[str, Any]:
    """``GET /account_api/v1/entitlements``: the user's plan and every entitlement it has."""
    plan = store.plan_of(user_id)
    features = store.plan_limits.get(plan, {})
    entitlements = [
        body["data"]["entitlement"] for f in features if (body := entitlement_body(store, user_id, f))
    ]
    return {
        "data": {
            "org_code": "org_dev",
            "plans": [{"key": plan, "subscribed_on": datetime.now(UTC).isoformat()}],
            "entitlements": entitlements,
        },
        "metadata": {"has_more": False, "next_page_starting_after": None},
    }
