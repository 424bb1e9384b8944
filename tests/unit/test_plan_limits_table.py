"""The shared table of bad PLAN_LIMITS values (tests/fixtures/plan_limits_invalid.json), Python side.

kinde/test runs the same table against the workflow's validator. Plan codes: one rule for PLAN_LIMITS
and the hold's ``plan``, so a plan the settings accept is never refused on the plan-change path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from planguard.errors import BadRequest
from planguard.ids import PLAN_CODE_PATTERN, PLAN_CODE_RULE
from planguard.settings import FEATURE_KEY, ConfigurationError, Settings, parse_plan_limits
from usage_count_api.hold_request import parse_hold_request

from tests import ROOT

TABLE = json.loads((ROOT / "tests" / "fixtures" / "plan_limits_invalid.json").read_text())
CODES = TABLE["planCodes"]
WORKFLOW = ROOT / "kinde/kindeSrc/environment/workflows/denyPlanChange/denyPlanChangeWorkflow.ts"
BASE = {"TABLE_NAME": "t", "KINDE_ISSUER_URL": "https://x.kinde.com"}


def hold_event(plan: str) -> dict[str, Any]:
    return {"queryStringParameters": {"limit": "3", "plan": plan}}


@pytest.mark.parametrize("entry", TABLE["invalid"], ids=[entry["name"] for entry in TABLE["invalid"]])
def test_a_bad_plan_limits_is_a_settings_error(entry: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(entry["message"])):
        parse_plan_limits(entry["planLimits"])
    with pytest.raises(ConfigurationError, match="PLAN_LIMITS"):
        Settings.from_env({**BASE, "PLAN_LIMITS": entry["planLimits"]})


@pytest.mark.parametrize("code", CODES["valid"])
def test_a_valid_plan_code_is_accepted_by_plan_limits_and_the_hold(code: str) -> None:
    raw = json.dumps({code: {FEATURE_KEY: 3}})
    assert parse_plan_limits(raw) == {code: {FEATURE_KEY: 3}}
    assert Settings.from_env({**BASE, "PLAN_LIMITS": raw}).plan_limits == {code: {FEATURE_KEY: 3}}
    assert parse_hold_request(hold_event(code)).plan == code


@pytest.mark.parametrize("code", CODES["invalid"])
def test_an_invalid_plan_code_is_refused_by_plan_limits_and_the_hold(code: str) -> None:
    raw = json.dumps({code: {FEATURE_KEY: 3}, "pro": {FEATURE_KEY: 5}})
    with pytest.raises(ConfigurationError, match=re.escape(CODES["message"])):
        parse_plan_limits(raw)
    with pytest.raises(BadRequest, match=re.escape(PLAN_CODE_RULE)):
        parse_hold_request(hold_event(code))


def test_the_workflow_keeps_the_same_plan_code_rule() -> None:
    source = WORKFLOW.read_text()
    pattern = re.search(r"export const PLAN_CODE_PATTERN = /\^(.*)\$/;", source)
    rule = re.search(r'export const PLAN_CODE_RULE = "(.*)";', source)
    assert pattern and rule, "PLAN_CODE_PATTERN / PLAN_CODE_RULE not found in the workflow"
    assert pattern.group(1) == PLAN_CODE_PATTERN.pattern
    assert rule.group(1) == PLAN_CODE_RULE
