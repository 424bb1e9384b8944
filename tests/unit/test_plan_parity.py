"""The shared case table (tests/fixtures/plan_cases.json) against the Python rule.

kinde/test runs the same table against the TypeScript workflow, so the two cannot drift; the
plan-limit defaults are checked here in all four places they are written down.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from planguard.plan_rule import PlanCheckError, UsageCount, check_plan_change
from planguard.settings import DEFAULT_PLAN_LIMITS, FEATURE_KEY
from planguard.usage_counter import HoldResult

from local.template import load_template
from tests import ROOT

TABLE = json.loads((ROOT / "tests" / "fixtures" / "plan_cases.json").read_text())
WORKFLOW = ROOT / "kinde" / "kindeSrc" / "environment" / "workflows" / "denyPlanChange"
CASES = TABLE["cases"]


def is_organization(case: dict[str, Any]) -> bool:
    return case.get("billingCustomer") == "organization"


class Endpoint:
    """What the backend gives the rule in each case, counting the calls.

    ``answer`` is the case's ``usage`` (the GET) or ``hold`` (the POST): a bare answer (naming the
    id it was asked about under ``id_field``, as the backend does), ``{body}`` (anything else; the
    rule must refuse what is not a count about that id) or ``{unreachable}``.
    """

    def __init__(self, answer: dict[str, Any] | None, id_field: str) -> None:
        self.answer = answer
        self.id_field = id_field
        self.error = ConnectionError("connect ECONNREFUSED 127.0.0.1:3000")

    def _fields(self, customer_id: str) -> dict[str, Any]:
        if self.answer is None:
            raise AssertionError("this endpoint must not be called in this case")
        if self.answer.get("unreachable"):
            raise self.error
        body = self.answer.get("body", {self.id_field: customer_id, **self.answer})
        return body if isinstance(body, dict) else {}


class UsageEndpoint(Endpoint):
    def __init__(self, answer: dict[str, Any] | None, id_field: str) -> None:
        super().__init__(answer, id_field)
        self.reads: list[str] = []

    def __call__(self, customer_id: str) -> UsageCount:
        self.reads.append(customer_id)
        # A client copying the body's fields the way the workflow reads them: whatever is there.
        fields = self._fields(customer_id)
        named: Any = fields.get(self.id_field)
        count: Any = fields.get("count")
        return UsageCount(named, count)


class HoldEndpoint(Endpoint):
    def __init__(self, answer: dict[str, Any] | None, id_field: str) -> None:
        super().__init__(answer, id_field)
        self.calls: list[tuple[str, int | None, str]] = []

    def __call__(self, customer_id: str, limit: int | None, plan: str) -> HoldResult:
        self.calls.append((customer_id, limit, plan))
        fields = self._fields(customer_id)
        # Unchecked on purpose, like a client copying the body's fields: the rule must check them.
        named: Any = fields.get(self.id_field)
        count: Any = fields.get("count")
        held: Any = fields.get("held")
        answered = fields.get("limit", limit)  # an active, lower hold answers with its own limit
        return HoldResult(named, count, held, answered, "2030-01-01T00:06:00Z" if held else None)


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
        "hold: downgrade held",
        "hold: downgrade not held",
        "hold: hold unreachable",
        "hold: a clear upgrade calls nothing",
        "hold: a clear upgrade is allowed without calling the hold route",
        "hold: a clear upgrade to an unlimited plan calls nothing",
        "hold: a clear upgrade from a middle plan",
        "hold: lateral move places the hold",
        "hold: lateral move over the limit is allowed",
        "hold: lateral move is allowed when the hold call fails",
        "hold: lateral move is allowed when the hold answers garbage",
        "hold: lateral move between unlimited plans",
        "hold: unknown current plan places the hold",
        "hold: unknown current plan is allowed when the hold call fails",
        "hold: missing current plan places the hold",
        "hold: a downgrade held by an active lower hold",
        "hold: a smaller plan that is not the smallest",
        "no key: downgrade falls back",
        "no key: lateral move places no hold",
        "no key: unknown current plan places no hold",
        "an answer about an organization (the organizations' count URL) is an error",
        "an answer without the user id is an error",
        "hold: a hold answer about another user is an error",
        "organization: downgrade over the limit is denied",
        "organization: missing organization code is an error",
        "organization: hold: downgrade held is allowed",
        "organization: hold: downgrade not held is denied",
        "organization: hold: a clear upgrade calls nothing",
        "organization: hold: lateral move places the organization's hold",
        "organization: an answer about a user (the users' count URL) is an error",
        "organization: hold: a hold answer about a user (the users' count URL) is an error",
        "organization: hold: lateral move is allowed when the hold answer names someone else",
    ):
        assert topic in names, topic


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    """usageApiKey true runs the rule with ``place_hold``, else with ``read_usage`` (the table's
    description says how each mode maps to the workflow)."""
    organization = is_organization(case)
    id_field = "orgCode" if organization else "kindeId"
    customer_id = case["orgCode"] if organization else case["userId"]
    read_usage = UsageEndpoint(case.get("usage"), id_field)
    place_hold = HoldEndpoint(case.get("hold"), id_field)
    holding = bool(case.get("usageApiKey"))

    def run() -> dict[str, Any]:
        return check_plan_change(
            user_id=case["userId"],
            # The event carries an organization in user mode too (Kinde's default one).
            org_code=case["orgCode"] if organization else "org_123",
            billing_customer="organization" if organization else "user",
            current_plan=case["currentPlan"],
            requested_plan=case["requestedPlan"],
            plan_limits=case.get("planLimits", TABLE["defaultPlanLimits"]),
            **({"place_hold": place_hold} if holding else {"read_usage": read_usage}),
        ).to_json()

    expected = case["expected"]
    if "error" in expected:
        with pytest.raises(Exception) as raised:
            run()
        endpoint = place_hold if holding else read_usage
        if endpoint.answer and endpoint.answer.get("unreachable"):
            # The endpoint's own error passes through unchanged (the workflow words it as `error`).
            assert raised.value is endpoint.error
        else:
            assert isinstance(raised.value, PlanCheckError)
            assert expected["error"] in str(raised.value)
    else:
        assert run() == expected
    assert read_usage.reads == [customer_id] * case["usageReads"]
    assert place_hold.calls == [(customer_id, call["limit"], call["plan"]) for call in case["holdCalls"]]


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
