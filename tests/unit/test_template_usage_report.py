"""The usage reports in template.yaml: what only AWS runs (the stream, the mapping's filter,
retries, bisection and on-failure queue, the schedule) checked by assertions; the translated
template with the option on and off is tests/integration/test_template_translation.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from planguard.keys import USAGE_SK
from usage_report_fn import handler

from local.template import load_template
from local.usage_stream import RESEND_ACTION, STREAM_FUNCTION, MappingSettings

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
CONDITION = "ReportUsage"
MAPPING = "UsageReportStreamMapping"
QUEUE = "UsageReportFailureQueue"


def mapping() -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[MAPPING]["Properties"]
    return props


def usage_report_resources() -> list[str]:
    """Every resource named for the usage reports, or naming the function, its mapping or queue."""
    names = {STREAM_FUNCTION, MAPPING, QUEUE}
    return sorted(
        name
        for name, res in RESOURCES.items()
        if name.startswith("UsageReport") or any(n in json.dumps(res) for n in names)
    )


def test_the_option_is_off_by_default_and_every_part_hangs_on_it() -> None:
    assert TEMPLATE.doc["Parameters"]["ReportUsageToKinde"]["Default"] == "false"
    assert TEMPLATE.doc["Conditions"][CONDITION] == {"Fn::Equals": [{"Ref": "ReportUsageToKinde"}, "true"]}
    parts = usage_report_resources()
    assert {STREAM_FUNCTION, MAPPING, QUEUE, "UsageReportSkipsAlarm", "UsageReportFailuresAlarm"} <= set(
        parts
    )
    for name in parts:
        assert RESOURCES[name].get("Condition") == CONDITION, name
        assert not TEMPLATE.deployed(name) and TEMPLATE.deployed(name, {"ReportUsageToKinde": "true"})
    outputs = [n for n, o in TEMPLATE.doc["Outputs"].items() if STREAM_FUNCTION in json.dumps(o)]
    assert outputs and all(TEMPLATE.doc["Outputs"][n].get("Condition") == CONDITION for n in outputs)


def test_the_stream_exists_only_with_the_option() -> None:
    spec = RESOURCES["AccountsTable"]["Properties"]["StreamSpecification"]
    assert spec == {"Fn::If": [CONDITION, {"StreamViewType": "NEW_AND_OLD_IMAGES"}, {"Ref": "AWS::NoValue"}]}


def test_the_mapping_filters_to_the_counter_items() -> None:
    filters = mapping()["FilterCriteria"]["Filters"]
    assert [json.loads(f["Pattern"]) for f in filters] == [{"dynamodb": {"Keys": {"SK": {"S": [USAGE_SK]}}}}]
    assert mapping()["EventSourceArn"] == {"Fn::GetAtt": ["AccountsTable", "StreamArn"]}
    assert mapping()["FunctionName"] == {"Ref": STREAM_FUNCTION}


def test_failures_are_partial_bisected_bounded_and_end_in_the_queue() -> None:
    props = mapping()
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 86400
    assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [QUEUE, "Arn"]}}}
    assert MappingSettings(TEMPLATE).max_retries == props["MaximumRetryAttempts"]  # the local stack's too
    queue = RESOURCES[QUEUE]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and queue["MessageRetentionPeriod"] == 14 * 86400


def statements() -> list[dict[str, Any]]:
    policies = RESOURCES[STREAM_FUNCTION]["Properties"]["Policies"]
    return [statement for policy in policies for statement in policy["Statement"]]


def test_the_role_is_inline_statements_on_the_table_its_stream_and_the_queue() -> None:
    function = RESOURCES[STREAM_FUNCTION]["Properties"]
    assert all(event["Type"] != "DynamoDB" for event in function.get("Events", {}).values())
    by_resource = {json.dumps(s["Resource"], sort_keys=True): sorted(s["Action"]) for s in statements()}
    table = json.dumps({"Fn::GetAtt": ["AccountsTable", "Arn"]})
    stream = json.dumps({"Fn::GetAtt": ["AccountsTable", "StreamArn"]}, sort_keys=True)
    queue = json.dumps({"Fn::GetAtt": [QUEUE, "Arn"]}, sort_keys=True)
    streams = json.dumps({"Fn::Sub": "${AccountsTable.Arn}/stream/*"})
    assert by_resource[table] == ["dynamodb:GetItem", "dynamodb:Scan"]  # reads only, never a write
    assert by_resource[stream] == [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    ]
    assert by_resource[streams] == ["dynamodb:ListStreams"]
    assert by_resource[queue] == ["sqs:SendMessage"]
    assert all(s["Effect"] == "Allow" and s["Resource"] != "*" for s in statements())


def test_the_schedule_resends_every_count_daily_by_default() -> None:
    parameter = TEMPLATE.doc["Parameters"]["UsageReportSchedule"]
    assert parameter["Default"] == "rate(1 day)"
    (event,) = RESOURCES[STREAM_FUNCTION]["Properties"]["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "UsageReportSchedule"}
    assert json.loads(event["Properties"]["Input"]) == {"action": RESEND_ACTION}
    assert handler.RESEND_ACTION == RESEND_ACTION


@pytest.mark.parametrize("schedule", ["rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)"])
def test_the_schedule_parameter_takes_eventbridge_expressions(schedule: str) -> None:
    import re

    assert re.fullmatch(TEMPLATE.doc["Parameters"]["UsageReportSchedule"]["AllowedPattern"], schedule)


def test_the_skip_alarm_watches_the_metric_the_function_publishes() -> None:
    alarm = RESOURCES["UsageReportSkipsAlarm"]["Properties"]
    env = TEMPLATE.doc["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    assert f'"{alarm["MetricName"]}"' in Path(handler.__file__ or "").read_text()
    assert alarm["Threshold"] == 1 and alarm["TreatMissingData"] == "notBreaching"


def test_the_failure_alarm_watches_the_queue() -> None:
    alarm = RESOURCES["UsageReportFailuresAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [QUEUE, "QueueName"]}}]


def test_the_function_reads_the_m2m_secret_and_the_option_needs_the_client() -> None:
    policy = RESOURCES["UsageReportM2MSecretReadPolicy"]
    assert policy["Condition"] == CONDITION
    assert policy["Properties"]["Roles"] == [{"Ref": f"{STREAM_FUNCTION}Role"}]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["ssm:GetParameter"]
    assert "${KindeM2MClientSecretParameterName}" in statement["Resource"]["Fn::Sub"]
    rule = TEMPLATE.doc["Rules"]["ReportingUsageNeedsTheM2MClient"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "ReportUsageToKinde"}, "true"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KindeM2MClientId"}, ""]}]}
    env = TEMPLATE.functions()[STREAM_FUNCTION].environment
    assert {"KINDE_M2M_CLIENT_ID", "KINDE_M2M_CLIENT_SECRET_PARAM", "KINDE_FEATURE_CODE"} <= set(env)
