"""Round trips per route: every external call delayed by a fixed RTT, counted and timed.

Each route runs in a fresh process (a cold container), first cold, then warm. In that process
every HTTP call urllib3 makes (botocore's DynamoDB and SSM calls, the JWKS and the Account API)
goes through one wrapper that sleeps ``RTT`` before the call and records when the call started and
ended. Two figures per route and state:

- ``rtt.<state>.<route>``: (time with the delay - time without) / RTT, the median over runs;
- ``depth.<state>.<route>``: the critical path, the most calls that ran one after the other (the
  longest chain of recorded intervals each starting after the previous ended). Counted, not
  timed: each call waits a whole RTT, so calls run together overlap by nearly an RTT, and calls
  made one after another never do. CI fails a route whose depth exceeds its budget.

A new connection's own round trips (TCP, TLS) are not delayed: the servers are plain HTTP on
127.0.0.1. ``connections.*`` counts the connections opened instead.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests import ROOT

RESULT = "RTT-RESULT "
# Routes of AccountsFunction and UsageCountFunction. "count" has the key in the environment,
# "count_ssm" and "hold" read it from SSM (once per container).
ROUTES = ("list", "usage", "get", "add", "rename", "renumber", "delete", "count", "count_ssm", "hold")
# Organization mode's list and add (BILLING_CUSTOMER=organization): the limit through the Management API.
ORG_ROUTES = ("org_list", "org_add")
# The most sequential waits each route may make: the targets (cold routes not named there
# hold what they do now: the JWKS, then the route's own calls).
DEPTH_BUDGETS = {
    "cold.list": 2,
    "cold.usage": 2,
    "cold.get": 2,
    "cold.add": 2,
    "cold.rename": 3,
    "cold.renumber": 3,
    "cold.delete": 3,
    "cold.count": 1,
    "cold.count_ssm": 1,
    "cold.hold": 2,  # the key, then the write: the write never overlaps the key's lookup
    "warm.list": 1,
    "warm.usage": 1,
    "warm.get": 1,
    "warm.add": 1,
    "warm.rename": 2,
    "warm.renumber": 2,
    "warm.delete": 2,
    "warm.count": 1,
    "warm.count_ssm": 1,
    "warm.hold": 1,
    # Organization mode: the JWKS beside the M2M token, the organization, then its entitlements
    # beside the page and counter (the add: then its write). Warm: storage only.
    "cold.org_list": 3,
    "cold.org_add": 4,
    "warm.org_list": 1,
    "warm.org_add": 1,
}


# -- inside the probe process ---------------------------------------------------------------------
class Recorder:
    """Wraps urllib3's ``HTTPConnectionPool.urlopen`` (every call of botocore and of the Kinde
    clients) to sleep ``rtt`` first and record ``(host, what, start, end)``; counts new connections."""

    def __init__(self, rtt: float) -> None:
        import urllib3.connectionpool as pools

        self.rtt = rtt
        self.recording = True
        self.calls: list[tuple[str, str, float, float]] = []
        self.connections: dict[str, int] = {}
        urlopen, new_conn = pools.HTTPConnectionPool.urlopen, pools.HTTPConnectionPool._new_conn
        recorder = self

        def delayed(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            started = time.time()
            time.sleep(recorder.rtt)
            try:
                return urlopen(pool, method, url, *args, **kwargs)
            finally:
                if recorder.recording:
                    headers = kwargs.get("headers") or {}
                    what = headers.get("X-Amz-Target") or url.split("?", maxsplit=1)[0]
                    what = (what.decode() if isinstance(what, bytes) else str(what)).split(".")[-1]
                    recorder.calls.append((f"{pool.host}:{pool.port}", what, started, time.time()))

        def counted(pool: Any) -> Any:
            host = f"{pool.host}:{pool.port}"
            recorder.connections[host] = recorder.connections.get(host, 0) + 1
            return new_conn(pool)

        pools.HTTPConnectionPool.urlopen = delayed  # type: ignore[method-assign,assignment]
        pools.HTTPConnectionPool._new_conn = counted  # type: ignore[method-assign,assignment]

    def measure(self, action: Callable[[], Any]) -> dict[str, Any]:
        self.calls, self.recording = [], True
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        calls = sorted(self.calls, key=lambda call: call[2])
        return {"seconds": seconds, "depth": depth(calls), "calls": [call[:2] for call in calls]}


def depth(calls: list[tuple[str, str, float, float]]) -> int:
    """The longest chain of calls each starting after the previous one ended (greedy by end)."""
    count, last_end = 0, float("-inf")
    for _, _, start, end in sorted(calls, key=lambda call: call[3]):
        if start >= last_end:
            count, last_end = count + 1, end
    return count


def _probe() -> None:
    """One route in a fresh process: the cold answer, then warm ones. Prints one JSON line."""
    from tests.bench import _event

    route, rtt, warm_runs = os.environ["ROUTE"], float(os.environ["RTT"]), int(os.environ["WARM_RUNS"])
    recorder = Recorder(rtt)
    user, token = os.environ["USER_ID"], f"Bearer {os.environ['TOKEN']}"

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "bench", 256, "bench-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"

        def get_remaining_time_in_millis(self) -> int:
            return 15000

    def call(module: str, event: dict[str, Any]) -> Any:
        import contextlib
        import io

        handler = __import__(module, fromlist=["lambda_handler"]).lambda_handler
        with contextlib.redirect_stdout(io.StringIO()):
            result = handler(event, Context())
        assert result["statusCode"] < 300, result
        return result

    def prepared_account(n: int) -> str:
        """An account made outside the measure, by the store itself (the handler stays cold)."""
        from planguard.accounts_store import AccountRepository
        from planguard.dynamodb import dynamodb_client

        recorder.recording = False
        store = AccountRepository(dynamodb_client(os.environ["DYNAMODB_ENDPOINT_URL"]), "AccountsTable")
        account_id = store.create(user, f"prepared {n}", f"p-{os.getpid()}-{n}", None).id
        recorder.recording = True
        return account_id

    def accounts(name: str, **changes: Any) -> Callable[[], Any]:
        event = _event(name, **changes)
        event["headers"] = {"authorization": token, "content-type": "application/json"}
        return lambda: call("accounts_api.handler", event)

    def by_id(name: str, account_id: str, **changes: Any) -> Callable[[], Any]:
        return accounts(name, pathParameters={"id": account_id}, rawPath=f"/accounts/{account_id}", **changes)

    def usage_route(name: str, **changes: Any) -> Callable[[], Any]:
        event = _event(name, pathParameters={"kindeId": user}, **changes)
        event["headers"] = {"x-api-key": os.environ["BENCH_USAGE_KEY"]}
        return lambda: call("usage_count_api.handler", event)

    def action(n: int) -> Callable[[], Any]:
        body = json.dumps
        return {
            "list": lambda: accounts("accounts_list.json"),
            "org_list": lambda: accounts("accounts_list.json"),
            "org_add": lambda: accounts(
                "accounts_create.json", body=body({"name": "A", "accountNumber": f"o-{os.getpid()}-{n}"})
            ),
            "usage": lambda: accounts("usage_get.json"),
            "get": lambda: by_id("accounts_get.json", prepared_account(n)),
            "add": lambda: accounts(
                "accounts_create.json", body=body({"name": "A", "accountNumber": f"a-{os.getpid()}-{n}"})
            ),
            "rename": lambda: by_id(
                "accounts_update.json", prepared_account(n), body=body({"name": f"R{n}"})
            ),
            "renumber": lambda: by_id(
                "accounts_update.json",
                prepared_account(n),
                body=body({"accountNumber": f"r-{os.getpid()}-{n}"}),
            ),
            "delete": lambda: by_id("accounts_delete.json", prepared_account(n)),
            "count": lambda: usage_route("usage_count_with_key.json"),
            "count_ssm": lambda: usage_route("usage_count_with_key.json"),
            "hold": lambda: usage_route(
                "usage_hold.json", queryStringParameters={"limit": "", "plan": "max"}
            ),
        }[route]()

    cold = recorder.measure(action(0))
    warm = [recorder.measure(action(n)) for n in range(1, warm_runs + 1)]
    print(RESULT + json.dumps({"cold": cold, "warm": warm, "connections": recorder.connections}))


# -- in the bench process -------------------------------------------------------------------------
def _run_probe(
    route: str, rtt: float, env: dict[str, str], standin: Any, code_root: Path, warm_runs: int
) -> dict[str, Any]:
    user = f"kp_rtt_{route}_{time.time_ns()}"
    standin.set_plan(user, "max")  # unlimited: adds never stop at a limit
    org_env: dict[str, str] = {}
    token = standin.mint(user, ttl_seconds=3600)
    if route in ORG_ROUTES:
        from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET

        org = f"org_rtt_{time.time_ns()}"
        standin.set_org_plan(org, "max")
        token = standin.mint_member(user, org, ttl_seconds=3600)
        org_env = {
            "BILLING_CUSTOMER": "organization",
            "KINDE_M2M_CLIENT_ID": DEV_M2M_CLIENT_ID,
            "KINDE_M2M_CLIENT_SECRET": DEV_M2M_CLIENT_SECRET,
        }
    paths = [str(code_root / "layers/common"), str(code_root / "functions/accounts")]
    paths += [str(code_root / "functions/usage_count"), str(ROOT)]
    key_env = (
        {"USAGE_API_KEY_PARAM": env["KEY_PARAM"]}
        if route in ("count_ssm", "hold")
        else {"USAGE_API_KEY": env["BENCH_USAGE_KEY"]}
    )
    env = {name: value for name, value in env.items() if not name.startswith("USAGE_API_KEY")}
    out = subprocess.run(
        [sys.executable, "-c", "from tests.bench_rtt import _probe; _probe()"],
        env={
            **env,
            **key_env,
            **org_env,
            "PYTHONPATH": os.pathsep.join(paths),
            "ROUTE": route,
            "RTT": str(rtt),
            "WARM_RUNS": str(warm_runs),
            "USER_ID": user,
            "TOKEN": token,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"round-trip probe {route} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT))
    return result


def _probe_with_retry(
    route: str, rtt: float, env: dict[str, str], standin: Any, code_root: Path, warm_runs: int
) -> dict[str, Any]:
    """One probe; once more when it fails. moto ignores ``ClientRequestToken``, so a transaction
    botocore retries after moto committed it answers a conflict (409) that DynamoDB would not:
    an artefact of the local stand-in, not a figure."""
    try:
        return _run_probe(route, rtt, env, standin, code_root, warm_runs)
    except RuntimeError as first:
        print(
            f"round-trip probe {route} failed once, run again: {str(first).splitlines()[0]}", file=sys.stderr
        )
        return _run_probe(route, rtt, env, standin, code_root, warm_runs)


def round_trips(
    env: dict[str, str], standin: Any, *, rtt: float, runs: int, warm_runs: int, code_root: Path = ROOT
) -> tuple[dict[str, float], dict[str, list[Any]]]:
    """``rtt.*`` and ``depth.*`` figures per route, and the calls of one delayed cold and warm run."""
    figures: dict[str, float] = {}
    calls: dict[str, list[Any]] = {}
    for route in (*ROUTES, *ORG_ROUTES):
        cold_extra, warm_extra, depths = [], [], {"cold": 0, "warm": 0}
        for _ in range(runs):
            slow = _probe_with_retry(route, rtt, env, standin, code_root, warm_runs)
            fast = _probe_with_retry(route, 0.0, env, standin, code_root, warm_runs)
            cold_extra.append((slow["cold"]["seconds"] - fast["cold"]["seconds"]) / rtt)
            warm_extra.append(
                (
                    statistics.median(run["seconds"] for run in slow["warm"])
                    - statistics.median(run["seconds"] for run in fast["warm"])
                )
                / rtt
            )
            depths["cold"] = max(depths["cold"], slow["cold"]["depth"])
            depths["warm"] = max([depths["warm"], *(run["depth"] for run in slow["warm"])])
            calls[f"cold.{route}"], calls[f"warm.{route}"] = slow["cold"]["calls"], slow["warm"][-1]["calls"]
        figures[f"rtt.cold.{route}"] = statistics.median(cold_extra)
        figures[f"rtt.warm.{route}"] = statistics.median(warm_extra)
        figures[f"depth.cold.{route}"] = depths["cold"]
        figures[f"depth.warm.{route}"] = depths["warm"]
    return figures, calls


def over_depth_budget(figures: dict[str, float]) -> list[str]:
    return [name for name, limit in DEPTH_BUDGETS.items() if figures.get(f"depth.{name}", 0) > limit]


# What each route costs, per million requests: estimates from item sizes and AWS's published
# on-demand prices for us-east-1 as of early 2025 (from memory: check the pricing pages).
COST_TABLE = [
    "## Cost per route (estimate, USD per million requests, us-east-1 on-demand, prices as of",
    "early 2025 as known to the author: check aws.amazon.com/dynamodb/pricing, /lambda/pricing,",
    "/api-gateway/pricing)",
    "",
    "Prices: DynamoDB $0.125 per million read request units (RRU), $0.625 per million write",
    "request units (WRU); Lambda arm64 $0.0000133334 per GB-second and $0.20 per million",
    "requests; HTTP API $1.00 per million requests. Items are small (an account about 250 bytes,",
    "the counter about 100): a strongly consistent read up to 4 KB is 1 RRU, a write up to 1 KB",
    "is 1 WRU, and a transaction bills every item twice. Lambda: 256 MB arm64 (the template),",
    "billed per ms; warm duration estimated at 10 ms per sequential DynamoDB round trip plus our",
    "own ~2 ms (measured locally the code itself takes 2-4 ms; real DynamoDB latency is an",
    "estimate), so $0.0033 per million per billed ms.",
    "",
    "| route | DynamoDB | RRU | WRU | Lambda ms (est.) | DynamoDB $ | Lambda $ | HTTP API $ | total $/M |",
    "|---|---|---|---|---|---|---|---|---|",
    "| count (GetItem) | GetItem | 1 | 0 | 12 | 0.13 | 0.24 | 1.00 | 1.37 |",
    "| hold | UpdateItem | 0 | 1 | 12 | 0.63 | 0.24 | 1.00 | 1.87 |",
    "| GET /accounts (<= 16 accounts) | Query + BatchGetItem | 3 | 0 | 12 | 0.38 | 0.24 | 1.00 | 1.62 |",
    "| GET /usage | BatchGetItem | 2 | 0 | 12 | 0.25 | 0.24 | 1.00 | 1.49 |",
    "| GET /accounts/{id} | GetItem | 1 | 0 | 12 | 0.13 | 0.24 | 1.00 | 1.37 |",
    "| add (no Idempotency-Key) | TransactWriteItems x4 | 0 | 8 | 12 | 5.00 | 0.24 | 1.00 | 6.24 |",
    "| rename | GetItem, UpdateItem | 1 | 1 | 22 | 0.75 | 0.27 | 1.00 | 2.02 |",
    "| renumber, delete | GetItem, TransactWriteItems x3 | 1 | 6 | 22 | 3.88 | 0.27 | 1.00 | 5.15 |",
    "| seed count, 100 accounts | Query (eventual, 25 KB) | 4 | 0 | 12 | 0.50 | 0.24 | 1.00 | 1.74 |",
    "| seed count, 1,000 accounts | Query (250 KB) | 32 | 0 | 15 | 4.00 | 0.25 | 1.00 | 5.25 |",
    "",
    "The BatchGetItem reads the counter and the deletion marker, and an add's fourth item checks",
    "the marker (a deleted user's tokens are refused). The counter costs 1 RRU whatever the number",
    "of accounts; the seed's Query grows",
    "with them (1 RRU per 8 KB eventually consistent). An add with an `Idempotency-Key` adds the",
    "idempotency record's writes (about 2 WRU more). The entitlement is a Kinde call, not billed",
    "by AWS; the Lambda request price and the API Gateway request dominate every read route.",
    "",
]
