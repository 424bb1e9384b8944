"""Shared fixtures: env from the template, moto tables from the template, a Kinde stand-in."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from moto import mock_aws
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import KindeStandIn
from local.lambda_runtime import LocalContext, stamp_token
from local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"
OTHER_USER = "kp_99999999999999999999999999999999"

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "PlanGuardTest",
        "POWERTOOLS_SERVICE_NAME": "plan-guard-test",
        "POWERTOOLS_DEV": "false",
    }
)


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def clear_caches() -> None:
    """Settings and clients are per container; tests start each one fresh."""
    from planguard import auth, entitlements, repository, settings

    settings.get_settings.cache_clear()
    auth.get_verifier.cache_clear()
    entitlements.get_account_api.cache_clear()
    repository.get_repository.cache_clear()
    for module in ("accounts_api.handler", "usage_count_api.handler", "plan_check_api.handler"):
        loaded = __import__("sys").modules.get(module)
        for name in ("service", "_idempotent_create", "usage_api_key"):
            cached = getattr(loaded, name, None)
            if cached is not None and hasattr(cached, "cache_clear"):
                cached.cache_clear()


@pytest.fixture(scope="session")
def kinde_server() -> Iterator[KindeStandIn]:
    standin = KindeStandIn(copy.deepcopy(DEFAULT_PLAN_LIMITS)).start()
    yield standin
    standin.stop()


@pytest.fixture
def kinde(kinde_server: KindeStandIn) -> Iterator[KindeStandIn]:
    """The session's stand-in, reset: default plans, no faults, only its first key."""
    first_key = kinde_server.keys[0]
    kinde_server.plans.clear()
    kinde_server.faults.clear()
    kinde_server.account_api_calls = 0
    kinde_server.plan_limits = copy.deepcopy(DEFAULT_PLAN_LIMITS)
    yield kinde_server
    kinde_server.keys[:] = [first_key]
    kinde_server.faults.clear()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, kinde: KindeStandIn) -> Iterator[pytest.MonkeyPatch]:
    """Function environment as the template sets it, pointed at the stand-in."""
    template = load_template()
    names = {name: name for name in template.table_definitions()}
    for function in template.functions():
        for key, value in template.resolve_environment(
            function, {"KindeIssuerUrl": kinde.url}, names
        ).items():
            if not key.startswith("POWERTOOLS_"):
                monkeypatch.setenv(key, value)
    monkeypatch.setenv("USAGE_API_KEY", "test-usage-key")
    monkeypatch.delenv("USAGE_API_KEY_PARAM", raising=False)
    clear_caches()
    yield monkeypatch
    clear_caches()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process, with every table of template.yaml created."""
    with mock_aws():
        client = boto3.client("dynamodb")
        for definition in load_template().table_definitions().values():
            client.create_table(**definition)
        yield


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


@pytest.fixture
def accounts(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> AccountsClient:
    kinde.set_plan(USER, "pro")
    return AccountsClient(kinde)
