"""PlanCheckFunction handler: the downgrade rule behind two doors.

In production the rule runs in Kinde's workflow (``kinde/``), not here. (a) A direct invoke with
Kinde's ``user:plan_selection`` event (the local Kinde stand-in and ``sam local invoke`` run it)
plays the workflow's part and places the downgrade hold
(``plan_check_api.selection``). (b) ``GET /plan-check?plan=CODE`` answers the signed-in user with
the same rule over their current plan from the Account API, plus a hint for the UI; it only reads
the count and never writes (``plan_check_api.http``).
"""

from __future__ import annotations

from typing import Any

from plan_check_api.selection import check_plan_selection


def _is_http(event: Any) -> bool:
    return isinstance(event, dict) and (
        event.get("version") == "2.0" or "http" in (event.get("requestContext") or {})
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if _is_http(event):
        # The HTTP stack (Powertools' resolver) is imported by the first HTTP request only, so
        # Kinde's direct invoke never pays for it.
        from plan_check_api.http import handle  # noqa: PLC0415

        return handle(event, context)
    return check_plan_selection(event)
