"""The gateway's API Gateway behaviour, with a recording stand-in for the functions."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from planguard.errors import to_http_response

from local.functions import InvokeResult
from local.gateway import FunctionError, Gateway, GatewayError, error_response
from local.template import Route, Template, TemplateError, load_template, resolve_value
from tests import ROOT


class Recorder:
    """Plays the functions: records each event and answers with ``reply``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reply: InvokeResult = InvokeResult(True, {"statusCode": 200, "body": "{}"})

    def __call__(self, function: str, event: dict[str, Any]) -> InvokeResult:
        self.calls.append((function, event))
        return self.reply


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[Gateway]:
    gw = Gateway(load_template(), recorder, port=0, log=lambda _line: None)
    yield gw
    gw.stop()


def request(gateway: Gateway, method: str, target: str, body: bytes = b"", **headers: str) -> Any:
    pairs = [(name.replace("_", "-"), value) for name, value in headers.items()]
    return gateway.handle(method, target, [("Host", "127.0.0.1:3000"), *pairs], body, "127.0.0.1")


def test_the_event_is_payload_2(gateway: Gateway, recorder: Recorder) -> None:
    request(
        gateway,
        "PATCH",
        "/accounts/01JD3W5V6Q2XKQY7M5R8T9C0AB?a=1&a=2&b=",
        b'{"name":"x"}',
        Authorization="Bearer t",
        Content_Type="application/json",
    )
    function, event = recorder.calls[-1]
    assert function == "AccountsFunction"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "PATCH /accounts/{id}"
    assert event["rawPath"] == "/accounts/01JD3W5V6Q2XKQY7M5R8T9C0AB"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"id": "01JD3W5V6Q2XKQY7M5R8T9C0AB"}
    assert event["headers"]["authorization"] == "Bearer t"
    assert event["body"] == '{"name":"x"}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "PATCH" and context["http"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] and context["timeEpoch"] > 0 and context["time"]


