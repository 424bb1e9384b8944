"""OpenAPI description of the usage-count routes, which have no resolver to describe them.

Pure data, read only by ``tools/openapi.py`` (``make openapi``); the handler never imports it, so
it costs the function's cold start nothing. Keep it in step with ``handler.ROUTES``; the OpenAPI
test checks that every route of the template is described.
"""

from __future__ import annotations

from typing import Any

KINDE_ID = {
    "name": "kindeId",
    "in": "path",
    "required": True,
    "description": "The Kinde user id (kp_..., older tenants kp:...).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_:.\\-]{1,128}$"},
}

ORG_CODE = {
    "name": "orgCode",
    "in": "path",
    "required": True,
    "description": "The Kinde organization code (org_...).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_:.\\-]{1,128}$"},
}

# operation: route key -> (OpenAPI operation without responses, {status: success schema or error codes})
OPERATIONS: dict[str, dict[str, Any]] = {
    "GET /api/users/accounts/count/{kindeId}": {
        "operationId": "usage_count",
        "summary": "The user's tracked-account count, for the Kinde plan-change workflow",
        "description": "Always 200 for a well-formed request (0 for an unknown user). Auth: the "
        "usage API key (x-api-key or Bearer), or the user's own Kinde token.",
        "parameters": [KINDE_ID],
        "security": [{"usageApiKey": []}, {"usageBearer": []}, {"bearerAuth": []}],
        "x-success": {"200": "UsageCount"},
        "x-errors": [400, 401, 503],
    },
    "POST /api/users/accounts/count/{kindeId}/hold": {
        "operationId": "place_downgrade_hold",
        "summary": "Place the downgrade hold, as the Kinde workflow does",
        "description": "A conditional write: held when the count is within `limit`. A hold only lowers: "
        "with an active, lower hold that one stays (extended to last as long as this request's) and the "
        "answer carries its `limit`. `held` is true only when the stored state has an active hold at or "
        "below `limit`. The fields may also come as a form or JSON body when the query string has no "
        "`limit`. Usage API key only.",
        "parameters": [
            KINDE_ID,
            {
                "name": "limit",
                "in": "query",
                "required": True,
                "description": "The requested limit, 0-1,000,000; empty = unlimited: nothing is "
                "written and the answer is the active hold (`limit: null` when there is none).",
                "schema": {"type": "string", "pattern": "^([0-9]{1,6}|1000000)?$"},
            },
            {
                "name": "plan",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,128}$"},
            },
        ],
        "security": [{"usageApiKey": []}, {"usageBearer": []}],
        "x-success": {"200": "HoldResult"},
        "x-errors": [400, 401, 404, 413, 503],
    },
}
# In user mode the organizations' routes answer 404, and in organization mode the users' do.
OPERATIONS["GET /api/users/accounts/count/{kindeId}"]["x-errors"] = [400, 401, 404, 503]
OPERATIONS["GET /api/organizations/accounts/count/{orgCode}"] = {
    **OPERATIONS["GET /api/users/accounts/count/{kindeId}"],
    "operationId": "organization_usage_count",
    "summary": "The organization's tracked-account count, for the Kinde plan-change workflow "
    "(BillingCustomer=organization)",
    "description": "Always 200 for a well-formed request (0 for an unknown organization). Auth: the "
    "usage API key only (a member's token never reads an organization's count).",
    "parameters": [ORG_CODE],
    "security": [{"usageApiKey": []}, {"usageBearer": []}],
    "x-success": {"200": "OrganizationUsageCount"},
}
OPERATIONS["POST /api/organizations/accounts/count/{orgCode}/hold"] = {
    **OPERATIONS["POST /api/users/accounts/count/{kindeId}/hold"],
    "operationId": "place_organization_downgrade_hold",
    "summary": "Place the organization's downgrade hold, as the Kinde workflow does "
    "(BillingCustomer=organization)",
    "parameters": [ORG_CODE, *OPERATIONS["POST /api/users/accounts/count/{kindeId}/hold"]["parameters"][1:]],
    "x-success": {"200": "OrganizationHoldResult"},
}
