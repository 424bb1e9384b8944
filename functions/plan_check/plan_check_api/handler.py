"""PlanCheckFunction handler: the downgrade rule behind two doors.

(a) A direct invoke with Kinde's ``user:plan_selection`` event (the local Kinde stand-in and
``sam local invoke`` run it) plays the workflow's part: it decides by placing the downgrade hold
(``AccountRepository.place_hold``, one conditional write that binds later adds to the requested
limit), so no add can slip in between the check and Kinde applying the change. For a downgrade
the hold is the read and any failure raises, so the Kinde side fails closed; for any other move it
lifts an earlier hold, best-effort. It returns the rule's result plus ``"hold"`` (what the hold
answered, or null). (b) ``GET /plan-check?plan=CODE`` answers the signed-in user with the same
rule over their current plan from the Account API, plus a hint for the UI. It only reads the count
and never writes.
"""

from __future__ import annotations

from typing import Any

from planguard.accounts_store import get_repository
from planguard.json_logs import json_logger
from planguard.plan_rule import HoldResult, PlanDecision, check_plan_change
from planguard.settings import FEATURE_KEY, get_settings

# The direct invoke is Kinde's plan-change path: no Powertools, no HTTP stack on it. The HTTP
# door (``plan_check_api.http``) is imported by the first HTTP request only.
logger = json_logger("planguard.plan_check")


def _read_usage(user_id: str) -> int:
    """Resolved per call: the repository is built on first use."""
    return get_repository().usage_count(user_id)


def _place_hold(user_id: str, limit: int | None, plan: str) -> HoldResult:
    """Resolved per call, like ``_read_usage``; the hold lasts ``Settings.hold_seconds``."""
    return get_repository().place_hold(user_id, limit, plan, get_settings().hold_seconds)


def decide(user_id: str | None, current_plan: str | None, requested_plan: str | None) -> PlanDecision:
    """Read only: the rule over this deployment's ``PLAN_LIMITS`` and the stored usage counter."""
    return check_plan_change(
        user_id=user_id,
        current_plan=current_plan,
        requested_plan=requested_plan,
        plan_limits=get_settings().plan_limits,
        read_usage=_read_usage,
    )


def decide_and_hold(
    user_id: str | None, current_plan: str | None, requested_plan: str | None
) -> PlanDecision:
    """The rule deciding by placing the downgrade hold, as the Kinde workflow does."""
    return check_plan_change(
        user_id=user_id,
        current_plan=current_plan,
        requested_plan=requested_plan,
        plan_limits=get_settings().plan_limits,
        place_hold=_place_hold,
    )


# -- (a) Kinde's user:plan_selection event ------------------------------------------------------
def _field(parent: Any, *path: str) -> str | None:
    """``parent[path0][path1]…`` when every step is an object and the leaf a string, else None."""
    for key in path:
        parent = parent.get(key) if isinstance(parent, dict) else None
    return parent if isinstance(parent, str) else None


def check_plan_selection(event: Any) -> dict[str, Any]:
    """``{"allowed","message","reasons","usage","hold"}``.

    Raises ``PlanCheckError`` when the change cannot be judged, and whatever placing a
    downgrade's hold raised (e.g. ``ServiceUnavailable``) unchanged.
    """
    user_id = _field(event, "context", "user", "id")
    current = _field(event, "context", "billing", "currentPlanCode")
    requested = _field(event, "context", "billing", "requestedPlanCode")
    try:
        decision = decide_and_hold(user_id, current, requested)
    except Exception as error:
        logger.warning(
            "plan selection cannot be judged: failing closed", extra={"fields": {"error": str(error)}}
        )
        raise
    hold = decision.hold.to_json() if decision.hold else None
    result = {**decision.to_json(), "hold": hold}
    usage = result["usage"]
    logger.info(
        "plan selection",
        extra={
            "fields": {
                "user_id": user_id,
                "current_plan": current,
                "requested_plan": requested,
                "allowed": decision.allowed,
                "usage": usage[FEATURE_KEY] if usage else None,
                "hold": hold,
            }
        },
    )
    return result


def _is_http(event: Any) -> bool:
    return isinstance(event, dict) and (
        event.get("version") == "2.0" or "http" in (event.get("requestContext") or {})
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if _is_http(event):
        from plan_check_api.http import handle  # noqa: PLC0415 - the HTTP stack, only for HTTP

        return handle(event, context)
    return check_plan_selection(event)
