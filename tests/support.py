"""Helpers shared by the tests: events from events/, handler calls, seeding. Fixtures live in conftest."""

from __future__ import annotations

import importlib
import json
import logging
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from local.kinde import KindeStandIn
from local.lambda_runtime import LocalContext, stamp_token
from tests import ROOT

EVENTS = ROOT / "events"
USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"
OTHER_USER = "kp_99999999999999999999999999999999"
HANDLER_MODULES = (
    "accounts_api.handler",
    "usage_count_api.handler",
    "plan_check_api.handler",
    "kinde_webhooks_api.handler",
)


def organization_mode(env: Any, **settings: str) -> None:
    """The functions' environment when Kinde bills organizations: the stand-in's M2M client, and
    ``settings`` (e.g. ``ACCOUNTS_WRITE_PERMISSION``); caches cleared."""
    from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET

    env.setenv("BILLING_CUSTOMER", "organization")
    env.setenv("KINDE_M2M_CLIENT_ID", DEV_M2M_CLIENT_ID)
    env.setenv("KINDE_M2M_CLIENT_SECRET", DEV_M2M_CLIENT_SECRET)
    for name, value in settings.items():
        env.setenv(name, value)
    clear_caches()


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def clear_caches() -> None:
    """Settings and clients are per container; tests start each one fresh. Each target is named
    (no lookup that skips what is gone): a cache that moves must fail here, not go stale."""
    from kinde_webhooks_api import deliveries
    from planguard import (
        accounts_store,
        auth,
        entitlements,
        kinde_management,
        organizations,
        settings,
        usage_counter,
    )

    settings.get_settings.cache_clear()
    auth.get_verifier.cache_clear()
    entitlements.get_account_api.cache_clear()
    kinde_management.get_management_api.cache_clear()
    organizations.get_organization_entitlements.cache_clear()
    accounts_store.get_repository.cache_clear()
    usage_counter.get_usage_counter.cache_clear()
    deliveries.get_deliveries.cache_clear()
    accounts_service = sys.modules.get("accounts_api.service")  # its service holds the clients above
    if accounts_service is not None:
        accounts_service.service.cache_clear()
    usage_report_handler = sys.modules.get("usage_report_fn.handler")  # its reporter holds the M2M client
    if usage_report_handler is not None:
        usage_report_handler.reporter.cache_clear()
        usage_report_handler.resender.cache_clear()


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def invoke_http(handler: Any, event: dict[str, Any], function: str = "AccountsFunction") -> HttpResult:
    response = handler(event, LocalContext(function))
    raw = response.get("body") or ""
    body = json.loads(raw) if raw else None
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return HttpResult(response["statusCode"], headers, body)


class AccountsClient:
    """Calls AccountsFunction's handler with events derived from the samples in events/."""

    SAMPLES: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/accounts"): "accounts_list.json",
        ("POST", "/accounts"): "accounts_create.json",
        ("GET", "/accounts/{id}"): "accounts_get.json",
        ("PATCH", "/accounts/{id}"): "accounts_update.json",
        ("DELETE", "/accounts/{id}"): "accounts_delete.json",
        ("GET", "/usage"): "usage_get.json",
    }

    def __init__(self, kinde: KindeStandIn, user: str = USER) -> None:
        from accounts_api.handler import lambda_handler

        self.handler = lambda_handler
        self.kinde = kinde
        self.token = kinde.mint(user)

    def request(
        self,
        method: str,
        route: str,
        *,
        account_id: str | None = None,
        body: Any = None,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = "default",
    ) -> HttpResult:
        event = load_event(self.SAMPLES[(method, route)])
        event = stamp_token(event, self.token if token == "default" else (token or ""))
        if token is None:
            event["headers"].pop("authorization", None)
        event.pop("queryStringParameters", None)
        event["rawQueryString"] = ""
        if query is not None:
            event["queryStringParameters"] = query
        if account_id is not None:
            event["pathParameters"] = {"id": account_id}
            event["rawPath"] = event["requestContext"]["http"]["path"] = f"/accounts/{account_id}"
        if raw_body is not None:
            event["body"] = raw_body
        elif body is not None:
            event["body"] = json.dumps(body)
        elif method == "POST" or method == "PATCH":
            event.pop("body", None)
        event["headers"].pop("idempotency-key", None)
        event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
        return invoke_http(self.handler, event)

    def add(self, name: str, number: str, **kwargs: Any) -> HttpResult:
        return self.request("POST", "/accounts", body={"name": name, "accountNumber": number}, **kwargs)

    def list(self, **kwargs: Any) -> HttpResult:
        return self.request("GET", "/accounts", **kwargs)


