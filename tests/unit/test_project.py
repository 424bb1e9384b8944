"""One place for each fact: checks that the copies the platform forces on us agree."""

from __future__ import annotations

import re
import tomllib

from local.template import load_template
from tests import ROOT


def _names(requirements: list[str]) -> dict[str, str]:
    pinned = {}
    for raw in requirements:
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pinned[re.sub(r"\[.*\]", "", name).lower()] = version
    return pinned


def test_layer_requirements_match_the_project_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (ROOT / "layers/common/requirements.txt").read_text().splitlines()
    assert _names(layer) == _names(project)


def test_every_function_uses_the_layer_and_a_unique_module() -> None:
    template = load_template()
    handlers = [spec.handler.split(".")[0] for spec in template.functions().values()]
    assert len(handlers) == len(set(handlers))
    assert all(name not in ("app", "handler", "common", "utils") for name in handlers)
    for spec in template.functions().values():
        module = spec.code_uri / (spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
        assert module.exists(), module
    layer = template.resources["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / layer["Properties"]["ContentUri"] / "planguard" / "__init__.py").exists()


def test_table_schema() -> None:
    props = load_template().resources["AccountsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}


# The re-send of every count to Kinde reads every usage counter: the one function that may scan
# (the accounts table only: tests/unit/test_template_usage_report.py).
SCANNING_FUNCTIONS = {"UsageReportFunction"}


def test_policies_are_scoped_to_tables_and_never_wildcards() -> None:
    template = load_template()
    for name, resource in template.of_type("AWS::Serverless::Function").items():
        for policy in resource["Properties"].get("Policies", []):
            assert isinstance(policy, dict), f"{name}: use inline statements, not SAM policy templates"
            for statement in policy["Statement"]:
                actions = statement["Action"]
                assert all("*" not in action for action in actions), name
                assert statement["Resource"] != "*", name
                if name not in SCANNING_FUNCTIONS:
                    assert "dynamodb:Scan" not in actions, name


def test_accounts_function_cannot_scan_or_touch_other_tables() -> None:
    policies = load_template().resources["AccountsFunction"]["Properties"]["Policies"]
    resources = [s["Resource"] for p in policies for s in p["Statement"]]
    assert resources == [
        {"Fn::GetAtt": ["AccountsTable", "Arn"]},
        {"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
    ]


def test_powertools_globals() -> None:
    env = load_template().doc["Globals"]["Function"]["Environment"]["Variables"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(env)
