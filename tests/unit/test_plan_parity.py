"""The shared case table (tests/fixtures/plan_cases.json) against the Python rule.

kinde/test runs the same table against the TypeScript workflow, so the two cannot drift; the
plan-limit defaults are checked here in all four places they are written down.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from planguard.plan_rule import PlanCheckError, check_plan_change
from planguard.settings import DEFAULT_PLAN_LIMITS, FEATURE_KEY

from local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TABLE = json.loads((ROOT / "tests" / "fixtures" / "plan_cases.json").read_text())
WORKFLOW = ROOT / "kinde" / "kindeSrc" / "environment" / "workflows" / "denyPlanChange"
CASES = TABLE["cases"]


class UsageEndpoint:
    """What the usage endpoint gives the rule in each case, counting the reads."""

    def __init__(self, usage: dict[str, Any]) -> None:
        self.usage = usage
        self.reads: list[str] = []

    def __call__(self, user_id: str) -> Any:
        self.reads.append(user_id)
        if self.usage.get("unreachable"):
            raise ConnectionError("connect ECONNREFUSED 127.0.0.1:3000")
        if "body" in self.usage:
            # A client reading `body.count` the way the workflow does: whatever is there, or
            # nothing. The rule itself must refuse anything that is not a count.
            body = self.usage["body"]
            return body.get("count") if isinstance(body, dict) else None
        return self.usage["count"]


def test_the_table_covers_the_issue_cases() -> None:
    names = " | ".join(case["name"] for case in CASES)
    for topic in (
        "upgrade",
        "lateral",
        "under the limit",
        "at the limit",
        "over the limit",
        "unknown current plan",
        "unknown requested plan",
        "missing user",
        "error body",
        "non-numeric count",
        "unlimited plan",
    ):
        assert topic in names, topic


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    read_usage = UsageEndpoint(case["usage"])

    def run() -> dict[str, Any]:
        return check_plan_change(
            user_id=case["userId"],
            current_plan=case["currentPlan"],
            requested_plan=case["requestedPlan"],
            plan_limits=case.get("planLimits", TABLE["defaultPlanLimits"]),
            read_usage=read_usage,
        ).to_json()

    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(Exception) as raised:
            run()
        if case["usage"].get("unreachable"):
            # The endpoint's own error passes through unchanged (the workflow words it as `error`).
            assert isinstance(raised.value, ConnectionError)
        else:
            assert isinstance(raised.value, PlanCheckError)
            assert expected["error"] in str(raised.value)
        return
    assert run() == expected
    # Usage is read exactly for a downgrade (usage in the answer), never otherwise.
    assert read_usage.reads == ([case["userId"]] if expected["usage"] is not None else [])


def _workflow_defaults() -> dict[str, dict[str, int | None]]:
    """``DEFAULT_PLAN_LIMITS`` of the TypeScript workflow, read from its source."""
    source = (WORKFLOW / "denyPlanChangeWorkflow.ts").read_text()
    block = re.search(r"export const DEFAULT_PLAN_LIMITS\b[^=]*=\s*\{(.*?)\n\};", source, re.S)
    assert block, "DEFAULT_PLAN_LIMITS not found in the workflow"
    body = block.group(1)
    entry = re.compile(r"(\w+):\s*\{\s*\[FEATURE_KEY\]:\s*(\d+|null)\s*\}")
    plans = {plan: {FEATURE_KEY: None if v == "null" else int(v)} for plan, v in entry.findall(body)}
    leftover = entry.sub("", body).replace(",", "").strip()
    assert not leftover, f"unparsed entries in the workflow's DEFAULT_PLAN_LIMITS: {leftover!r}"
    return plans


def test_default_plan_limits_agree_everywhere() -> None:
    template_default = json.loads(load_template().parameter_defaults()["PlanLimits"])
    assert DEFAULT_PLAN_LIMITS == {"free": {FEATURE_KEY: 3}, "pro": {FEATURE_KEY: 5}}  # the seed's
    assert TABLE["defaultPlanLimits"] == DEFAULT_PLAN_LIMITS
    assert template_default == DEFAULT_PLAN_LIMITS
    assert _workflow_defaults() == DEFAULT_PLAN_LIMITS
