"""What a team deploys to run Plan Guard: the access log, the alarms, throttling, log retention.

CloudFormation and cfn-lint check the shapes; these tests check the meaning: which fields the
access log has (and that nothing secret is among them), that every function and the routes Kinde
depends on have alarms, that every alarm can notify the optional topic, and that per-route
settings name routes that exist (API Gateway refuses an unknown route key only at deploy time).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.template import load_template
from tests import ROOT

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
FUNCTIONS = sorted(TEMPLATE.of_type("AWS::Serverless::Function"))
ALARMS = TEMPLATE.of_type("AWS::CloudWatch::Alarm")
HTTP_API = "HttpApi"
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "apiId": "$context.apiId",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
    "sourceIp": "$context.identity.sourceIp",
    "responseLength": "$context.responseLength",
}
# Request data a client controls or that carries a credential: none of it may reach the log.
FORBIDDEN_IN_ACCESS_LOG = re.compile(
    r"\$request\.|\$input|header|authoriz|apikey|api_key|x-api-key|body|querystring|query|"
    r"\$context\.path|rawpath|identity\.(?!sourceIp\b)|\$context\.authorizer|user",
    re.IGNORECASE,
)
TOPIC_ACTIONS = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def http_api() -> dict[str, Any]:
    props: dict[str, Any] = RESOURCES[HTTP_API]["Properties"]
    return props


def access_log_format() -> str:
    fmt: str = http_api()["AccessLogSettings"]["Format"]
    return fmt


def access_log_fields() -> dict[str, str]:
    """The format's fields; a bare ``$context.x`` (a number) is quoted to read it as JSON."""
    quoted = re.sub(r":\s*(\$context\.[A-Za-z.]+)\s*(?=[,}])", r':"\1"', access_log_format())
    fields: dict[str, str] = json.loads(quoted)
    return fields


def render_access_log(values: dict[str, str]) -> dict[str, Any]:
    """One line as API Gateway writes it: every variable replaced by its value for a request."""
    line = re.sub(r"\$context\.[A-Za-z.]+", lambda match: values[match.group(0)], access_log_format())
    rendered: dict[str, Any] = json.loads(line)
    return rendered


def sample_values(status: int = 503, route_key: str = "GET /usage") -> dict[str, str]:
    values = {variable: "x" for variable in ACCESS_LOG_FIELDS.values()}
    values.update(
        {"$context.status": str(status), "$context.routeKey": route_key, "$context.apiId": "a1b2c3"}
    )
    return values


def route_keys_of(function: str) -> list[str]:
    return sorted(route.route_key for route in TEMPLATE.routes() if route.function == function)


def metric_filter_for(namespace: str, metric: str) -> dict[str, Any]:
    for resource in TEMPLATE.of_type("AWS::Logs::MetricFilter").values():
        for transformation in resource["Properties"]["MetricTransformations"]:
            if (transformation["MetricNamespace"], transformation["MetricName"]) == (namespace, metric):
                props: dict[str, Any] = resource["Properties"]
                return props
    raise AssertionError(f"no metric filter publishes {namespace}/{metric}")


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def alarm_on(namespace: str, metric: str, **wanted: Any) -> list[str]:
    """Alarms on a single metric (not metric math) with at least these dimensions."""
    return sorted(
        name
        for name, alarm in ALARMS.items()
        if (alarm["Properties"].get("Namespace"), alarm["Properties"].get("MetricName"))
        == (namespace, metric)
        and wanted.items() <= dimensions(alarm["Properties"]).items()
    )


def alarm_suffix(name: str) -> str:
    sub = ALARMS[name]["Properties"]["AlarmName"]["Fn::Sub"]
    assert sub.startswith("${AWS::StackName}-"), name
    suffix: str = sub.removeprefix("${AWS::StackName}-")
    return suffix


# -- 1. access log ------------------------------------------------------------------------------------
def test_the_access_log_has_exactly_the_operational_fields() -> None:
    assert access_log_fields() == ACCESS_LOG_FIELDS


def test_nothing_secret_can_reach_the_access_log() -> None:
    fmt = access_log_format()
    for variable in re.findall(r"\$[A-Za-z][\w.\-]*", fmt):
        assert not FORBIDDEN_IN_ACCESS_LOG.search(variable), variable
    assert not FORBIDDEN_IN_ACCESS_LOG.search(fmt.replace("$context.identity.sourceIp", ""))


def test_the_secret_check_can_fail() -> None:
    for leaky in (
        "$request.header.authorization",
        "$request.header.x-api-key",
        "$request.querystring.limit",
        "$context.path",
        "$context.identity.userAgent",
        "$context.authorizer.claims.sub",
        "$request.body.accountNumber",
        "$input.body",
    ):
        assert FORBIDDEN_IN_ACCESS_LOG.search(leaky), leaky