def test_binary_bodies_are_base64(gateway: Gateway, recorder: Recorder) -> None:
    request(gateway, "POST", "/accounts", b"\xff\x00\xfe", Content_Type="application/octet-stream")
    event = recorder.calls[-1][1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00\xfe"


def test_the_response_mapping(gateway: Gateway, recorder: Recorder) -> None:
    recorder.reply = InvokeResult(
        True,
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-Thing": "1"},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        },
    )
    response = request(gateway, "GET", "/usage")
    assert response.status == 201 and response.body == b"\x89PNG"
    assert ("x-local-function", "AccountsFunction") in response.headers
    recorder.reply = InvokeResult(True, {"no": "statusCode"})  # API Gateway: a bare value is a 200 JSON body
    response = request(gateway, "GET", "/usage")
    assert (response.status, json.loads(response.body)) == (200, {"no": "statusCode"})
    recorder.reply = InvokeResult(True, {"statusCode": "teapot"})
    assert request(gateway, "GET", "/usage").status == 502


def test_unknown_routes_never_reach_a_function(gateway: Gateway, recorder: Recorder) -> None:
    response = request(gateway, "DELETE", "/usage")
    assert response.status == 404
    assert json.loads(response.body)["error"]["code"] == "NOT_FOUND"
    assert recorder.calls == []


def test_routes_match_exactly_with_path_parameters() -> None:
    route = Route("GET", "/items/{id}", "Item")
    assert route.match("GET", "/items/a%20b") == {"id": "a%20b"}  # the gateway unquotes it
    assert route.match("GET", "/items/a/b") is None
    assert route.match("POST", "/items/a") is None
    assert Route("GET", "/items", "Items").match("GET", "/items/") is None


def test_template_expressions_resolve_locally() -> None:
    params = {"Domain": "https://x.kinde.com"}
    assert (
        resolve_value({"Fn::Sub": "${Domain}/.well-known/jwks"}, params, {})
        == "https://x.kinde.com/.well-known/jwks"
    )
    assert resolve_value({"Fn::Sub": "${T}-${AWS::Region}"}, {}, {"T": "Tbl"}) == "Tbl-us-east-1"
    with pytest.raises(TemplateError):
        resolve_value({"Fn::GetAtt": ["T", "Arn"]}, {}, {})


def test_every_function_mounts_the_templates_layer() -> None:
    template = load_template()
    for spec in template.functions().values():
        assert (Path(template.path.parent) / "layers" / "common").resolve() in spec.layers


def test_a_template_without_cors_answers_no_preflight(tmp_path: Path, recorder: Recorder) -> None:
    (tmp_path / "template.yaml").write_text(
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: .\n      Handler: h.main\n      Events:\n        Any:\n          Type: HttpApi\n"
        "          Properties: {Path: /x, Method: OPTIONS}\n"
    )
    gw = Gateway(Template(tmp_path / "template.yaml"), recorder, port=0, log=lambda _line: None)
    try:
        gw.handle(
            "OPTIONS", "/x", [("Origin", "http://a"), ("Access-Control-Request-Method", "GET")], b"", "::1"
        )
        assert recorder.calls and recorder.calls[0][0] == "Fn"  # no CORS configured: the route gets it
    finally:
        gw.stop()


def raw_exchange(gateway: Gateway, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on a raw connection, read until the gateway hangs up (or a whole response)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= int(length[0].split(b":")[1]):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: \xb2\r\n\r\n",  # "\u00b2" (latin-1): str.isdigit() is True, int() raises
        b"Content-Length: -5\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",  # no client of this API sends one
    ],
)
def test_unreadable_body_framing_is_a_400(
    gateway: Gateway, recorder: Recorder, capfd: pytest.CaptureFixture[str], framing: bytes
) -> None:
    gateway.start()
    status, headers, body = raw_exchange(gateway, b"POST /accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing)
    assert status == 400
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "BAD_REQUEST" and error["message"]
    assert recorder.calls == []
    # the gateway keeps serving, and said nothing on the console
    status, _, _ = raw_exchange(gateway, b"GET /usage HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200 and len(recorder.calls) == 1
    assert "Traceback" not in capfd.readouterr().err


def test_the_gateways_own_errors_use_the_layers_mapping(gateway: Gateway, recorder: Recorder) -> None:
    response = request(gateway, "DELETE", "/usage")  # no route
    assert (
        response.body
        == json.dumps(json.loads(response.body), ensure_ascii=False, separators=(",", ":")).encode()
    )  # compact JSON
    assert json.loads(response.body)["error"] == {
        "code": "NOT_FOUND",
        "message": "No route for DELETE /usage in template.yaml.",
        "method": "DELETE",
        "path": "/usage",
    }
    recorder.reply = InvokeResult(False, error={"errorType": "KeyError", "errorMessage": "'x'"})
    response = request(gateway, "GET", "/usage")
    expected = to_http_response(FunctionError("AccountsFunction failed: KeyError: 'x'"))
    assert response.status == expected["statusCode"] == 502
    assert response.body == expected["body"].encode()
    assert ("Content-Type", "application/json") in response.headers
    recorder.reply = InvokeResult(False, error={"errorType": "Sandbox.Timedout"}, timed_out=True)
    response = request(gateway, "GET", "/usage")
    assert response.status == 504 and json.loads(response.body)["error"]["code"] == "FUNCTION_TIMEOUT"
    failed = error_response(GatewayError("The local gateway failed: boom"))
    assert (failed.status, failed.body) == (
        500,
        b'{"error":{"code":"GATEWAY_ERROR","message":"The local gateway failed: boom"}}',
    )


def test_what_http_server_refuses_still_gets_the_error_body(gateway: Gateway, recorder: Recorder) -> None:
    """A header line over 64 KiB is refused before routing (found by the API fuzzer): the answer is
    the API's error body, never the standard library's HTML page."""
    gateway.start()
    response = requests.get(
        f"{gateway.url}/accounts", headers={"authorization": "Bearer " + "x" * 70_000}, timeout=30
    )
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "FOO"])
def test_a_method_with_no_route_is_a_404_with_the_error_body(
    gateway: Gateway, recorder: Recorder, method: str
) -> None:
    """API Gateway answers a method no route has with 404 (http.server alone would say 501)."""
    gateway.start()
    status, headers, body = raw_exchange(
        gateway, f"{method} /usage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == {
        "code": "NOT_FOUND",
        "message": f"No route for {method} /usage in template.yaml.",
        "method": method,
        "path": "/usage",
    }
    assert recorder.calls == []
    # the connection and the gateway keep serving
    status, _, _ = raw_exchange(gateway, b"GET /usage HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 200 and len(recorder.calls) == 1


@pytest.mark.parametrize(
    "target",
    [
        b"/" + b"a" * 300,  # one segment longer than a file name may be
        b"/" + b"a" * 300 + b"/index.html",
        b"/x" * 3000,  # a path longer than the file system takes
        b"/" + b"%ff%fe%00" * 10 + b".js",  # odd bytes, escaped
        b"/\xff\xfe\x80.html",  # odd bytes, raw
        b"/" + b"%F0%9F%92%A9" * 80,  # 80 characters, but 320 bytes: too long a file name
    ],
)
def test_a_static_path_the_file_system_refuses_is_a_404(
    gateway: Gateway, recorder: Recorder, capfd: pytest.CaptureFixture[str], target: bytes
) -> None:
    """Nothing a client sends to the dashboard's files is a 5xx, nor shows where the checkout is."""
    gateway.start()
    for method in (b"GET", b"HEAD"):
        status, headers, body = raw_exchange(
            gateway, method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert status == 404, (method, target[:40])
        assert headers["content-type"] == "application/json"
        if method == b"GET":
            assert json.loads(body)["error"]["code"] == "NOT_FOUND"
            assert str(ROOT).encode() not in body
    assert recorder.calls == []
    assert "Traceback" not in capfd.readouterr().err
