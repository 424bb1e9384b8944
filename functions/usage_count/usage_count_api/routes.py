"""UsageCountFunction's two routes, each one call on the usage counter (``planguard.usage_counter``).

The count's cold path (the usage API key first read from SSM) reads the count alongside the key and
answers it only once the key matched: the threads of that overlap live here, not in the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planguard.settings import get_settings
from planguard.usage_counter import get_usage_counter

from usage_count_api.access import authorize, authorize_key, has_credentials
from usage_count_api.hold_request import parse_hold_request
from usage_count_api.usage_key import lookup_pending, prepare_lookup, usage_api_keys

Route = Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]
"""``route(kindeId, event, log fields) -> answer``; the fields go to the request's log line."""


def count(kinde_id: str, event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """One GetItem; 0 for a user who never added an account.

    When the key must first be read from SSM (a cold container), the count is read alongside it,
    and answered only once the key matched: a refused caller gets the 401, never the count.
    """
    headers = event.get("headers") or {}
    mode = get_settings().usage_auth
    if mode == "none" or not lookup_pending() or not has_credentials(headers):
        fields["auth"] = authorize(kinde_id, headers, mode=mode, expected_keys=usage_api_keys)
        fields["count"] = get_usage_counter().usage_count(kinde_id)
        return {"kindeId": kinde_id, "count": fields["count"]}
    from planguard.parallel_reads import join, start  # noqa: PLC0415 - threads only on a cold lookup

    prepare_lookup()
    read = start(get_usage_counter().usage_count, kinde_id)
    try:
        fields["auth"] = authorize(kinde_id, headers, mode=mode, expected_keys=usage_api_keys)
    finally:
        join([read])  # a refusal is raised after the read ended, its answer dropped
    fields["count"] = read.result()
    return {"kindeId": kinde_id, "count": fields["count"]}


def hold(kinde_id: str, event: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """ONE conditional write: bind the user's adds to ``limit`` while Kinde applies a downgrade,
    only if they are within it now. Answered 200 either way (Kinde's fetch sees bodies only)."""
    fields["auth"] = authorize_key(event.get("headers") or {}, usage_api_keys)
    request = parse_hold_request(event)
    result = get_usage_counter().place_hold(
        kinde_id, request.limit, request.plan, get_settings().hold_seconds
    )
    fields.update(count=result.count, held=result.held, limit=request.limit, plan=request.plan)
    return result.to_json()


ROUTES: dict[str, Route] = {
    "GET /api/users/accounts/count/{kindeId}": count,
    "POST /api/users/accounts/count/{kindeId}/hold": hold,
}
