"""PlanCheckFunction handler: the downgrade rule of DESIGN.md §5 behind two doors.

(a) A direct invoke with Kinde's ``user:plan_selection`` event (the local Kinde stand-in and
``sam local invoke`` run it) returns the rule's result and raises whenever the change cannot be
judged, so the Kinde side fails closed. (b) ``GET /plan-check?plan=CODE`` answers the signed-in
user with the same rule over their current plan from the Account API, plus a hint for the UI.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import authenticate, build_resolver, remaining_seconds
from planguard.entitlements import get_account_api
from planguard.errors import ApiError, BadRequest, ServiceUnavailable, ValidationFailed
from planguard.plan_rule import PlanDecision, UsageUnavailable, check_plan_change
from planguard.repository import get_repository
from planguard.settings import FEATURE_KEY, get_settings

logger = Logger()
app = build_resolver()

FEATURE_NOUN = ("tracked account", "tracked accounts")


_remaining_seconds = remaining_seconds(app)


def _read_usage(user_id: str) -> int:
    """Resolved per call, so an upgrade never even builds the DynamoDB client."""
    return get_repository().usage_count(user_id)


def decide(user_id: str | None, current_plan: str | None, requested_plan: str | None) -> PlanDecision:
    """The rule over this deployment's ``PLAN_LIMITS`` and the stored usage counter."""
    return check_plan_change(
        user_id=user_id,
        current_plan=current_plan,
        requested_plan=requested_plan,
        plan_limits=get_settings().plan_limits,
        read_usage=_read_usage,
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
    try:
        decision = decide(principal.user_id, current, requested)
    except UsageUnavailable as error:
        # The storage error itself (503) rather than a 500: the frontend can simply retry.
        raise error.__cause__ if isinstance(error.__cause__, ApiError) else ServiceUnavailable() from None
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
    """``{"allowed","message","reasons","usage"}``; raises ``PlanCheckError``/``UsageUnavailable``."""
    user_id = _field(event, "context", "user", "id")
    current = _field(event, "context", "billing", "currentPlanCode")
    requested = _field(event, "context", "billing", "requestedPlanCode")
    try:
        decision = decide(user_id, current, requested)
    except Exception as error:
        logger.warning("plan selection cannot be judged: failing closed", extra={"error": str(error)})
        raise
    result = decision.to_json()
    usage = result["usage"]
    logger.info(
        "plan selection",
        extra={
            "user_id": user_id,
            "current_plan": current,
            "requested_plan": requested,
            "allowed": decision.allowed,
            "usage": usage[FEATURE_KEY] if usage else None,
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
