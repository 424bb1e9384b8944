"""Kinde's answer to a plan selection: run the workflow (PlanCheckFunction), then apply or deny.

Kinde fires the selection before payment, so an allowed change applies when Kinde would: at once,
after ``apply_after`` seconds (payment pending), or never (``fails``: the payment does not go
through). A newer selection replaces a change still waiting, as Kinde's does. An organization's
plan changes the same way (its plan lives under ``org_plan_key``); the member who selected it is the
event's user, and the organization's code goes in the event, as Kinde's workflow gets it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.kinde.account_api import PlanStore, iso
from local.kinde.organizations import org_plan_key

# Kinde running the workflow on a plan selection: (user, current plan, requested plan) -> decision,
# with a fourth argument, the organization's code, for an organization's plan only.
PlanChangeHook = Callable[..., dict[str, Any]]


class PlanChanges:
    """Plan selections on ``store``; ``hook`` is the workflow (None: every change is allowed)."""

    def __init__(self, store: PlanStore, hook: PlanChangeHook | None = None) -> None:
        self.store = store
        self.hook = hook

    def request(
        self,
        user_id: str,
        plan: str,
        apply_after: float = 0,
        fails: bool = False,
        *,
        org: str | None = None,
    ) -> dict[str, Any]:
        """The one entry point for a plan selection (``make plan``, ``/dev/plan``, the portal):
        ``user_id``'s plan, or with ``org`` that organization's (``user_id`` is the member selecting).

        Runs the workflow; a failing workflow stops the change, a denial keeps the plan. An allowed
        change applies at once, after ``apply_after`` seconds (the answer says when: ``applyAt``),
        or, with ``fails``, never (``"fails": true``). ``ValueError`` for an unknown plan.
        """
        self.store.check_plan(plan)
        key = org_plan_key(org) if org is not None else user_id
        current = self.store.plan_of(key)
        answer: dict[str, Any] = {"user": user_id, "from": current, "requested": plan}
        if org is not None:
            answer["org"] = org
        try:
            whose = (org,) if org is not None else ()
            decision = self.hook(user_id, current, plan, *whose) if self.hook else {}
        except Exception as exc:
            return {**answer, "plan": current, "allowed": False, "error": f"The plan check failed: {exc}"}
        decision = {"allowed": True, "message": None, "reasons": [], "usage": None, **decision}
        if decision["allowed"] and fails:
            self.store.drop_pending(key)
            answer.update(fails=True)
        elif decision["allowed"] and apply_after > 0:
            at = self.store.now() + apply_after
            self.store.set_plan_later(key, plan, at)
            answer.update(applyAfter=apply_after, applyAt=iso(at))
        elif decision["allowed"]:
            self.store.set_plan(key, plan)
        return {**answer, "plan": self.store.plan_of(key), **decision}