def test_an_access_log_line_is_json_with_a_numeric_status() -> None:
    line = render_access_log(sample_values(status=503))
    assert line["status"] == 503 and line["routeKey"] == "GET /usage" and line["apiId"] == "a1b2c3"


def test_the_access_log_goes_to_a_log_group_with_the_retention_parameter() -> None:
    destination = http_api()["AccessLogSettings"]["DestinationArn"]
    assert destination == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    group = RESOURCES["HttpApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    retention = TEMPLATE.doc["Parameters"]["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"] and max(retention["AllowedValues"]) <= 3653


# -- 2. alarms ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_errors_and_a_throttles_alarm(function: str, metric: str) -> None:
    alarms = alarm_on("AWS/Lambda", metric, FunctionName={"Ref": function})
    assert alarms, f"{function} has no {metric} alarm"
    for name in alarms:
        props = ALARMS[name]["Properties"]
        assert props["Statistic"] == "Sum" and props["Threshold"] >= 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def route_5xx_alarms(route_key: str) -> list[str]:
    return sorted(
        name
        for name, alarm in ALARMS.items()
        if dimensions(alarm["Properties"]).get("RouteKey") == route_key
        and dimensions(alarm["Properties"]).get("ApiId") == {"Ref": HTTP_API}
    )


@pytest.mark.parametrize(
    "route_key", route_keys_of("UsageCountFunction") + route_keys_of("KindeWebhookFunction")
)
def test_the_usage_and_webhook_routes_have_a_5xx_alarm(route_key: str) -> None:
    """Per-route 5xx from the access log: the filter counts lines with a 5xx status by API id and
    route key; the alarm reads the count of this route of this stack's API."""
    alarms = route_5xx_alarms(route_key)
    assert len(alarms) == 1, (route_key, alarms)
    props = ALARMS[alarms[0]]["Properties"]
    metric_filter = metric_filter_for(props["Namespace"], props["MetricName"])
    assert metric_filter["LogGroupName"] == {"Ref": "HttpApiAccessLogGroup"}
    (transformation,) = metric_filter["MetricTransformations"]
    assert {d["Key"]: d["Value"] for d in transformation["Dimensions"]} == {
        "ApiId": "$.apiId",
        "RouteKey": "$.routeKey",
    }
    assert transformation["MetricValue"] == "1"
    assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert props["TreatMissingData"] == "notBreaching"  # no 5xx line, no data point
    # The filter's pattern against lines the access log would write for this route.
    pattern = re.fullmatch(r"\{ \$\.(\w+) >= (\d+) \}", metric_filter["FilterPattern"])
    assert pattern, metric_filter["FilterPattern"]
    field, floor = pattern.group(1), int(pattern.group(2))
    for status, counted in ((500, True), (503, True), (504, True), (429, False), (401, False), (200, False)):
        line = render_access_log(sample_values(status=status, route_key=route_key))
        assert (line[field] >= floor) is counted, status
        assert line["routeKey"] == route_key and line["apiId"] == "a1b2c3"


def test_a_route_without_an_alarm_is_caught() -> None:
    assert route_5xx_alarms("GET /no-such-route") == []
    assert alarm_on("AWS/Lambda", "Errors", FunctionName={"Ref": "NoSuchFunction"}) == []


def test_the_api_5xx_rate_alarm() -> None:
    props = ALARMS["Api5xxRateAlarm"]["Properties"]
    metrics = {m["Id"]: m for m in props["Metrics"]}
    returned = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert (
        len(returned) == 1
        and "errors" in returned[0]["Expression"]
        and "requests" in returned[0]["Expression"]
    )
    for metric_id, name in (("errors", "5xx"), ("requests", "Count")):
        stat = metrics[metric_id]["MetricStat"]
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]) == ("AWS/ApiGateway", name)
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": {"Ref": HTTP_API}}]
        assert stat["Stat"] == "Sum"


def table_operations(table: str) -> set[str]:
    """The DynamoDB operations the functions may call on ``table`` (their IAM actions)."""
    operations = set()
    for function in FUNCTIONS:
        for policy in RESOURCES[function]["Properties"].get("Policies", []):
            for statement in policy["Statement"]:
                if statement["Resource"] == {"Fn::GetAtt": [table, "Arn"]}:
                    operations |= {a.removeprefix("dynamodb:") for a in statement["Action"]}
    # A permission for a transaction's ConditionCheck item: its calls are TransactWriteItems.
    return operations - {"ConditionCheckItem"}