def seed(user: str, count: int) -> None:
    """``count`` accounts for ``user`` through the repository, no limit."""
    from planguard.accounts_store import get_repository

    repository = get_repository()
    for n in range(count):
        repository.create(user, f"Account {n}", f"{user}-{n:04d}", limit=None)


def hold_event(
    user: str, query: dict[str, str] | None, *, key: str | None = "test-usage-key"
) -> dict[str, Any]:
    """The sample hold request for ``user`` with these query parameters and this usage key."""
    event = load_event("usage_hold.json")
    event["pathParameters"] = {"kindeId": user}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/api/users/accounts/count/{user}/hold"
    event.pop("queryStringParameters", None)
    if query is not None:
        event["queryStringParameters"] = query
    event["headers"].pop("x-api-key", None)
    if key is not None:
        event["headers"]["x-api-key"] = key
    return event


def place_hold(user: str, limit: int | None, plan: str = "free", **kwargs: Any) -> HttpResult:
    """Call UsageCountFunction's hold route as the workflow does (``limit=None``: unlimited)."""
    from usage_count_api.handler import lambda_handler

    query = {"limit": "" if limit is None else str(limit), "plan": plan}
    return invoke_http(lambda_handler, hold_event(user, query, **kwargs), "UsageCountFunction")


def sign_webhook(kinde: KindeStandIn, event_type: str, data: dict[str, Any], **overrides: Any) -> str:
    """A Kinde webhook body signed by the stand-in; ``key=`` signs with another key (a forgery)."""
    import jwt

    key = overrides.pop("key", None)
    body = kinde.sign_webhook(event_type, data, event_id=overrides.pop("event_id", None))
    if key is None:
        return body
    claims = jwt.decode(body, options={"verify_signature": False})
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def deliver_webhook(body: str, webhook_id: str | None = None) -> HttpResult:
    """POST /webhooks/kinde as Kinde delivers it (a ``webhook-id`` per delivery and its retries)."""
    from kinde_webhooks_api.handler import lambda_handler

    event = load_event("kinde_webhook_user_deleted.json")
    event["body"] = body
    event["headers"].pop("webhook-id", None)
    if webhook_id is not None:
        event["headers"]["webhook-id"] = webhook_id
    return invoke_http(lambda_handler, event, "KindeWebhookFunction")


@contextmanager
def webhook_refusals() -> Iterator[list[str]]:
    """The checks the webhook verifier logs as ``webhook refused`` meanwhile (its logger does not
    propagate to pytest's caplog: the functions' log config is copied onto the layer's loggers)."""
    checks: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "webhook refused":
                checks.append(str(getattr(record, "check", "?")))

    source, handler = logging.getLogger("planguard.webhook_token"), Collect(logging.INFO)
    level = source.level
    source.addHandler(handler)
    source.setLevel(logging.INFO)
    try:
        yield checks
    finally:
        source.removeHandler(handler)
        source.setLevel(level)


@contextmanager
def api_over_http() -> Iterator[str]:
    """The local gateway (routes from template.yaml) on 127.0.0.1, invoking the handlers in this
    process, so they see the test's moto and environment. Yields the API's base URL."""
    from local.functions import InvokeResult
    from local.gateway import Gateway
    from local.template import load_template

    template = load_template()
    handlers = {name: spec.handler for name, spec in template.functions().items()}

    def invoke(function: str, event: dict[str, Any]) -> InvokeResult:
        module_name, _, attribute = handlers[function].rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
        return InvokeResult(ok=True, payload=handler(event, LocalContext(function)))

    gateway = Gateway(template, invoke, port=0, log=lambda _line: None).start()
    try:
        yield gateway.url
    finally:
        gateway.stop()


def transaction_cancelled(request_body: bytes | str) -> tuple[int, dict[str, Any]]:
    """DynamoDB's answer to a transaction cancelled by contention: one of its items, at random,
    ``TransactionConflict`` (what fault injectors send instead of forwarding the request)."""
    items = len(json.loads(request_body)["TransactItems"])
    reasons = [{"Code": "None"}] * items
    reasons[random.randrange(items)] = {"Code": "TransactionConflict", "Message": "conflict"}
    return 400, {
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons",
        "CancellationReasons": reasons,
    }


@dataclass
class Clock:
    """A real clock, moved forward by ``ahead`` seconds."""

    real: Callable[[], float]
    ahead: float = 0.0

    def __call__(self) -> float:
        return self.real() + self.ahead
