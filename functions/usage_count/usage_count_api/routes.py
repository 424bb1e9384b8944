"""UsageCountFunction's routes, each one call on the usage counter (``planguard.usage_counter``).

Two for users (``{kindeId}``) and two for organizations (``{orgCode}``), the same contract; only
the deployment's kind of customer (``BILLING_CUSTOMER``) is served, the other's answer 404. An
organization's count is for the usage API key only: a member's token never reads it.

The count's cold path (the usage API key first read from SSM) reads the count alongside the key and
answers it only once the key matched: the threads of that overlap live here, not in the handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planguard.settings import BillingCustomer, get_settings
from planguard.usage_counter import ID_FIELD, get_usage_counter

from usage_count_api.access import Method, UsageAuth, authorize, authorize_key, has_credentials
from usage_count_api.hold_request import parse_hold_request
from usage_count_api.usage_key import lookup_pending, prepare_lookup, usage_api_keys

Route = Callable[[str, BillingCustomer, dict[str, Any], dict[str, Any]], dict[str, Any]]
"""``route(id, kind, event, log fields) -> answer``; the fields go to the request's log line."""


def _authorize(customer_id: str, kind: BillingCustomer, headers: dict[str, str], mode: UsageAuth) -> Method:
    if kind == "organization" and mode != "none":
        return authorize_key(headers, usage_api_keys)  # never a member's own token
    return authorize(customer_id, headers, mode=mode, expected_keys=usage_api_keys)


def count(
    customer_id: str, kind: BillingCustomer, event: dict[str, Any], fields: dict[str, Any]
) -> dict[str, Any]:
    """One GetItem; 0 for a customer who never added an account.

    When the key must first be read from SSM (a cold container), the count is read alongside it,
    and answered only once the key matched: a refused caller gets the 401, never the count.
    """
    headers = event.get("headers") or {}
    mode = get_settings().usage_auth
    counter = get_usage_counter(kind)
    if mode == "none" or not lookup_pending() or not has_credentials(headers):
        fields["auth"] = _authorize(customer_id, kind, headers, mode)
        fields["count"] = counter.usage_count(customer_id)
        return {ID_FIELD[kind]: customer_id, "count": fields["count"]}
    from planguard.parallel_reads import join, start  # noqa: PLC0415 - threads only on a cold lookup

    prepare_lookup()
    read = start(counter.usage_count, customer_id)
    try:
        fields["auth"] = _authorize(customer_id, kind, headers, mode)
    finally:
        join([read])  # a refusal is raised after the read ended, its answer dropped
    fields["count"] = read.result()
    return {ID_FIELD[kind]: customer_id, "count": fields["count"]}


def hold(
    customer_id: str, kind: BillingCustomer, event: dict[str, Any], fields: dict[str, Any]
) -> dict[str, Any]:
    """ONE conditional write: bind the customer's adds to ``limit`` while Kinde applies a
    downgrade, only if they are within it now. Answered 200 either way (Kinde's fetch sees bodies
    only)."""
    fields["auth"] = authorize_key(event.get("headers") or {}, usage_api_keys)
    request = parse_hold_request(event)
    result = get_usage_counter(kind).place_hold(
        customer_id, request.limit, request.plan, get_settings().hold_seconds
    )
    fields.update(count=result.count, held=result.held, limit=request.limit, plan=request.plan)
    return result.to_json(kind)


ROUTES: dict[str, tuple[Route, BillingCustomer]] = {
    "GET /api/users/accounts/count/{kindeId}": (count, "user"),
    "POST /api/users/accounts/count/{kindeId}/hold": (hold, "user"),
    "GET /api/organizations/accounts/count/{orgCode}": (count, "organization"),
    "POST /api/organizations/accounts/count/{orgCode}/hold": (hold, "organization"),
}
