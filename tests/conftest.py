"""Fixtures: env and moto tables from the template, the Kinde stand-in, an accounts client, a
``make dev``; and the one rule that marks each test with its folder's kind (tests/__init__.py).

Shared helpers live in ``tests/support.py``."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import KindeStandIn
from local.kinde.account_api import DEFAULT_PAGE_SIZE
from local.template import load_template
from tests import KINDS, kind_of
from tests.support import USER, AccountsClient, clear_caches

if TYPE_CHECKING:
    from tests.integration.local_stack import DevStack

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


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test gets the marker of its folder, here and nowhere else."""
    for item in items:
        kind = kind_of(item.path)
        if kind is None:
            raise pytest.UsageError(f"{item.nodeid}: a test file sits outside tests/{{{','.join(KINDS)}}}/")
        item.add_marker(kind)


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
    kinde_server.pending.clear()
    kinde_server.subscribed.clear()
    kinde_server.clock_offset = 0.0
    kinde_server.page_size = DEFAULT_PAGE_SIZE
    kinde_server.webhooks.clear()
    kinde_server.faults.clear()
    kinde_server.jwks_faults.clear()
    kinde_server.account_api_calls = 0
    kinde_server.management.reset()
    kinde_server.management_faults.clear()
    kinde_server.m2m_token_faults.clear()
    kinde_server.management_api_calls = kinde_server.m2m_token_calls = 0
    kinde_server.plan_limits = copy.deepcopy(DEFAULT_PLAN_LIMITS)
    kinde_server.organizations.reset()
    yield kinde_server
    kinde_server.keys[:] = [first_key]
    kinde_server.faults.clear()
    kinde_server.jwks_faults.clear()
    kinde_server.plan_change_hook = None


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


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A single-threaded moto server on 127.0.0.1 with the template's tables: each request is
    atomic, as DynamoDB's are, while separate requests interleave (the races tests need)."""
    from local.dynamodb import SingleThreadedMotoServer, create_tables

    server = SingleThreadedMotoServer()
    server.start()
    create_tables(server.endpoint_url)
    yield server.endpoint_url
    server.stop()


@pytest.fixture
def accounts(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> AccountsClient:
    kinde.set_plan(USER, "pro")
    return AccountsClient(kinde)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A ``make dev`` of its own on free ports, with fresh data."""
    from tests.integration.local_stack import start_dev

    stack = start_dev(tmp_path_factory.mktemp("dev"))
    yield stack
    assert stack.stop() == 0, stack.stderr
