"""The template is the one route list: every route it declares reaches its function's code.

A route in ``template.yaml`` whose handler has no matching route answers the resolver's 404,
which passes any "no 5xx" check; these tests fail instead. Each route is called without
credentials, so every one of them must stop at its own code (401, or 400 for a webhook
without a body), never at a not-found answer.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest

from local.template import load_template
from tests.support import USER, invoke_http, load_event, organization_mode

TEMPLATE = load_template()
ROUTES = sorted((route.method, route.path, route.function) for route in TEMPLATE.routes())
SAMPLE_VALUES = {"id": "01HZY5M3T6V9W2X4Y7Z8A1B2C3", "kindeId": USER, "orgCode": "org_acme"}
ORGANIZATION_ROUTES = "/api/organizations/"  # served in organization mode only (BILLING_CUSTOMER)


def handler_of(function: str) -> Any:
    module_name, _, attribute = TEMPLATE.functions()[function].handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def event_for(method: str, path: str) -> dict[str, Any]:
    """The sample event reshaped to this route, with no credentials and no body."""
    names = re.findall(r"\{(\w+)\}", path)
    concrete = re.sub(r"\{(\w+)\}", lambda match: SAMPLE_VALUES[match.group(1)], path)
    event = load_event("accounts_list.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = concrete
    event["requestContext"]["http"]["method"] = method
    event["headers"].pop("authorization", None)
    event.pop("body", None)
    if names:
        event["pathParameters"] = {name: SAMPLE_VALUES[name] for name in names}
    return event


def test_the_template_declares_the_routes_clients_rely_on() -> None:
    assert {(method, path) for method, path, _ in ROUTES} >= {
        ("GET", "/accounts"),
        ("POST", "/accounts"),
        ("GET", "/accounts/{id}"),
        ("PATCH", "/accounts/{id}"),
        ("DELETE", "/accounts/{id}"),
        ("GET", "/usage"),
        ("GET", "/plan-check"),
        ("GET", "/api/users/accounts/count/{kindeId}"),
        ("POST", "/api/users/accounts/count/{kindeId}/hold"),
        ("GET", "/api/organizations/accounts/count/{orgCode}"),
        ("POST", "/api/organizations/accounts/count/{orgCode}/hold"),
        ("POST", "/webhooks/kinde"),
    }


@pytest.mark.parametrize("function", sorted(TEMPLATE.functions()))
def test_every_function_has_a_handler_that_imports(function: str) -> None:
    assert callable(handler_of(function))


@pytest.mark.parametrize(("method", "path", "function"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_every_template_route_reaches_its_function(
    method: str, path: str, function: str, env: pytest.MonkeyPatch, aws: None
) -> None:
    if path.startswith(ORGANIZATION_ROUTES):
        organization_mode(env)
    result = invoke_http(handler_of(function), event_for(method, path), function)
    assert result.status != 404 and result.error_code != "NOT_FOUND", (method, path, result.body)
    # No credentials: 401 everywhere; the webhook's credential is its body, and no body is not a JWT.
    expected = (400, "BAD_REQUEST") if path == "/webhooks/kinde" else (401, "UNAUTHORIZED")
    assert (result.status, result.error_code) == expected, (method, path, result.body)


def test_a_route_missing_from_the_handler_is_caught(env: pytest.MonkeyPatch, aws: None) -> None:
    """The check above can fail: a route no handler serves answers the not-found body."""
    result = invoke_http(handler_of("AccountsFunction"), event_for("PUT", "/accounts"), "AccountsFunction")
    assert (result.status, result.error_code) == (404, "NOT_FOUND")
    result = invoke_http(
        handler_of("UsageCountFunction"),
        event_for("DELETE", "/api/users/accounts/count/{kindeId}"),
        "UsageCountFunction",
    )
    assert (result.status, result.error_code) == (404, "NOT_FOUND")


@pytest.mark.parametrize("mode", ["user", "organization"])
def test_the_other_modes_usage_routes_are_404(mode: str, env: pytest.MonkeyPatch, aws: None) -> None:
    """One deployment serves one kind of customer: the other kind's count and hold do not exist."""
    if mode == "organization":
        organization_mode(env)
    other = "/api/users/" if mode == "organization" else ORGANIZATION_ROUTES
    for method, path, function in ROUTES:
        if path.startswith(other):
            result = invoke_http(handler_of(function), event_for(method, path), function)
            assert (result.status, result.error_code) == (404, "NOT_FOUND"), (mode, method, path)
