"""A local API Gateway (HTTP API, payload 2.0) in front of the functions, routed by ``template.yaml``.

The routes and the CORS answers come from the template only, so the local API cannot list a
route that ``sam deploy`` would not create, nor miss one it would. Each request becomes the event
API Gateway would send; the function's answer becomes the HTTP response the way API Gateway maps
it (status, headers, base64 bodies, a bare JSON value as 200).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from planguard.errors import JSON_HEADERS, ApiError, BadRequest, NotFound, PayloadTooLarge, to_http_response

from local.functions import InvokeResult, LogSink, console
from local.lambda_runtime import http_api_event
from local.static import static_response
from local.template import CorsConfig, Template
from local.web import BackgroundHTTPServer, HttpResponse

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"  # make openapi
Invoker = Callable[[str, dict[str, Any]], InvokeResult]


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
    """The API's error body, through the layer's ``to_http_response`` (the one error mapping)."""
    response = to_http_response(error)
    headers = [(str(name), str(value)) for name, value in response["headers"].items()]
    return HttpResponse(int(response["statusCode"]), headers, str(response["body"]).encode())


def lambda_to_http(result: InvokeResult, function: str) -> HttpResponse:
    """API Gateway's mapping of a payload 2.0 function result (or failure) to HTTP."""
    if not result.ok:
        failure = FunctionTimeout if result.timed_out else FunctionError
        return error_response(
            failure(f"{function} {'timed out' if result.timed_out else 'failed'}: {result.error_text}")
        )
    payload = result.payload
    if not (isinstance(payload, dict) and "statusCode" in payload):
        return HttpResponse(200, list(JSON_HEADERS.items()), json.dumps(payload, ensure_ascii=False).encode())
    try:
        status = int(payload["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(status)
        body = payload.get("body")
        if body is None:
            data = b""
        elif not isinstance(body, str):
            data = json.dumps(body, ensure_ascii=False).encode()
        else:
            data = base64.b64decode(body, validate=True) if payload.get("isBase64Encoded") else body.encode()
    except (TypeError, ValueError, binascii.Error) as exc:
        return error_response(FunctionError(f"{function} returned a malformed response: {exc}"))
    headers = [
        (str(name), str(value))
        for name, value in (payload.get("headers") or {}).items()
        if str(name).lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    return HttpResponse(status, headers, data)


def _cors_headers(cors: CorsConfig, origin: str, preflight: bool) -> list[tuple[str, str]]:
    if "*" not in cors.allow_origins and origin not in cors.allow_origins:
        return []
    headers = [("Access-Control-Allow-Origin", "*" if "*" in cors.allow_origins else origin)]
    if "*" not in cors.allow_origins:
        headers.append(("Vary", "Origin"))
    if preflight:
        headers += [
            ("Access-Control-Allow-Methods", ",".join(cors.allow_methods)),
            ("Access-Control-Allow-Headers", ",".join(cors.allow_headers)),
        ]
        if cors.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(cors.max_age)))
    elif cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    return headers


class Gateway(BackgroundHTTPServer):
    def __init__(
        self,
        template: Template,
        invoke: Invoker,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        log: LogSink = console,
        cors_origins: str | None = None,
        kinde_domain: str | None = None,
    ) -> None:
        # Literal routes before parameterised ones, as API Gateway prefers the most specific.
        self.routes = sorted(template.routes(), key=lambda route: route.path.count("{"))
        # The template's CORS, with its CorsAllowedOrigins parameter set as a deployment would.
        parameters = {"CorsAllowedOrigins": cors_origins} if cors_origins is not None else None
        self.cors = template.http_api_cors(parameters)
        self._invoke = invoke
        self._log = log
        # The Kinde domain the page's config.js is served with (None: as the file says). The stack
        # sets it to the issuer it trusts once the stand-in is bound, after the gateway.
        self.kinde_domain = kinde_domain
        super().__init__(host, port, self._handler_class())

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> HttpResponse:
        """One request: route it, build the event, invoke the function, map its answer."""
        started = time.monotonic()
        parts = urlsplit(target)
        path = parts.path or "/"
        merged: dict[str, str] = {}
        for name, value in headers:  # repeated headers joined by commas, as API Gateway does
            key = name.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
        origin = merged.get("origin")
        if self.cors and origin and method == "OPTIONS" and "access-control-request-method" in merged:
            return HttpResponse(204, _cors_headers(self.cors, origin, preflight=True))
        if path == "/openapi.json" and method in ("GET", "HEAD") and OPENAPI_PATH.is_file():
            return HttpResponse(200, list(JSON_HEADERS.items()), OPENAPI_PATH.read_bytes())
        for route in self.routes:
            if (path_parameters := route.match(method, path)) is not None:
                break
        else:
            if method in ("GET", "HEAD") and (static := static_response(path, self.kinde_domain)) is not None:
                return static
            self._log(f"{method} {path} -> no route 404")
            message = f"No route for {method} {path} in template.yaml."
            return error_response(NotFound(message, extra={"method": method, "path": path}))
        query: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        merged.setdefault("x-forwarded-for", client_ip)
        merged.setdefault("x-forwarded-proto", "http")
        request_id = uuid.uuid4().hex[:16]
        event = http_api_event(
            method,
            parts.path,
            route_key=route.route_key,
            path_parameters={name: unquote(value) for name, value in path_parameters.items()} or None,
            query=query or None,
            raw_query=parts.query,
            headers=merged,
            body=body or None,
            source_ip=client_ip,
        )
        event["requestContext"]["requestId"] = request_id
        response = lambda_to_http(self._invoke(route.function, event), route.function)
        if self.cors and origin:
            response.headers = [h for h in response.headers if not h[0].lower().startswith("access-control-")]
            response.headers += _cors_headers(self.cors, origin, preflight=False)
        response.headers += [("apigw-requestid", request_id), ("x-local-function", route.function)]
        elapsed = (time.monotonic() - started) * 1000
        self._log(f"{method} {path} -> {route.function} {response.status} ({elapsed:.0f} ms)")
        return response

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "plan-guard-local"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                return

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """What http.server refuses before routing (a header line over 64 KiB, a bad request
                line) gets the API's error body too, not the stdlib's HTML page."""
                self.close_connection = True
                self._send(replace(error_response(BadRequest(message)), status=code))

            def parse_request(self) -> bool:
                """Every method goes to routing, as on API Gateway: one with no route (TRACE, or a
                made-up one) is a 404 with the error body, not http.server's 501."""
                if not super().parse_request():
                    return False
                setattr(self, f"do_{self.command}", self._serve)
                return True

            def _serve(self) -> None:
                raw = (self.headers.get("Content-Length") or "0").strip()
                if self.headers.get("Transfer-Encoding") or not re.fullmatch(r"[0-9]+", raw):
                    # where the body ends is unknown: answer, then hang up
                    self.close_connection = True
                    response = error_response(BadRequest("Send the body with a Content-Length header."))
                elif int(raw) > MAX_BODY_BYTES:
                    self.close_connection = True
                    response = error_response(PayloadTooLarge("The request body is over 10 MB."))
                else:
                    body = self.rfile.read(int(raw))
                    try:
                        response = gateway.handle(
                            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                        )
                    except Exception as exc:  # a gateway bug: say so, keep serving
                        traceback.print_exc()  # the details (paths of this machine) stay on the console
                        message = f"The local gateway failed ({type(exc).__name__}); see its console."
                        response = error_response(GatewayError(message))
                self._send(response)

            def _send(self, response: HttpResponse) -> None:
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

        return Handler
