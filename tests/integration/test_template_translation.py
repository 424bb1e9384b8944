"""template.yaml as CloudFormation receives it: translated by SAM's own translator (from the
pinned aws-sam-cli, in its tool environment, as `make build` runs it), then the resources
CloudFormation would create with the usage reports on and off.

What only AWS runs (the stream, the mapping, the schedule) is judged here on the translated form:
the function's role is SAM's basic execution role plus our inline statements (a SAM DynamoDB
event would add a managed policy on "*"), the one event source mapping is ours, and with the
option off nothing of it is created and the table has no stream.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from typing import Any

import pytest

from local.template import load_template
from tests import ROOT

TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform

class NoManagedPolicies:  # the template names no managed policy: nothing to look up in IAM
    def load(self):
        return {}

template = json.load(sys.stdin)
for name, res in template["Resources"].items():  # as `sam package` leaves them: code in S3
    if res["Type"] == "AWS::Serverless::Function":
        res["Properties"]["CodeUri"] = f"s3://bucket/{name}.zip"
    if res["Type"] == "AWS::Serverless::LayerVersion":
        res["Properties"]["ContentUri"] = f"s3://bucket/{name}.zip"
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""
BASIC_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
ON, OFF = {"ReportUsageToKinde": "true"}, {"ReportUsageToKinde": "false"}


@functools.cache
def translated() -> dict[str, Any]:
    sam_version = re.search(r"^SAM_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert sam_version, "Makefile: SAM_VERSION"
    uv = ROOT / ".tools" / "bin" / "uv"
    assert uv.exists(), "run `make sync` first (it bootstraps .tools/bin/uv)"
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        "UV_PYTHON_DOWNLOADS": "never",
    }
    done = subprocess.run(
        [str(uv), "tool", "run", "--from", f"aws-sam-cli=={sam_version.group(1)}", "python", "-c", TRANSLATE],
        input=json.dumps(load_template().doc),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def evaluate(expr: Any, conditions: dict[str, Any], values: dict[str, Any]) -> Any:
    """CloudFormation's condition functions, over the parameters' values."""
    if not isinstance(expr, dict):
        return expr
    (function, argument), *_ = expr.items()
    match function:
        case "Ref":
            return values[argument]
        case "Condition":
            return evaluate(conditions[argument], conditions, values)
        case "Fn::Equals":
            left, right = (evaluate(a, conditions, values) for a in argument)
            return left == right
        case "Fn::Not":
            return not evaluate(argument[0], conditions, values)
        case "Fn::And":
            return all(evaluate(a, conditions, values) for a in argument)
        case "Fn::Or":
            return any(evaluate(a, conditions, values) for a in argument)
        case "Fn::Join":
            separator, items = argument
            items = evaluate(items, conditions, values)
            return separator.join(items.split(",") if isinstance(items, str) else items)
    raise AssertionError(f"cannot evaluate {expr}")


def created(parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates from the translated template with these parameters."""
    doc = translated()
    values = {name: spec.get("Default") for name, spec in doc["Parameters"].items()} | parameters
    conditions = doc.get("Conditions", {})
    return {
        name: res
        for name, res in doc["Resources"].items()
        if "Condition" not in res or evaluate(conditions[res["Condition"]], conditions, values)
    }


def of_type(resources: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == kind}


def test_with_the_option_on_the_function_its_mapping_and_schedule_exist() -> None:
    resources = created(ON)
    function = resources["UsageReportFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Handler"] == "usage_report_fn.handler.lambda_handler"
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionName"] == {"Ref": "UsageReportFunction"}
    rules = [r for r in of_type(resources, "AWS::Events::Rule").values() if "Targets" in r["Properties"]]
    targets = [t for rule in rules for t in rule["Properties"]["Targets"]]
    assert [json.loads(t["Input"]) for t in targets] == [{"action": "report-usage"}]
    assert targets[0]["Arn"] == {"Fn::GetAtt": ["UsageReportFunction", "Arn"]}
    assert "StreamSpecification" in resources["AccountsTable"]["Properties"]


def test_the_role_is_the_basic_role_and_inline_statements_never_on_everything() -> None:
    resources = created(ON)
    role_name = resources["UsageReportFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_name]["Properties"]
    assert role["ManagedPolicyArns"] == [BASIC_ROLE]  # no AWSLambdaDynamoDBExecutionRole on "*"
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statements and all(s["Resource"] != "*" for s in statements)
    granted = {a for s in statements for a in s["Action"]}
    assert {"dynamodb:GetRecords", "dynamodb:GetShardIterator", "sqs:SendMessage"} <= granted
    # The M2M secret: a policy of its own on this role (the other functions' says nothing of it).
    secret_policies = [
        res["Properties"]
        for res in of_type(resources, "AWS::IAM::Policy").values()
        if {"Ref": role_name} in res["Properties"]["Roles"]
    ]
    assert [p["PolicyDocument"]["Statement"][0]["Action"] for p in secret_policies] == [["ssm:GetParameter"]]


def test_with_the_option_off_nothing_of_it_is_created() -> None:
    on, off = created(ON), created(OFF)
    added = set(on) - set(off)
    assert added and all("UsageReport" in name for name in added), added
    assert not of_type(off, "AWS::Lambda::EventSourceMapping")
    assert not of_type(off, "AWS::SQS::Queue")
    # The stream is an Fn::If that CloudFormation drops with the option off.
    spec = off["AccountsTable"]["Properties"]["StreamSpecification"]
    condition, _, if_false = spec["Fn::If"]
    doc = translated()
    values = {n: s.get("Default") for n, s in doc["Parameters"].items()} | OFF
    assert evaluate(doc["Conditions"][condition], doc["Conditions"], values) is False
    assert if_false == {"Ref": "AWS::NoValue"}


def test_the_default_is_off() -> None:
    assert set(created({})) == set(created(OFF))


@pytest.mark.parametrize("parameters", [ON, OFF])
def test_every_function_keeps_the_basic_role_only(parameters: dict[str, str]) -> None:
    resources = created(parameters)
    for name in of_type(resources, "AWS::Lambda::Function"):
        role = resources[resources[name]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert role["ManagedPolicyArns"] == [BASIC_ROLE], name
