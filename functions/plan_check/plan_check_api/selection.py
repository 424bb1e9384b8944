"""Kinde's ``user:plan_selection`` event in, the downgrade rule's decision out (the workflow's part).

In production Kinde runs the workflow in ``kinde/`` (it calls the usage-count routes); this runs the
same rule for ``sam local invoke`` and the local Kinde stand-in's plan changes.

It decides by placing the downgrade hold (``AccountRepository.place_hold``, a conditional write
that binds later adds to the requested limit and only ever lowers an active hold), so no add can
slip in between the check and Kinde applying the change, nor after a selection Kinde applies late
or never. For a downgrade the hold is the read and any failure raises, so the Kinde side fails
closed; a lateral move or an unknown current plan is held best-effort; a clear upgrade calls nothing.
Whose hold: the user's, or with ``BILLING_CUSTOMER=organization`` the organization's
(``context.organization.code``; missing fails closed), as the workflow does.
"""

from __future__ import annotations

from typing import Any

from planguard.json_logs import json_logger
from planguard.plan_rule import check_plan_change
from planguard.settings import FEATURE_KEY, get_settings
from planguard.usage_counter import HoldResult, get_usage_counter

# Kinde's plan-change path: no Powertools, no HTTP stack on it.
logger = json_logger("planguard.plan_check")


def _place_hold(customer_id: str, limit: int | None, plan: str) -> HoldResult:
    """The deployment's kind of customer's counter (built on first use); lasts
    ``Settings.hold_seconds``."""
    return get_usage_counter().place_hold(customer_id, limit, plan, get_settings().hold_seconds)


def _field(parent: Any, *path: str) -> str | None:
    """``parent[path0][path1]…`` when every step is an object and the leaf a string, else None."""
    for key in path:
        parent = parent.get(key) if isinstance(parent, dict) else None
    return parent if isinstance(parent, str) else None


def check_plan_selection(event: Any) -> dict[str, Any]:
    """``{"allowed","message","reasons","usage","hold"}`` (``hold``: what the hold answered, or null).

    Raises ``PlanCheckError`` when the change cannot be judged, and whatever placing a
    downgrade's hold raised (e.g. ``ServiceUnavailable``) unchanged.
    """
    user_id = _field(event, "context", "user", "id")
    org_code = _field(event, "context", "organization", "code")
    current = _field(event, "context", "billing", "currentPlanCode")
    requested = _field(event, "context", "billing", "requestedPlanCode")
    settings = get_settings()
    try:
        decision = check_plan_change(
            user_id=user_id,
            org_code=org_code,
            billing_customer=settings.billing_customer,
            current_plan=current,
            requested_plan=requested,
            plan_limits=settings.plan_limits,
            place_hold=_place_hold,
        )
    except Exception as error:
        logger.warning(
            "plan selection cannot be judged: failing closed", extra={"fields": {"error": str(error)}}
        )
        raise
    hold = decision.hold.to_json(settings.billing_customer) if decision.hold else None
    result = {**decision.to_json(), "hold": hold}
    usage = result["usage"]
    logger.info(
        "plan selection",
        extra={
            "fields": {
                "user_id": user_id,
                "org_code": org_code if settings.organizations else None,
                "current_plan": current,
                "requested_plan": requested,
                "allowed": decision.allowed,
                "usage": usage[FEATURE_KEY] if usage else None,
                "hold": hold,
            }
        },
    )
    return result
