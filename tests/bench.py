"""Benchmarks that print ratios, not absolute times: these machines are shared and noisy.

    make bench

1. Cold start: importing each function's handler in a fresh interpreter, against the floor every
   Lambda pays (``import boto3`` + a DynamoDB client). The usage-count function sits on Kinde's
   plan-change path, so its ratio should stay close to 1.
2. Memory: peak RSS after that import, against the same floor.
3. Warm path: one usage-count invocation (auth + one GetItem + response) against a bare GetItem,
   both on the same in-process moto table.
Each measure is the median of several runs, interleaved with its baseline so load on the machine
hits both alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
BASELINE = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
PROBE = """
import resource, sys, time
started = time.perf_counter()
exec(sys.argv[1])
elapsed = time.perf_counter() - started
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
# Each handler's import plus the DynamoDB client every one of them builds on its first request,
# so both sides of the ratio end with a ready client.
READY = "; from planguard.repository import get_repository; get_repository()"
HANDLERS = {
    "UsageCountFunction": ("functions/usage_count", "import usage_count_api.handler" + READY),
    "PlanCheckFunction": ("functions/plan_check", "import plan_check_api.handler" + READY),
    "AccountsFunction": ("functions/accounts", "import accounts_api.handler" + READY),
}


def _probe(code: str, code_dir: str | None) -> tuple[float, int]:
    paths = [str(ROOT / "layers/common")] + ([str(ROOT / code_dir)] if code_dir else [])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "AWS_DEFAULT_REGION": "us-east-1",
        "TABLE_NAME": "AccountsTable",
        "KINDE_ISSUER_URL": "https://bench.kinde.com",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def cold_start() -> list[dict[str, Any]]:
    rows = []
    for function, (code_dir, code) in HANDLERS.items():
        module_file = ROOT / code_dir / (code.split(";")[0].split()[1].replace(".", "/") + ".py")
        if not module_file.exists():
            print(f"{function}: {module_file.relative_to(ROOT)} not found, skipped")
            continue
        _probe(code, code_dir)  # warm the bytecode cache, as a deployed package has it
        base_t, base_m, fn_t, fn_m = [], [], [], []
        for _ in range(RUNS):
            t, m = _probe(BASELINE, None)
            base_t.append(t)
            base_m.append(m)
            t, m = _probe(code, code_dir)
            fn_t.append(t)
            fn_m.append(m)
        rows.append(
            {
                "function": function,
                "import_ratio": statistics.median(fn_t) / statistics.median(base_t),
                "memory_ratio": statistics.median(fn_m) / statistics.median(base_m),
                "import_ms": statistics.median(fn_t) * 1000,
                "baseline_ms": statistics.median(base_t) * 1000,
            }
        )
    return rows


def warm_usage_count() -> dict[str, Any] | None:
    """Usage-count handler vs a bare GetItem on the same moto table."""
    sys.path[:0] = [str(ROOT / "layers/common"), str(ROOT / "functions/usage_count")]
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # one log line per call would be measured too
    try:
        from usage_count_api.handler import lambda_handler
    except ImportError:
        return None
    import boto3
    from moto import mock_aws

    from local.lambda_runtime import LocalContext
    from local.template import load_template

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        TABLE_NAME="AccountsTable",
        KINDE_ISSUER_URL="https://bench.kinde.com",
        USAGE_AUTH="api_key",
        USAGE_API_KEY="bench-key",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
    )
    event = json.loads((ROOT / "events/usage_count_with_key.json").read_text())
    headers = {k: v for k, v in event["headers"].items() if k not in ("authorization", "x-api-key")}
    event["headers"] = {**headers, "x-api-key": "bench-key"}
    with mock_aws():
        client = boto3.client("dynamodb")
        for definition in load_template().table_definitions().values():
            client.create_table(**definition)
        key = {"PK": {"S": "USER#kp_bench"}, "SK": {"S": "USAGE#tracked_accounts"}}
        assert lambda_handler(event, LocalContext("UsageCountFunction"))["statusCode"] == 200
        bare, handler = [], []
        for _ in range(RUNS * 20):
            started = time.perf_counter()
            client.get_item(TableName="AccountsTable", Key=key, ConsistentRead=True)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            lambda_handler(event, LocalContext("UsageCountFunction"))
            handler.append(time.perf_counter() - started)
    return {"warm_ratio": statistics.median(handler) / statistics.median(bare)}


def main() -> None:
    print(f"Plan Guard benchmarks (median of {RUNS} runs; ratios against the floor, lower is better)")
    print(f"{'function':<22}{'import vs boto3+client':>24}{'peak RSS vs boto3+client':>27}")
    for row in cold_start():
        print(f"{row['function']:<22}{row['import_ratio']:>23.2f}x{row['memory_ratio']:>26.2f}x")
    warm = warm_usage_count()
    if warm:
        print(f"usage count, warm: handler vs bare GetItem on moto = {warm['warm_ratio']:.2f}x")


if __name__ == "__main__":
    main()
