"""Kinde's answer to a plan selection: run the workflow (PlanCheckFunction), then apply or deny.

Kinde fires the selection before payment, so an allowed change applies when Kinde would: at once,
after ``apply_after`` seconds (payment pending), or never (``fails``: the payment does not go
through). A newer selection replaces a change still waiting, as Kinde's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.kinde.account_api import PlanStore, iso

# Kinde running the workflow on a plan selection: (user, current plan, requested plan) -> decision.
PlanChangeHook = Callable[[str, str | None, str], dict[str, Any]]


class PlanChanges:
    """Plan selections on ``store``; ``hook`` is the workflow (None: every change is allowed)."""

    def __init__(self, store: PlanStore, hook: PlanChangeHook | None = None) -> None:
        self.store = store
        self.hook = hook

    def request(self, user_id: str, plan: str, apply_after: float = 0, fails: bool = False) -> dict[str, Any]:
        """The one entry point for a plan selection (``make plan``, ``/dev/plan``, the portal).

        Runs the workflow; a failing workflow stops the change, a denial keeps the plan. An allowed
        change applies at once, after ``apply_after`` seconds (the answer says when: ``applyAt``),
        or, with ``fails``, never (``"fails": true``). ``ValueError`` for an unknown plan.
        """
        self.store.check_plan(plan)
        current = self.store.plan_of(user_id)
        answer: dict[str, Any] = {"user": user_id, "from": current, "requested": plan}
        try:
            decision = self.hook(user_id, current, plan) if self.hook else {}
        except Exception as exc:
            return {**answer, "plan": current, "allowed": False, "error": f"The plan check failed: {exc}"}
        decision = {"allowed": True, "message": None, "reasons": [], "usage": None, **decision}
        if decision["allowed"] and fails:
            self.store.drop_pending(user_id)
            answer.update(fails=True)
        elif decision["allowed"] and apply_after > 0:
            at = self.store.now() + apply_after
            self.store.set_plan_later(user_id, plan, at)
            answer.update(applyAfter=apply_after, applyAt=iso(at))
        elif decision["allowed"]:
            self.store.set_plan(user_id, plan)
        return {**answer, "plan": self.store.plan_of(user_id), **decision}
