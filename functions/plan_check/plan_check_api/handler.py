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

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import authenticate, build_resolver, remaining_seconds
from planguard.entitlements import get_account_api
from planguard.errors import BadRequest, ValidationFailed
from planguard.plan_rule import HoldResult, PlanDecision, check_plan_change
from planguard.repository import get_repository
from planguard.settings import FEATURE_KEY, get_settings

logger = Logger()
app = build_resolver()

FEATURE_NOUN = ("tracked account", "tracked accounts")


_remaining_seconds = remaining_seconds(app)


def _read_usage(user_id: str) -> int:
    """Resolved per call, so an upgrade never even builds the DynamoDB client."""
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


def hint(decision: PlanDecision, requested_plan: str) -> str | None:
    """What the frontend can tell the user, e.g. "Remove 2 tracked accounts to move to free."."""
    excess = decision.excess or 0
    if decision.allowed or excess <= 0:
        return None
    noun = FEATURE_NOUN[0] if excess == 1 else FEATURE_NOUN[1]
    return f"Remove {excess} {noun} to move to {requested_plan}."


# -- (b) GET /plan-check ----------------------------------------------------------------------
@app.get("/plan-check")
def plan_check() -> Response[Any]:
    principal = authenticate(app.current_event)
    requested = (app.current_event.query_string_parameters or {}).get("plan") or ""
    if not requested.strip():
        raise BadRequest("Query parameter 'plan' is required, e.g. /plan-check?plan=free.")
    known = get_settings().plan_limits
    if requested not in known:
        raise ValidationFailed([{"field": "plan", "message": f"must be one of: {', '.join(known)}"}])
    current = get_account_api().current_plan(principal.token, _remaining_seconds)
    # A storage fault reaches the resolver as the repository raised it (503 SERVICE_UNAVAILABLE).
    decision = decide(principal.user_id, current, requested)
    logger.info(
        "plan check",
        extra={"current_plan": current, "requested_plan": requested, "allowed": decision.allowed},
    )
    return Response(
        status_code=200,
        content_type="application/json",
        body={**decision.to_json(), "hint": hint(decision, requested)},
        headers={"Cache-Control": "no-store"},
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
        logger.warning("plan selection cannot be judged: failing closed", extra={"error": str(error)})
        raise
    hold = decision.hold.to_json() if decision.hold else None
    result = {**decision.to_json(), "hold": hold}
    usage = result["usage"]
    logger.info(
        "plan selection",
        extra={
            "user_id": user_id,
            "current_plan": current,
            "requested_plan": requested,
            "allowed": decision.allowed,
            "usage": usage[FEATURE_KEY] if usage else None,
            "hold": hold,
        },
    )
    return result


def _is_http(event: Any) -> bool:
    return isinstance(event, dict) and (
        event.get("version") == "2.0" or "http" in (event.get("requestContext") or {})
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if _is_http(event):
        return app.resolve(event, context)
    return check_plan_selection(event)
