"""Kinde's answer to a plan selection: run the workflow (PlanCheckFunction), then apply or deny."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.kinde.account_api import PlanStore

# Kinde running the workflow on a plan selection: (user, current plan, requested plan) -> decision.
PlanChangeHook = Callable[[str, str | None, str], dict[str, Any]]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PlanChanges:
    """Plan selections on ``store``; ``hook`` is the workflow (None: every change is allowed)."""

    def __init__(self, store: PlanStore, hook: PlanChangeHook | None = None) -> None:
        self.store = store
        self.hook = hook

    def request(self, user_id: str, plan: str, apply_after: float = 0) -> dict[str, Any]:
        """Run the workflow, then apply the change (after ``apply_after`` seconds, if given) or deny
        it. A failing workflow stops it."""
        self.store.check_plan(plan)
        current = self.store.plan_of(user_id)
        answer: dict[str, Any] = {"user": user_id, "from": current, "requested": plan}
        try:
            decision = self.hook(user_id, current, plan) if self.hook else {}
        except Exception as exc:
            return {**answer, "plan": current, "allowed": False, "error": f"The plan check failed: {exc}"}
        decision = {"allowed": True, "message": None, "reasons": [], "usage": None, **decision}
        if decision["allowed"] and apply_after > 0:
            at = time.time() + apply_after
            self.store.set_plan_later(user_id, plan, at)
            answer.update(applyAfter=apply_after, applyAt=_iso(at))
        elif decision["allowed"]:
            self.store.set_plan(user_id, plan)
        return {**answer, "plan": self.store.plan_of(user_id), **decision}