@pytest.mark.parametrize("table", sorted(TEMPLATE.of_type("AWS::DynamoDB::Table")))
@pytest.mark.parametrize("metric", ["SystemErrors", "ThrottledRequests"])
def test_every_table_has_dynamodb_alarms_summed_over_its_operations(table: str, metric: str) -> None:
    """DynamoDB publishes these per table AND operation: an alarm on the table alone sees nothing."""
    found = []
    for name, alarm in ALARMS.items():
        metrics = alarm["Properties"].get("Metrics", [])
        stats = [m["MetricStat"] for m in metrics if "MetricStat" in m]
        if not stats or any(
            (s["Metric"]["Namespace"], s["Metric"]["MetricName"]) != ("AWS/DynamoDB", metric) for s in stats
        ):
            continue
        by_operation = {}
        for m in metrics:
            if "MetricStat" in m:
                dims = {d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"]}
                if dims["TableName"] == {"Ref": table}:
                    by_operation[dims["Operation"]] = m["Id"]
        if not by_operation:
            continue
        found.append(name)
        expected = table_operations(table) | ({"TransactWriteItems"} if table == "AccountsTable" else set())
        assert set(by_operation) >= expected, (name, expected - set(by_operation))
        (total,) = [m for m in metrics if m.get("ReturnData", True)]
        terms = re.findall(r"FILL\((\w+), 0\)", total["Expression"])
        assert sorted(terms) == sorted(by_operation.values()), total["Expression"]
        assert total["Expression"] == " + ".join(f"FILL({t}, 0)" for t in terms)
    assert len(found) == 1, (table, metric, found)


def test_every_alarm_has_a_threshold_a_period_and_the_optional_topic() -> None:
    assert TEMPLATE.doc["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert TEMPLATE.doc["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }
    assert len(ALARMS) >= 2 * len(FUNCTIONS) + 3
    for name, alarm in ALARMS.items():
        props = alarm["Properties"]
        assert isinstance(props["Threshold"], int | float), name
        assert props["ComparisonOperator"] and props["EvaluationPeriods"] >= 1, name
        periods = (
            [props.get("Period")]
            if "Period" in props
            else [m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m]
        )
        assert periods and all(period in (60, 300, 900, 3600) for period in periods), name
        assert props["AlarmActions"] == TOPIC_ACTIONS and props["OKActions"] == TOPIC_ACTIONS, name
        assert props["AlarmDescription"], name


def test_the_operations_guide_says_what_every_alarm_means_and_what_to_do() -> None:
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    rows = [line for line in guide.splitlines() if line.startswith("| `") and line.count(" | ") >= 3]
    for name in ALARMS:
        suffix = alarm_suffix(name)
        assert [row for row in rows if f"`{suffix}`" in row.split(" | ")[0]], f"no alarm row for {suffix}"
    assert len({alarm_suffix(name) for name in ALARMS}) == len(ALARMS)  # one name per alarm


# -- 5. security pass ---------------------------------------------------------------------------------
def test_per_route_throttling_names_only_routes_of_the_template() -> None:
    """A RouteSettings key that is not exactly a route key fails the stage at deploy time."""
    route_keys = {route.route_key for route in TEMPLATE.routes()}
    settings = http_api()["RouteSettings"]
    assert set(settings) <= route_keys, set(settings) - route_keys
    default = http_api()["DefaultRouteSettings"]
    without_user_token = route_keys_of("KindeWebhookFunction") + route_keys_of("UsageCountFunction")
    assert sorted(settings) == sorted(without_user_token)
    for key in without_user_token:
        # A route's settings replace the default ones: both limits, each below the default.
        assert set(settings[key]) == {"ThrottlingBurstLimit", "ThrottlingRateLimit"}, key
        for limit in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
            assert 0 < settings[key][limit] < default[limit], (key, limit)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_a_log_group_with_the_retention_parameter(function: str) -> None:
    groups = [
        resource["Properties"]
        for resource in TEMPLATE.of_type("AWS::Logs::LogGroup").values()
        if resource["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
    ]
    assert len(groups) == 1, function
    assert groups[0]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_no_reserved_concurrency_and_the_reason_is_written() -> None:
    reserved = [name for name in FUNCTIONS if "ReservedConcurrentExecutions" in RESOURCES[name]["Properties"]]
    if "ReservedConcurrentExecutions" in TEMPLATE.doc["Globals"]["Function"] or reserved:
        return  # a reservation is the other acceptable answer
    assert "No ReservedConcurrentExecutions, on purpose" in (ROOT / "template.yaml").read_text()
    assert "No function reserves concurrency" in (ROOT / "docs" / "OPERATIONS.md").read_text()
