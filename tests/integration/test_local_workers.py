"""Sandboxes: one process and environment per function, warm reuse, crashes and timeouts contained."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator

import pytest

from local.config import function_environment
from local.functions import Functions
from local.gateway import lambda_to_http
from local.template import Template

LOGS: list[str] = []  # what the workers' handlers printed, as the dev console would show it

HANDLER = """
import json, os, sys, time

def main(event, context):
    if event.get("crash"):
        os._exit(3)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("raise"):
        raise ValueError("boom")
    print("a log line from the handler")
    return {
        "pid": os.getpid(),
        "env": {k: os.environ.get(k) for k in ("SHARED", "ONLY_ECHO", "TABLE", "DYNAMODB_ENDPOINT_URL")},
        "path0": sys.path[0],
        "remaining": context.get_remaining_time_in_millis(),
        "name": context.function_name,
    }
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 2
    Layers: [!Ref Shared]
    Environment:
      Variables:
        SHARED: !Sub "${Table}-shared"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: PK, AttributeType: S}]
      KeySchema: [{AttributeName: PK, KeyType: HASH}]
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo
      Handler: echo_fn.handler.main
      Environment:
        Variables:
          ONLY_ECHO: "1"
          TABLE: !Ref Table
  OtherFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: other
      Handler: other_fn.handler.main
  BrokenFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: broken
      Handler: missing_module.handler.main
"""


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Functions]:
    root = tmp_path_factory.mktemp("functions")
    for code_uri, package in (("echo", "echo_fn"), ("other", "other_fn")):
        (root / code_uri / package).mkdir(parents=True)
        (root / code_uri / package / "__init__.py").write_text("")
        (root / code_uri / package / "handler.py").write_text(textwrap.dedent(HANDLER))
    (root / "broken").mkdir()
    (root / "layer").mkdir()
    (root / "template.yaml").write_text(TEMPLATE)
    template = Template(root / "template.yaml")
    environments = {
        name: function_environment(
            template, name, issuer="http://127.0.0.1:9", dynamodb_endpoint="http://127.0.0.1:8", overrides={}
        )
        for name in template.functions()
    }
    pools = Functions(template, environments, log=LOGS.append)
    yield pools
    pools.stop()


def test_each_function_has_its_own_environment_and_code_path(functions: Functions) -> None:
    echo = functions.invoke("EchoFunction", {}).payload
    other = functions.invoke("OtherFunction", {}).payload
    assert echo["env"] == {
        "SHARED": "Table-shared",
        "ONLY_ECHO": "1",
        "TABLE": "Table",
        "DYNAMODB_ENDPOINT_URL": "http://127.0.0.1:8",
    }
    assert other["env"]["ONLY_ECHO"] is None and other["env"]["TABLE"] is None
    assert echo["pid"] != other["pid"]
    assert echo["path0"].endswith("/echo") and other["path0"].endswith("/other")
    assert echo["name"] == "EchoFunction" and 0 < echo["remaining"] <= 2000


def test_workers_stay_warm_and_logs_reach_the_console(functions: Functions) -> None:
    first = functions.invoke("EchoFunction", {}).payload["pid"]
    assert functions.invoke("EchoFunction", {}).payload["pid"] == first
    assert "[EchoFunction] a log line from the handler" in LOGS


def test_an_exception_is_a_502_and_the_worker_lives_on(functions: Functions) -> None:
    before = functions.invoke("EchoFunction", {}).payload["pid"]
    result = functions.invoke("EchoFunction", {"raise": True})
    assert not result.ok and result.error["errorType"] == "ValueError"
    response = lambda_to_http(result, "EchoFunction")
    assert response.status == 502
    assert json.loads(response.body)["error"]["code"] == "FUNCTION_ERROR"
    assert functions.invoke("EchoFunction", {}).payload["pid"] == before


def test_a_crashed_worker_is_replaced(functions: Functions) -> None:
    before = functions.invoke("EchoFunction", {}).payload["pid"]
    crashed = functions.invoke("EchoFunction", {"crash": True})
    assert not crashed.ok and crashed.error["errorType"] == "Runtime.ExitError"
    after = functions.invoke("EchoFunction", {})
    assert after.ok and after.payload["pid"] != before


def test_a_timeout_kills_the_sandbox_and_answers_504(functions: Functions) -> None:
    result = functions.invoke("OtherFunction", {"sleep": 10})
    assert result.timed_out and "Task timed out after 2.00 seconds" in result.error["errorMessage"]
    assert lambda_to_http(result, "OtherFunction").status == 504
    assert functions.invoke("OtherFunction", {}).ok


def test_an_import_error_is_reported_not_raised(functions: Functions) -> None:
    result = functions.invoke("BrokenFunction", {})
    assert not result.ok and result.error["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in result.error["errorMessage"]


def test_concurrent_requests_share_the_one_warm_sandbox(functions: Functions) -> None:
    pids: list[int] = []
    start = threading.Barrier(3)

    def call() -> None:
        start.wait()
        pids.append(functions.invoke("EchoFunction", {"sleep": 0.2}).payload["pid"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pids) == 3 and len(set(pids)) == 1


def test_warm_reports_init_errors(functions: Functions) -> None:
    errors = functions.warm()
    assert set(errors) == {"BrokenFunction"} and "Runtime.ImportModuleError" in errors["BrokenFunction"]
