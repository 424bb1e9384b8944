"""Benchmarks that print ratios, not absolute times: these machines are shared and noisy.

    make bench                 # every figure, then docs/BENCHMARKS.md rewritten
    BENCH_QUICK=1 make bench   # CI: one run of each, only checks that it all still runs

1. Import: each function's handler module and its DynamoDB client in a fresh interpreter, against
   the floor every Lambda pays (``import boto3`` + a DynamoDB client).
2. First answer: a fresh process that imports the handler and answers its first real request,
   against a fresh process that builds a boto3 client and makes one ``GetItem``, on the same moto
   server (laziness must not just move the cost to the first request).
3. DynamoDB calls per request, counted at the client.
4. Warm overhead: the count route against the bare ``GetItem`` it makes, an add against its bare
   ``TransactWriteItems``, on the same moto server in the same run.
5. Kinde calls for 100 adds by one user within a cache window; M2M tokens minted for 100 warm
   Management API calls in one container (the secret read from SSM as deployed).
6. Round trips per route, cold and warm, with every external call delayed (``tests.bench_rtt``):
   the sequential waits are counted (CI fails a route over its budget) and timed; and the
   connections 100 warm requests open per host.
Each timed measure is the median of several runs, interleaved with its baseline so load on the
machine hits both alike. The last lines are ``name: value``, one figure each.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tests import ROOT
from tests.bench_rtt import COST_TABLE, DEPTH_BUDGETS, ORG_ROUTES, ROUTES, over_depth_budget, round_trips

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 1 if QUICK else int(os.environ.get("BENCH_RUNS", "7"))
WARM_CALLS = 5 if QUICK else 200
RTT_SECONDS = float(os.environ.get("BENCH_RTT_MS", "100")) / 1000
USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"
USAGE_KEY = "bench-usage-key"
KEY_PARAM = "/plan-guard/usage-api-key"
M2M_SECRET_PARAM = "/plan-guard/kinde-m2m-client-secret"

TARGETS = {  # name: (target ratio, what it compares)
    "import.UsageCountFunction": 0.95,
    "import.PlanCheckFunction": 1.10,
    "import.AccountsFunction": 1.25,
    "warm.count_vs_getitem": 1.15,
    "warm.add_vs_transact": 1.50,
}
CALL_TARGETS = {
    "add": 1,
    "get": 1,
    "count": 1,
    "hold": 1,
    "usage": 1,
    "list": 2,
    "rename": 2,
    "renumber": 2,
    "delete": 2,
}

# Peak RSS from VmHWM: ru_maxrss would carry the forking parent's high-water mark over exec.
PROBE = """
import json, sys, time
started = time.perf_counter()
exec(sys.argv[1])
elapsed = time.perf_counter() - started
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")).split()[1]
print(json.dumps([elapsed, int(peak)]))
"""
BASELINE_IMPORT = "import boto3; boto3.client('dynamodb')"
BASELINE_FIRST = (
    "import boto3; c = boto3.client('dynamodb'); c.get_item(TableName='AccountsTable', "
    "Key={'PK': {'S': 'USER#x'}, 'SK': {'S': 'USAGE#tracked_accounts'}})"
)
HANDLERS = {  # function: (code dir, handler module)
    "UsageCountFunction": ("functions/usage_count", "usage_count_api.handler"),
    "PlanCheckFunction": ("functions/plan_check", "plan_check_api.handler"),
    "AccountsFunction": ("functions/accounts", "accounts_api.handler"),
}
# The first real request each function answers (``EVENT`` is set by the probe's caller).
FIRST_REQUEST = (
    "import json, os\n"
    "class Context:\n"
    "    function_name, memory_limit_in_mb, aws_request_id = 'bench', 256, 'bench-1'\n"
    "    invoked_function_arn = 'arn:aws:lambda:us-east-1:000000000000:function:bench'\n"
    "    def get_remaining_time_in_millis(self): return 15000\n"
    "from {module} import lambda_handler\n"
    "r = lambda_handler(json.loads(os.environ['EVENT']), Context())\n"
    "assert {check}, r"
)


def _env(code_dir: str | None, **extra: str) -> dict[str, str]:
    paths = [str(ROOT / "layers/common")] + ([str(ROOT / code_dir)] if code_dir else [])
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "TABLE_NAME": "AccountsTable",
        "KINDE_ISSUER_URL": "https://bench.kinde.com",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        **extra,
    }


def _probe(code: str, env: dict[str, str]) -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"probe failed: {code}\n{out.stderr[-2000:]}")
    elapsed, rss_kb = json.loads(out.stdout.strip().splitlines()[-1])
    return float(elapsed), int(rss_kb)


def _ratio(code: str, env: dict[str, str], baseline: str, baseline_env: dict[str, str]) -> dict[str, float]:
    _probe(code, env)  # warm the bytecode cache, as a deployed package has it
    _probe(baseline, baseline_env)
    fn_t, fn_m, base_t, base_m = [], [], [], []
    for _ in range(RUNS):
        t, m = _probe(baseline, baseline_env)
        base_t.append(t)
        base_m.append(m)
        t, m = _probe(code, env)
        fn_t.append(t)
        fn_m.append(m)
    return {
        "ratio": statistics.median(fn_t) / statistics.median(base_t),
        "rss_ratio": statistics.median(fn_m) / statistics.median(base_m),
        "rss_mb": statistics.median(fn_m) / 1024,
        "ms": statistics.median(fn_t) * 1000,
        "baseline_ms": statistics.median(base_t) * 1000,
    }


def top_imports(code_dir: str, module: str, count: int = 5) -> list[tuple[str, float]]:
    """The largest cumulative imports below the handler (``python -X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=_env(code_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].removeprefix(" ")
            if len(name) - len(name.lstrip()) == 2:  # direct imports of the handler module
                rows.append((name.strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda row: -row[1])[:count]


# -- a moto server, a Kinde stand-in, the tables and the key --------------------------------------
@contextmanager
def local_services() -> Iterator[tuple[str, Any]]:
    sys.path[:0] = [str(ROOT)]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    import boto3

    from local.dynamodb import SingleThreadedMotoServer, create_tables
    from local.kinde import KindeStandIn

    server = SingleThreadedMotoServer()
    server.start()
    standin = KindeStandIn(
        {"free": {"tracked_accounts": 3}, "pro": {"tracked_accounts": 5}, "max": {"tracked_accounts": None}}
    ).start()
    try:
        create_tables(server.endpoint_url)
        ssm = boto3.client("ssm", endpoint_url=server.endpoint_url)
        ssm.put_parameter(Name=KEY_PARAM, Value=USAGE_KEY, Type="SecureString", Overwrite=True)
        yield server.endpoint_url, standin
    finally:
        standin.stop()
        server.stop()


def _event(name: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    event.update(changes)
    return event


def first_answer(endpoint: str, standin: Any) -> dict[str, dict[str, float]]:
    standin.set_plan(USER, "pro")
    token = standin.mint(USER, ttl_seconds=3600)
    common = {"DYNAMODB_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
    usage_event = _event("usage_count_with_key.json")
    usage_event["headers"] = {"x-api-key": USAGE_KEY}
    list_event = _event("accounts_list.json")
    list_event["headers"]["authorization"] = f"Bearer {token}"
    cases = {
        "UsageCountFunction": (
            usage_event,
            "r['statusCode'] == 200",
            {"USAGE_API_KEY_PARAM": KEY_PARAM, "AWS_ENDPOINT_URL_SSM": endpoint},
        ),
        "PlanCheckFunction": (_event("plan_selection_downgrade_denied.json"), "'allowed' in r", {}),
        "AccountsFunction": (
            list_event,
            "r['statusCode'] == 200",
            {"KINDE_ISSUER_URL": standin.url, "IDEMPOTENCY_TABLE_NAME": "IdempotencyTable"},
        ),
    }
    rows = {}
    baseline_env = _env(None, AWS_ENDPOINT_URL_DYNAMODB=endpoint)
    for function, (event, check, extra) in cases.items():
        code_dir, module = HANDLERS[function]
        env = _env(code_dir, **common, **extra, EVENT=json.dumps(event))
        rows[function] = _ratio(
            FIRST_REQUEST.format(module=module, check=check), env, BASELINE_FIRST, baseline_env
        )
    return rows


# -- in-process figures: DynamoDB calls, warm overhead, Kinde calls ------------------------------
def _in_process(endpoint: str, standin: Any) -> tuple[Callable[..., Any], Any]:
    for code_dir, _ in HANDLERS.values():
        sys.path.insert(0, str(ROOT / code_dir))
    sys.path.insert(0, str(ROOT / "layers/common"))
    os.environ.update(
        TABLE_NAME="AccountsTable",
        IDEMPOTENCY_TABLE_NAME="IdempotencyTable",
        KINDE_ISSUER_URL=standin.url,
        DYNAMODB_ENDPOINT_URL=endpoint,
        USAGE_API_KEY=USAGE_KEY,
        ENTITLEMENT_CACHE_SECONDS="60",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
    )
    import logging

    logging.disable(logging.INFO)
    from planguard.accounts_store import get_repository

    from local.lambda_runtime import LocalContext

    def call(function: str, event: dict[str, Any]) -> Any:
        module = __import__(HANDLERS[function][1], fromlist=["lambda_handler"])
        with contextlib.redirect_stdout(io.StringIO()):  # the functions' log and metric lines
            return module.lambda_handler(event, LocalContext(function))

    return call, get_repository()._db


class CallCounter:
    """Counts the DynamoDB API calls a client makes, at botocore's ``before-call`` event."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def during(self, action: Callable[[], Any]) -> dict[str, int]:
        self.calls.clear()
        action()
        return dict(self.calls)


def dynamodb_calls(call: Callable[..., Any], client: Any, standin: Any) -> dict[str, dict[str, int]]:
    counter = CallCounter(client)
    user = "kp_bench_calls"
    standin.set_plan(user, "pro")
    token = f"Bearer {standin.mint(user, ttl_seconds=3600)}"

    def http(name: str, **changes: Any) -> Any:
        event = _event(name)
        event["headers"] = {**event.get("headers", {}), "authorization": token}
        event.update(changes)
        return call("AccountsFunction", event)

    call("AccountsFunction", {**_event("usage_get.json"), "headers": {"authorization": token}})  # warm
    created: dict[str, Any] = {}

    def add() -> None:
        created.update(
            json.loads(
                http("accounts_create.json", body=json.dumps({"name": "A", "accountNumber": "1"}))["body"]
            )
        )

    with_id = {"pathParameters": {"id": ""}}
    results = {"add": counter.during(add)}
    with_id["pathParameters"]["id"] = created["id"]
    path = f"/accounts/{created['id']}"
    raw = {"rawPath": path}
    results["get"] = counter.during(lambda: http("accounts_get.json", **with_id, **raw))
    results["rename"] = counter.during(
        lambda: http("accounts_update.json", **with_id, **raw, body=json.dumps({"name": "B"}))
    )
    results["renumber"] = counter.during(
        lambda: http("accounts_update.json", **with_id, **raw, body=json.dumps({"accountNumber": "2"}))
    )
    results["list"] = counter.during(lambda: http("accounts_list.json"))
    results["usage"] = counter.during(lambda: http("usage_get.json"))
    count_event = _event("usage_count_with_key.json")
    count_event["headers"] = {"x-api-key": USAGE_KEY}
    count_event["pathParameters"] = {"kindeId": user}
    results["count"] = counter.during(lambda: call("UsageCountFunction", count_event))
    hold_event = _event("usage_hold.json")
    hold_event["headers"] = {"x-api-key": USAGE_KEY}
    hold_event["pathParameters"] = {"kindeId": user}
    hold_event["queryStringParameters"] = {"limit": "", "plan": "max"}  # releases: leaves adds free
    results["hold"] = counter.during(lambda: call("UsageCountFunction", hold_event))
    results["delete"] = counter.during(lambda: http("accounts_delete.json", **with_id, **raw))
    return results


def warm_overhead(call: Callable[..., Any], client: Any, standin: Any) -> dict[str, float]:
    import uuid

    user = "kp_bench_warm"
    standin.set_plan(user, "max")  # unlimited: the adds never stop at a limit
    token = f"Bearer {standin.mint(user, ttl_seconds=3600)}"
    count_event = _event("usage_count_with_key.json")
    count_event["headers"] = {"x-api-key": USAGE_KEY}
    count_event["pathParameters"] = {"kindeId": user}
    key = {"PK": {"S": f"USER#{user}"}, "SK": {"S": "USAGE#tracked_accounts"}}
    add_event = _event("accounts_create.json")
    add_event["headers"] = {"authorization": token, "content-type": "application/json"}
    call("UsageCountFunction", count_event)
    call("AccountsFunction", {**add_event, "body": json.dumps({"name": "warm", "accountNumber": "w"})})
    count_t, get_t, add_t, transact_t = [], [], [], []
    for n in range(WARM_CALLS):
        started = time.perf_counter()
        client.get_item(TableName="AccountsTable", Key=key, ConsistentRead=True)
        get_t.append(time.perf_counter() - started)
        started = time.perf_counter()
        call("UsageCountFunction", count_event)
        count_t.append(time.perf_counter() - started)
        # A bare transaction of the same shape: account, guard, counter (on a user of its own).
        bare_pk = {"S": f"USER#kp_bench_bare_{n % 7}"}
        started = time.perf_counter()
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "AccountsTable",
                        "Item": {"PK": bare_pk, "SK": {"S": f"ACCOUNT#{uuid.uuid4().hex}"}},
                    }
                },
                {
                    "Put": {
                        "TableName": "AccountsTable",
                        "Item": {"PK": bare_pk, "SK": {"S": f"ACCOUNTNUMBER#{uuid.uuid4().hex}"}},
                    }
                },
                {
                    "Update": {
                        "TableName": "AccountsTable",
                        "Key": {"PK": bare_pk, "SK": {"S": "USAGE#tracked_accounts"}},
                        "UpdateExpression": "ADD #c :one",
                        "ExpressionAttributeNames": {"#c": "count"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
        transact_t.append(time.perf_counter() - started)
        body = json.dumps({"name": f"warm {n}", "accountNumber": f"w-{n}"})
        started = time.perf_counter()
        call("AccountsFunction", {**add_event, "body": body})
        add_t.append(time.perf_counter() - started)
    return {
        "warm.count_vs_getitem": statistics.median(count_t) / statistics.median(get_t),
        "warm.add_vs_transact": statistics.median(add_t) / statistics.median(transact_t),
    }


def kinde_calls_for_100_adds(call: Callable[..., Any], standin: Any) -> int:
    user = "kp_bench_kinde"
    standin.set_plan(user, "max")
    token = f"Bearer {standin.mint(user, ttl_seconds=3600)}"
    event = _event("accounts_create.json")
    event["headers"] = {"authorization": token, "content-type": "application/json"}
    before = standin.account_api_calls
    for n in range(10 if QUICK else 100):
        call("AccountsFunction", {**event, "body": json.dumps({"name": f"k{n}", "accountNumber": f"k-{n}"})})
    return int(standin.account_api_calls - before)


def _clear_containers() -> None:
    """Every per-container cache, as a new container (the settings are read again)."""
    from accounts_api import service
    from planguard import accounts_store, kinde_management, organizations, settings, usage_counter

    for cached in (
        settings.get_settings,
        accounts_store.get_repository,
        usage_counter.get_usage_counter,
        kinde_management.get_management_api,
        organizations.get_organization_entitlements,
        service.service,
    ):
        cached.cache_clear()


def organization_warm_add(call: Callable[..., Any], standin: Any) -> dict[str, int]:
    """Organization mode (one container): the DynamoDB calls and Kinde calls (JWKS, M2M token,
    Account API, Management API) of a warm add, and the Kinde calls of 100 warm adds."""
    from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET

    organization_env = {
        "BILLING_CUSTOMER": "organization",
        "KINDE_M2M_CLIENT_ID": DEV_M2M_CLIENT_ID,
        "KINDE_M2M_CLIENT_SECRET": DEV_M2M_CLIENT_SECRET,
    }
    os.environ.update(organization_env)
    _clear_containers()
    try:
        from planguard.accounts_store import get_repository

        counter = CallCounter(get_repository()._db)
        standin.set_org_plan("org_bench", "max")
        token = f"Bearer {standin.mint_member('kp_bench_member', 'org_bench', ttl_seconds=3600)}"
        event = _event("accounts_create.json")
        event["headers"] = {"authorization": token, "content-type": "application/json"}

        def kinde() -> int:
            return int(
                standin.account_api_calls
                + standin.management_api_calls
                + standin.m2m_token_calls
                + standin.jwks_calls
            )

        def add(n: int) -> None:
            body = json.dumps({"name": "o", "accountNumber": f"o-{n}"})
            answer = call("AccountsFunction", {**event, "body": body})
            assert answer["statusCode"] == 201, answer

        add(0)  # cold: the key set, the token, the organization, its entitlement
        before = kinde()
        dynamodb = sum(counter.during(lambda: add(1)).values())
        warm_kinde = kinde() - before
        for n in range(2, 12 if QUICK else 102):
            add(n)
        return {
            "dynamodb_calls.org_add": dynamodb,
            "kinde_calls.org_warm_add": warm_kinde,
            "kinde_calls.org_100_adds": kinde() - before,
        }
    finally:
        for name in organization_env:
            os.environ.pop(name, None)
        _clear_containers()


def connections_for_100_warm(call: Callable[..., Any], standin: Any) -> dict[str, float]:
    """New connections per host while one warm container answers 100 ``GET /accounts``, each
    asking Kinde (its cache cleared): kept-alive connections are reused, none is opened."""
    import urllib3.connectionpool as pools
    from planguard.entitlements import get_account_api

    opened: Counter[str] = Counter()
    new_conn = pools.HTTPConnectionPool._new_conn

    def counted(pool: Any) -> Any:
        opened["kinde" if f":{pool.port}" in standin.url else "dynamodb"] += 1
        return new_conn(pool)

    user = "kp_bench_connections"
    standin.set_plan(user, "pro")
    event = {**_event("accounts_list.json"), "headers": {"authorization": f"Bearer {standin.mint(user)}"}}
    call("AccountsFunction", event)  # the container is warm: its connections are open
    pools.HTTPConnectionPool._new_conn = counted  # type: ignore[method-assign,assignment]
    try:
        for _ in range(100):
            get_account_api().clear_cache()
            call("AccountsFunction", event)
    finally:
        pools.HTTPConnectionPool._new_conn = new_conn  # type: ignore[method-assign]
    return {f"connections.{host}.100_warm": opened[host] for host in ("kinde", "dynamodb")}


def m2m_tokens_for_100_warm_calls(endpoint: str, standin: Any) -> int:
    """Tokens the stand-in mints while one container's Management API client makes 100 calls
    (Kinde counts every mint against a quota: the token is kept until a minute before it expires)."""
    import boto3
    from planguard.kinde_management import get_management_api
    from planguard.settings import get_settings

    from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET

    boto3.client("ssm", endpoint_url=endpoint).put_parameter(
        Name=M2M_SECRET_PARAM, Value=DEV_M2M_CLIENT_SECRET, Type="SecureString", Overwrite=True
    )
    m2m_env = {
        "KINDE_M2M_CLIENT_ID": DEV_M2M_CLIENT_ID,
        "KINDE_M2M_CLIENT_SECRET_PARAM": M2M_SECRET_PARAM,
        "AWS_ENDPOINT_URL_SSM": endpoint,
    }
    os.environ.update(m2m_env)
    get_settings.cache_clear()
    get_management_api.cache_clear()
    try:
        api = get_management_api()
        assert api is not None
        user = "kp_bench_m2m"
        standin.set_plan(user, "pro")
        before = standin.management.mints
        customer = api.user_customer_id(user, None)  # the container's first call mints
        assert customer is not None
        for _ in range(99):
            assert api.customer_entitlement(customer, "tracked_accounts", None).limit == 5
        return int(standin.management.mints - before)
    finally:
        for name in m2m_env:
            os.environ.pop(name, None)
        get_settings.cache_clear()
        get_management_api.cache_clear()


# Lambda arm64 at 256 MB (the template), and an HTTPS call to Kinde from AWS (an estimate: its
# latency is not ours to measure here).
LAMBDA_USD_PER_MS = 0.25 * 0.0000133334 / 1000
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
KINDE_CALL_MS_ESTIMATE = 150.0


def usage_reports(standin: Any) -> dict[str, float]:
    """UsageReportFunction on a batch of 100 count changes of one customer, in a warm container
    (its M2M token, the customer id and the agreement known): the Kinde calls it makes (counted
    at the connection pool: every HTTP request to the stand-in), and its time, hence its cost."""
    import urllib3.connectionpool as pools

    from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET
    from local.lambda_runtime import LocalContext

    sys.path.insert(0, str(ROOT / "functions" / "usage_report"))
    from tests.usage_report_support import count_changes

    m2m_env = {"KINDE_M2M_CLIENT_ID": DEV_M2M_CLIENT_ID, "KINDE_M2M_CLIENT_SECRET": DEV_M2M_CLIENT_SECRET}
    os.environ.update(m2m_env)
    from planguard.settings import get_settings

    get_settings.cache_clear()
    from usage_report_fn import handler

    user, pk = "kp_bench_usage", "USER#kp_bench_usage"
    standin.set_plan(user, "max")
    requests: Counter[str] = Counter()
    urlopen = pools.HTTPConnectionPool.urlopen

    def counted(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if f":{pool.port}" in standin.url:
            requests[f"{method} {url.split('?', maxsplit=1)[0]}"] += 1
        return urlopen(pool, method, url, *args, **kwargs)

    def batch(counts: list[int]) -> dict[str, Any]:
        with contextlib.redirect_stdout(io.StringIO()):
            answer: dict[str, Any] = handler.lambda_handler(
                {"Records": count_changes(pk, counts)}, LocalContext("UsageReportFunction", 900)
            )
        assert answer == {"batchItemFailures": []}, answer
        return answer

    pools.HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign,assignment]
    try:
        batch([1])  # the container's first report: token, customer id, agreement, then the report
        cold = sum(requests.values())
        requests.clear()
        batch(list(range(2, 102)))
        warm = sum(requests.values())
        print("usage report calls, warm batch of 100: " + ", ".join(f"{k} x{v}" for k, v in requests.items()))
    finally:
        pools.HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]
    times = []
    for run in range(RUNS * 3):
        started = time.perf_counter()
        batch(list(range(200 + run * 100, 300 + run * 100)))
        times.append((time.perf_counter() - started) * 1000)
    batch_ms = statistics.median(times)
    for name in m2m_env:
        os.environ.pop(name, None)
    get_settings.cache_clear()
    handler.reporter.cache_clear()
    billed_ms = batch_ms + KINDE_CALL_MS_ESTIMATE * warm
    return {
        "kinde_calls.usage_report_100_changes": warm,
        "kinde_calls.usage_report_first_batch": cold,
        "usage_report.batch_100_ms": round(batch_ms, 2),
        "usage_report.usd_per_million_batches": round(
            1_000_000 * (LAMBDA_USD_PER_REQUEST + LAMBDA_USD_PER_MS * billed_ms), 2
        ),
    }


def _rtt_env(endpoint: str, standin: Any) -> dict[str, str]:
    return _env(
        None,
        KINDE_ISSUER_URL=standin.url,
        DYNAMODB_ENDPOINT_URL=endpoint,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        AWS_ENDPOINT_URL_SSM=endpoint,
        IDEMPOTENCY_TABLE_NAME="IdempotencyTable",
        ENTITLEMENT_CACHE_SECONDS="60",
        KEY_PARAM=KEY_PARAM,
        BENCH_USAGE_KEY=USAGE_KEY,
    )


# -- report ----------------------------------------------------------------------------------------
def write_report(figures: dict[str, float], imports: dict[str, list[tuple[str, float]]]) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()},",
        f"{os.cpu_count()} cores, Python {platform.python_version()}; median of {RUNS} runs per figure.",
        "Ratios only: these machines are shared and noisy, so absolute times would mean little.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for name, value in figures.items():
        target = TARGETS.get(name)
        call_target = CALL_TARGETS.get(name.removeprefix("dynamodb_calls."))
        if target is not None:
            verdict = f"<= {target:.2f}x {'met' if value <= target else 'NOT met'}"
        elif name.startswith("dynamodb_calls.") and call_target is not None:
            verdict = f"<= {call_target} {'met' if value <= call_target else 'NOT met'}"
        elif name in (
            "kinde_calls.100_adds",
            "m2m_tokens.100_warm_calls",
            "kinde_calls.usage_report_100_changes",
            "dynamodb_calls.org_add",
        ):
            verdict = f"<= 1 {'met' if value <= 1 else 'NOT met'}"
        elif name == "kinde_calls.org_warm_add":
            verdict = f"0 {'met' if value == 0 else 'NOT met'}"
        else:
            verdict = ""
        if name.startswith("rss."):
            shown = f"{value:.0f} MB"
        elif name.startswith(("import.", "first.", "warm.")):
            shown = f"{value:.2f}x"
        else:
            shown = f"{value:g}"
        lines.append(f"| `{name}` | {shown} | {verdict} |")
    lines += ["", "## Top imports per function (cumulative ms, `python -X importtime`)", ""]
    for function, rows in imports.items():
        lines.append(f"- {function}: " + ", ".join(f"`{name}` {ms:.0f}" for name, ms in rows))
    lines += [
        "",
        "`import.*`: the handler module's import against `import boto3; boto3.client('dynamodb')`.",
        "`first.*`: a fresh process importing the handler and answering its first real request (the",
        "usage count with the key in SSM, a downgrade by direct invoke, `GET /accounts` with a token",
        "from the Kinde stand-in) against a fresh process making one `GetItem` with boto3, on the same",
        "moto server. `rss.*`: peak RSS of the first-answer process, in MB.",
        "`dynamodb_calls.*`: calls counted at the client for one request (add without `Idempotency-Key`).",
        "`m2m_tokens.100_warm_calls`: M2M tokens the Kinde stand-in minted while one container's",
        "Management API client made 100 calls (its secret read from SSM, as deployed).",
        "Organization mode (`BILLING_CUSTOMER=organization`, the limit from the Management API):",
        "`dynamodb_calls.org_add` and `kinde_calls.org_warm_add` for one warm add (Kinde: the JWKS,",
        "the M2M token, the Account and Management APIs), `kinde_calls.org_100_adds` for 100 more",
        "within the cache window; `org_list` and `org_add` below are its `GET /accounts` and add.",
        "",
        "## Round trips per route (every external call delayed by one RTT)",
        "",
        f"RTT {RTT_SECONDS * 1000:.0f} ms. `depth`: the most calls that ran one after the other,",
        "counted from each call's start and end (CI fails a route over its budget); `rtt`:",
        "(time with the delay - time without) / RTT, median of the runs (timed, so noisy).",
        "Before this change (branch `lead`): cold `GET /accounts` 4 (JWKS, Query, GetItem,",
        "entitlement), warm 2; cold `GET /usage` 3; cold count with the key in SSM 2.",
        "",
        "| route | cold depth | cold rtt | warm depth | warm rtt | budget cold / warm |",
        "|---|---|---|---|---|---|",
        *[
            f"| {route} | {figures.get(f'depth.cold.{route}', 0):g} | "
            f"{figures.get(f'rtt.cold.{route}', 0):.2f} | {figures.get(f'depth.warm.{route}', 0):g} | "
            f"{figures.get(f'rtt.warm.{route}', 0):.2f} | "
            f"{DEPTH_BUDGETS[f'cold.{route}']} / {DEPTH_BUDGETS[f'warm.{route}']} |"
            for route in (*ROUTES, *ORG_ROUTES)
        ],
        "",
        *COST_TABLE,
        "## Usage reports (UsageReportFunction)",
        "",
        "`kinde_calls.usage_report_100_changes`: Kinde calls for one batch of 100 count changes of one",
        "customer in a warm container (its M2M token, the customer id and the agreement known): one",
        "`meter_usage` with the newest count. `kinde_calls.usage_report_first_batch`: a container's",
        "first report (the token, the customer id, the agreement, the report). `usage_report.batch_100_ms`:",
        "the handler's time for that batch here, the stand-in's answer included.",
        "`usage_report.usd_per_million_batches`: Lambda's price for a batch (256 MB arm64, $0.20 per",
        "million requests and $0.0000133334 per GB-second), billed for the measured time plus an",
        f"estimated {KINDE_CALL_MS_ESTIMATE:.0f} ms per call to Kinde. Not billed: the stream's reads by a",
        "Lambda trigger (free), records the filter drops (no invocation), and Kinde's calls. A batch",
        "holds every change of up to 5 s (`MaximumBatchingWindowInSeconds`), so a busy customer costs",
        "one report per batch, not one per change. The daily re-send adds, per customer, one",
        "`meter_usage` and one consistent `GetItem` (1 RRU), and its Scan reads the whole table once",
        "(eventually consistent, 1 RRU per 8 KB).",
        "",
        "## Where a target is out of reach, and why",
        "",
        "- The usage count (Kinde's plan-change path) and the plan check's direct invoke import no",
        "  pydantic, no Powertools, no boto3, no PyJWT and no requests: a bare botocore client, stdlib",
        "  settings and a stdlib JSON logger. `import.bare_botocore_client` is the floor they can",
        "  reach; they sit 15-20 ms above it: about 10 ms of their own modules (settings, errors,",
        "  the hold parser, the plan rule's result type) and the client's short-timeout, standard-",
        "  retry configuration. On this machine the bare client alone is 0.95-1.0x, so the usage",
        "  count's 0.95x target (set where the bare client measured 0.91x) is out of reach by that",
        "  margin, not by anything it imports. The usage count's first answer also builds an SSM",
        "  client (about 30 ms: botocore loads the SSM service model) and makes one `GetParameter`",
        "  for the usage key, once",
        "  per container (cached 5 minutes); the plan check's is the hold's one conditional write.",
        "- AccountsFunction carries what every request needs: Powertools' HTTP resolver (its package",
        "  imports every resolver kind) and PyJWT with `cryptography` for the token. pydantic (the",
        "  request models) is imported by the write routes only, Powertools idempotency (and boto3",
        "  with it) by a request with an `Idempotency-Key` only, and the Kinde client uses the urllib3",
        "  botocore already loaded instead of requests. What is left is the resolver and PyJWT: the",
        "  import stays a little above 1.25x unless one of those goes. Its first answer also fetches",
        "  the JWKS and the entitlement over HTTP and verifies an RS256 signature, which a bare",
        "  `GetItem` does not, so it cannot come near 1x.",
        "",
    ]
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "BENCHMARKS.md").write_text("\n".join(lines))


def main() -> None:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    figures: dict[str, float] = {}
    imports: dict[str, list[tuple[str, float]]] = {}
    print(
        f"Plan Guard benchmarks ({'quick' if QUICK else f'median of {RUNS} runs'}; ratios, lower is better)"
    )
    # The floor under the floor: a bare botocore client, no boto3 (what the Kinde-path functions use).
    bare = "import botocore.session; botocore.session.get_session().create_client('dynamodb')"
    figures["import.bare_botocore_client"] = _ratio(bare, _env(None), BASELINE_IMPORT, _env(None))["ratio"]
    for function, (code_dir, module) in HANDLERS.items():
        # Both sides end with a ready DynamoDB client, so laziness cannot hide the client's cost.
        ready = f"import {module}; from planguard.accounts_store import get_repository; get_repository()"
        row = _ratio(ready, _env(code_dir), BASELINE_IMPORT, _env(None))
        figures[f"import.{function}"] = row["ratio"]
        imports[function] = top_imports(code_dir, module)
    with local_services() as (endpoint, standin):
        for function, row in first_answer(endpoint, standin).items():
            figures[f"first.{function}"] = row["ratio"]
            figures[f"rss.{function}_mb"] = row["rss_mb"]
        call, client = _in_process(endpoint, standin)
        for name, calls in dynamodb_calls(call, client, standin).items():
            figures[f"dynamodb_calls.{name}"] = sum(calls.values())
        figures.update(warm_overhead(call, client, standin))
        figures["kinde_calls.100_adds"] = kinde_calls_for_100_adds(call, standin)
        figures.update(connections_for_100_warm(call, standin))
        figures["m2m_tokens.100_warm_calls"] = m2m_tokens_for_100_warm_calls(endpoint, standin)
        figures.update(organization_warm_add(call, standin))
        print(
            f"organization mode, warm add: {figures['dynamodb_calls.org_add']} DynamoDB call(s), "
            f"{figures['kinde_calls.org_warm_add']} Kinde call(s)"
        )
        print(f"100 warm calls in one container mint {figures['m2m_tokens.100_warm_calls']} token(s)")
        figures.update(usage_reports(standin))
        rtt_figures, rtt_calls = round_trips(
            _rtt_env(endpoint, standin),
            standin,
            rtt=RTT_SECONDS,
            runs=RUNS if not QUICK else 1,
            warm_runs=1 if QUICK else 3,
        )
        figures.update(rtt_figures)
    for name, made in rtt_calls.items():
        print(f"calls {name}: " + " ".join(what for _, what in made))
    for function, rows in imports.items():
        print(f"top imports {function}: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in rows))
    if not QUICK:
        write_report(figures, imports)
        print("docs/BENCHMARKS.md rewritten")
    for name, value in figures.items():
        print(f"{name}: {value:.3f}" if isinstance(value, float) else f"{name}: {value}")
    # Call counts are exact, not timed: a regression fails the run (CI runs the quick mode).
    over = [name for name, limit in CALL_TARGETS.items() if figures[f"dynamodb_calls.{name}"] > limit]
    over += [f"depth.{name}" for name in over_depth_budget(figures)]
    if figures["kinde_calls.100_adds"] > 1:
        over.append("kinde_calls.100_adds")
    if figures["m2m_tokens.100_warm_calls"] > 1:
        over.append("m2m_tokens.100_warm_calls")
    if figures["dynamodb_calls.org_add"] > 1 or figures["kinde_calls.org_warm_add"] > 0:
        over.append("organization mode's warm add")
    if figures["kinde_calls.usage_report_100_changes"] > 1:
        over.append("kinde_calls.usage_report_100_changes")
    if over:
        sys.exit(f"over budget: {', '.join(over)}")


if __name__ == "__main__":
    main()
