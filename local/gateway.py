"""A local API Gateway (HTTP API, payload 2.0) in front of the functions, routed by ``template.yaml``.

The routes, and the CORS answers, come from the template only, so the local API cannot list a
route that ``sam deploy`` would not create, nor miss one it would. Each request becomes the event
API Gateway would send; the function's answer becomes the HTTP response the way API Gateway maps
it (status, headers, cookies, base64 bodies, a bare JSON value as 200).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from planguard.errors import (
    JSON_HEADERS,
    ApiError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    to_http_response,
)

from local.background import BackgroundHTTPServer
from local.lambda_runtime import http_api_event
from local.template import CorsConfig, Route, Template
from local.workers import InvokeResult, LogSink, console

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
Invoker = Callable[[str, dict[str, Any]], InvokeResult]
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
_DIGITS = re.compile(r"[0-9]+")  # 1*DIGIT, ASCII only: int() reads "٣" as 3 and fails on "²"
_HEX = re.compile(rb"[0-9A-Fa-f]+")


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


# Failures only API Gateway itself answers; they go through the layer's one error mapping too.
class FunctionError(ApiError):
    status = 502
    code = "FUNCTION_ERROR"


class FunctionTimeout(ApiError):
    status = 504
    code = "FUNCTION_TIMEOUT"


class GatewayError(ApiError):
    status = 500
    code = "GATEWAY_ERROR"


def error_response(error: ApiError) -> HttpResponse:
    """The error body of DESIGN.md §2, for failures the gateway itself answers: the layer's
    ``to_http_response`` (the one error-to-HTTP mapping), as an HTTP response."""
    response = to_http_response(error)
    headers = [(str(name), str(value)) for name, value in response["headers"].items()]
    return HttpResponse(int(response["statusCode"]), headers, str(response["body"]).encode())


class Router:
    """Matches method + path like API Gateway: the most specific route wins, ``{x+}`` last."""

    def __init__(self, routes: Iterable[Route]) -> None:
        def specificity(route: Route) -> tuple[int, int, int]:
            segments = route.path.strip("/").split("/")
            literal = sum(1 for segment in segments if not segment.startswith("{"))
            greedy = 1 if route.path.endswith("+}") else 0
            return (greedy, -literal, -len(segments))

        self.routes = sorted(routes, key=specificity)
        self._patterns = [(route, route.pattern) for route in self.routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, pattern in self._patterns:
            if route.method not in (method, "ANY"):
                continue
            found = pattern.match(path)
            if found:
                return route, {name: unquote(value) for name, value in found.groupdict().items()}
        return None


def _cors_headers(cors: CorsConfig, origin: str) -> list[tuple[str, str]]:
    if not cors.allows_origin(origin):
        return []
    allow = "*" if "*" in cors.allow_origins and not cors.allow_credentials else origin
    headers = [("Access-Control-Allow-Origin", allow)]
    if allow != "*":
        headers.append(("Vary", "Origin"))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return headers


def _preflight(cors: CorsConfig, origin: str) -> HttpResponse:
    """API Gateway answers preflights itself when CORS is configured, without calling a function."""
    headers = _cors_headers(cors, origin)
    if headers:
        if cors.allow_methods:
            headers.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods)))
        if cors.allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(cors.max_age)))
    return HttpResponse(204, headers)


def lambda_to_http(result: InvokeResult, function: str) -> HttpResponse:
    """API Gateway's mapping of a payload 2.0 function result (or failure) to HTTP."""
    if not result.ok:
        if result.timed_out:
            return error_response(FunctionTimeout(f"{function} timed out: {result.error_text}"))
        return error_response(FunctionError(f"{function} failed: {result.error_text}"))
    payload = result.payload
    if not (isinstance(payload, dict) and "statusCode" in payload):
        body = json.dumps(payload, ensure_ascii=False).encode()
        return HttpResponse(200, list(JSON_HEADERS.items()), body)
    try:
        status = int(payload["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(status)
        raw_body = payload.get("body")
        if raw_body is None:
            body = b""
        elif not isinstance(raw_body, str):
            body = json.dumps(raw_body, ensure_ascii=False).encode()
        elif payload.get("isBase64Encoded"):
            body = base64.b64decode(raw_body, validate=True)
        else:
            body = raw_body.encode()
    except (TypeError, ValueError, binascii.Error) as exc:
        return error_response(FunctionError(f"{function} returned a malformed response: {exc}"))
    headers = [
        (str(name), str(value))
        for name, value in (payload.get("headers") or {}).items()
        if str(name).lower() not in _HOP_BY_HOP
    ]
    headers += [("Set-Cookie", str(cookie)) for cookie in payload.get("cookies") or []]
    return HttpResponse(status, headers, body)


class Gateway(BackgroundHTTPServer):
    """The HTTP server: binds at construction (so a busy port fails early), serves on ``start``."""

    def __init__(
        self,
        template: Template,
        invoke: Invoker,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        log: LogSink = console,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.router = Router(template.routes())
        self.cors = template.http_api_cors(parameters)
        self._invoke = invoke
        self._log = log
        super().__init__(host, port, self._handler_class(), "gateway")

    # -- one request -------------------------------------------------------------------------
    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> HttpResponse:
        started = time.monotonic()
        method = method.upper()
        parts = urlsplit(target)
        path = parts.path or "/"
        merged: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
        origin = merged.get("origin")
        if self.cors and origin and method == "OPTIONS" and "access-control-request-method" in merged:
            return _preflight(self.cors, origin)
        matched = self.router.match(method, path)
        if matched is None:
            response = error_response(
                NotFound(
                    f"No route for {method} {path} in template.yaml.", extra={"method": method, "path": path}
                )
            )
            self._log(f"{method} {path} -> no route 404")
            return response
        route, path_parameters = matched
        request_id = uuid.uuid4().hex[:16]
        event = self.event(
            route,
            method=method,
            raw_path=parts.path,
            raw_query=parts.query,
            headers=merged,
            body=body,
            path_parameters=path_parameters,
            client_ip=client_ip,
        )
        event["requestContext"]["requestId"] = request_id
        response = lambda_to_http(self._invoke(route.function, event), route.function)
        if self.cors and origin:
            response.headers = [h for h in response.headers if not h[0].lower().startswith("access-control-")]
            response.headers += _cors_headers(self.cors, origin)
        response.headers += [("apigw-requestid", request_id), ("x-local-function", route.function)]
        elapsed = (time.monotonic() - started) * 1000
        self._log(f"{method} {path} -> {route.function} {response.status} ({elapsed:.0f} ms)")
        return response

    @staticmethod
    def event(
        route: Route,
        *,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        body: bytes,
        path_parameters: dict[str, str],
        client_ip: str,
    ) -> dict[str, Any]:
        """The payload 2.0 event: repeated query keys and headers joined by commas, cookies apart."""
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        headers = dict(headers)
        cookie_header = headers.pop("cookie", None)
        host = headers.get("host", "")
        headers.setdefault("x-forwarded-for", client_ip)
        headers.setdefault("x-forwarded-proto", "http")
        headers.setdefault("x-forwarded-port", host.rpartition(":")[2] if ":" in host else "80")
        event = http_api_event(
            method,
            raw_path,
            route_key=route.route_key,
            path_parameters=path_parameters or None,
            query=query or None,
            raw_query=raw_query,
            headers=headers,
            body=body or None,
            source_ip=client_ip,
        )
        if cookie_header:
            event["cookies"] = [c.strip() for c in re.split(r";\s*", cookie_header) if c.strip()]
        return event

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "plan-guard-local"

            def version_string(self) -> str:
                return self.server_version

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _read_body(self) -> bytes | None:
                """The request body; None when it is larger than API Gateway accepts.

                Raises ``BadRequest`` when its framing (Content-Length, a chunk size) is unreadable.
                """
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    data = b""
                    while True:
                        line = self.rfile.readline().split(b";")[0].strip() or b"0"
                        if not _HEX.fullmatch(line):
                            shown = line[:40].decode("latin-1")
                            raise BadRequest(f"The chunk size {shown!r} is not a hexadecimal number.")
                        size = int(line, 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        if len(data) + size > MAX_BODY_BYTES:
                            return None
                        data += self.rfile.read(size)
                        self.rfile.readline()
                raw = (self.headers.get("Content-Length") or "").strip() or "0"
                if not _DIGITS.fullmatch(raw):
                    raise BadRequest(f"The Content-Length header {raw[:40]!r} is not a number of bytes.")
                length = int(raw)
                if length > MAX_BODY_BYTES:
                    return None
                return self.rfile.read(length) if length > 0 else b""

            def _serve(self) -> None:
                try:
                    body = self._read_body()
                except BadRequest as error:  # where the body ends is unknown: answer, then hang up
                    self.close_connection = True
                    response = error_response(error)
                else:
                    response = self._answer(body)
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                if self.close_connection:  # the client asked, or its body cannot be skipped
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD" and response.body:
                    self.wfile.write(response.body)

            def _answer(self, body: bytes | None) -> HttpResponse:
                if body is None:
                    self.close_connection = True
                    return error_response(PayloadTooLarge("The request body is over 10 MB."))
                try:
                    return gateway.handle(
                        self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                    )
                except Exception as exc:  # a gateway bug: say so, keep serving
                    traceback.print_exc()
                    return error_response(GatewayError(f"The local gateway failed: {exc}"))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

        return Handler
