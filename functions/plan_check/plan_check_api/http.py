"""PlanCheckFunction's HTTP door: ``GET /plan-check?plan=CODE`` for the frontend.

The signed-in user's current plan comes from the Account API (organization mode: the organization
the user is signed in to, its plan from the Management API, with the accounts routes' refusals);
the rule only reads the count and never writes (no hold: asking "could I?" must not bind
anything). Imported on the first HTTP request only, so Kinde's direct invoke never pays for the resolver.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from planguard.api import authenticate, build_resolver, invocation_deadline
from planguard.entitlements import get_account_api
from planguard.errors import BadRequest, ValidationFailed
from planguard.organizations import get_organization_entitlements, member
from planguard.plan_rule import PlanDecision, check_plan_change
from planguard.settings import get_settings
from planguard.usage_counter import get_usage_counter

logger = Logger()
app = build_resolver()

FEATURE_NOUN = ("tracked account", "tracked accounts")


def _read_usage(user_id: str) -> int:
    """Resolved per call: the repository is built on first use."""
    return get_usage_counter().usage_count(user_id)


def hint(decision: PlanDecision, requested_plan: str) -> str | None:
    """What the frontend can tell the user, e.g. "Remove 2 tracked accounts to move to free."."""
    excess = decision.excess or 0
    if decision.allowed or excess <= 0:
        return None
    noun = FEATURE_NOUN[0] if excess == 1 else FEATURE_NOUN[1]
    return f"Remove {excess} {noun} to move to {requested_plan}."


@app.get("/plan-check")
def plan_check() -> Response[Any]:
    principal = authenticate(app.current_event)
    requested = (app.current_event.query_string_parameters or {}).get("plan") or ""
    if not requested.strip():
        raise BadRequest("Query parameter 'plan' is required, e.g. /plan-check?plan=free.")
    known = get_settings().plan_limits
    if requested not in known:
        raise ValidationFailed([{"field": "plan", "message": f"must be one of: {', '.join(known)}"}])
    deadline = invocation_deadline(app)
    settings = get_settings()
    org_code = None
    if settings.organizations:
        org_code = member(principal.user_id, principal.token, principal.claims, deadline).org_code
        current = get_organization_entitlements().current_plan(org_code, deadline)
    else:
        current = get_account_api().current_plan(principal.token, deadline)
    # A storage fault reaches the resolver as the repository raised it (503 SERVICE_UNAVAILABLE).
    decision = check_plan_change(
        user_id=principal.user_id,
        org_code=org_code,
        billing_customer=settings.billing_customer,
        current_plan=current,
        requested_plan=requested,
        plan_limits=known,
        read_usage=_read_usage,
    )
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
