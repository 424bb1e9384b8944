"""Nothing secret in the logs, on any route or error path, at every LogLevel the template allows.

One test per level drives every route (account CRUD, usage, plan check and its direct invoke, the
usage count and hold, the webhook) through success and each error path, Kinde's faults (5xx, 429,
401, unreadable answers, timeouts, JWKS outage) and DynamoDB's (throttling, access denied,
timeouts, transaction conflicts) included, with every line of log output captured: the root
logger (botocore, urllib3 and the rest propagate there), every logging handler's stream
(Powertools writes to the stdout it saw at import), and the process's stdout and stderr. It fails
on any token (whole or its signature), usage key (the ones configured and the wrong ones callers
sent) or account number: as entered, normalised, and hashed (sha256 hex of the normalised form,
as the number guard stores it).

The root logger is set to the level as well, as Lambda's log-level control does and a developer
turning on DEBUG would: botocore's DEBUG logging prints request parameters, response bodies (the
SSM parameter's keys) and signed headers.

The functions run in-process on moto, so this needs no AWS; the Kinde stand-in is a server on
127.0.0.1, which is why it is an integration test.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import os
import re
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.retries import standard
from planguard import kinde_http
from planguard.errors import EntitlementUnavailable
from planguard.kinde_management import KindeRejected, get_management_api
from usage_report_fn import (
    handler as usage_report,  # imported here: its logger keeps the stdout it sees at import
)

from local.kinde import Fault, KindeStandIn, SigningKey, new_rsa_key
from local.lambda_runtime import LocalContext, http_api_event, plan_selection_event
from local.template import load_template
from tests.support import (
    OTHER_USER,
    USER,
    HttpResult,
    clear_caches,
    invoke_http,
    organization_mode,
    sign_webhook,
    transaction_cancelled,
)

TEMPLATE = load_template()
LEVELS = TEMPLATE.doc["Parameters"]["LogLevel"]["AllowedValues"]
SSM_PARAM = "/plan-guard/usage-api-key"
# Loggers of the test's own machinery, which does not run in Lambda: moto (standing in for AWS)
# and the Kinde stand-in. Everything else that logs is the functions' code or their libraries.
HARNESS_LOGGERS = re.compile(r"^(moto|werkzeug|responses|local)(\.|$)")
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


# -- what must never be logged --------------------------------------------------------------------
def normalised(number: str) -> str:
    """The number guard's rule, written from the contract: trimmed, case-folded, spaces and hyphens
    removed (the test checks below that the stored guard agrees)."""
    return re.sub(r"[ \-]", "", number.strip().casefold())


def hashed(number: str) -> str:
    return hashlib.sha256(normalised(number).encode()).hexdigest()


@dataclass
class Secrets:
    values: dict[str, str] = field(default_factory=dict)  # the secret -> what it is

    def token(self, label: str, token: str) -> str:
        self.values[token] = f"token {label}"
        self.values[token.rsplit(".", 1)[-1]] = f"token {label} (signature)"
        return token

    def key(self, label: str, key: str) -> str:
        self.values[key] = f"usage key {label}"
        return key

    def m2m_secret(self, label: str, secret: str) -> str:
        self.values[secret] = f"M2M client secret {label}"
        return secret

    def account_number(self, label: str, as_entered: str) -> str:
        self.values[as_entered.strip()] = f"account number {label} as entered"
        self.values[normalised(as_entered)] = f"account number {label} normalised"
        self.values[hashed(as_entered)] = f"account number {label} hashed"
        return as_entered

    def found_in(self, text: str) -> list[str]:
        found = []
        for secret, what in self.values.items():
            at = text.find(secret)
            if at >= 0:
                context = text[max(0, at - 160) : at + len(secret) + 40].replace("\n", "\\n")
                found.append(f"{what}: ...{context}...")
        return found


# -- capturing everything -------------------------------------------------------------------------
class RecordCapture(logging.Handler):
    """Every record reaching the root logger: message, extra fields and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.lines: list[str] = []
        self.levels: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if HARNESS_LOGGERS.match(record.name):
            return
        self.levels[record.levelname] += 1
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        parts = [record.name, record.levelname, record.getMessage(), repr(extra)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            parts.append(record.stack_info)
        self.lines.append(" ".join(parts))


def function_loggers() -> list[logging.Logger]:
    """The functions' own loggers: Powertools' (named after the service) and the layer's."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
    return [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and (name == service or name.split(".")[0] == "planguard")
    ]


@dataclass
class Captured:
    records: RecordCapture
    streams: io.StringIO
    fd: pytest.CaptureFixture[str]
    text: str = ""

    def collect(self) -> str:
        out, err = self.fd.readouterr()
        self.text += "\n".join([*self.records.lines, self.streams.getvalue(), out, err])
        self.records.lines.clear()
        self.streams.seek(0)
        self.streams.truncate()
        return self.text


@contextmanager
def all_log_output(level: str, capfd: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    """Every log line the process writes while the functions run at ``level``."""
    root = logging.getLogger()
    streams = io.StringIO()
    records = RecordCapture()
    swapped = []
    for logger in [
        root,
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]:
        for handler in logger.handlers:
            ours = type(handler).__module__.startswith("_pytest")
            if (
                isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and not ours
            ):
                swapped.append((handler, handler.setStream(streams)))
    levels = [(logger, logger.level) for logger in [root, *function_loggers()]]
    for logger, _ in levels:
        logger.setLevel(level)
    root.addHandler(records)
    capfd.readouterr()
    try:
        yield Captured(records, streams, capfd)
    finally:
        root.removeHandler(records)
        for logger, old_level in levels:
            logger.setLevel(old_level)
        for handler, old_stream in swapped:
            handler.setStream(old_stream)


# -- DynamoDB faults ------------------------------------------------------------------------------
class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class DynamoFaults:
    """While armed, every DynamoDB request fails before it leaves the process (never after moto
    committed): throttled (what botocore and the repository retry, like an internal error),
    access denied (what neither retries), a read timeout, or a transaction conflict."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.injected: Counter[str] = Counter()

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.kind is None:
            return None
        self.injected[self.kind] += 1
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        if self.kind == "conflict" and operation == "TransactWriteItems":
            status, body = transaction_cancelled(request.body)
        else:
            status, name = {
                "throttle": (400, "ProvisionedThroughputExceededException"),
                "denied": (400, "AccessDeniedException"),
                "conflict": (400, "TransactionConflictException"),
            }[self.kind]
            body = {"__type": f"com.amazonaws.dynamodb.v20120810#{name}", "message": f"injected {name}"}
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = uuid.uuid4().hex
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))

    @contextmanager
    def armed(self, kind: str) -> Iterator[None]:
        self.kind = kind
        try:
            yield
        finally:
            self.kind = None


# -- calling the routes as API Gateway does -------------------------------------------------------
class Api:
    """Builds the payload 2.0 event for a template route and calls its function's handler."""

    def __init__(self) -> None:
        self.function_of = {route.route_key: route.function for route in TEMPLATE.routes()}
        self.handlers: dict[str, Any] = {}
        for name, spec in TEMPLATE.functions().items():
            module, _, attribute = spec.handler.rpartition(".")
            self.handlers[name] = getattr(importlib.import_module(module), attribute)
        self.called: set[str] = set()

    def __call__(
        self,
        route_key: str,
        *,
        params: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> HttpResult:
        method, _, template_path = route_key.partition(" ")
        raw = body.encode() if isinstance(body, str) else body
        event = http_api_event(
            method,
            template_path.format(**(params or {})),
            route_key=route_key,
            path_parameters=params,
            query=query,
            raw_query=urlencode(query or {}),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=raw,
            source_ip="203.0.113.9",
        )
        self.called.add(route_key)
        function = self.function_of[route_key]
        return invoke_http(self.handlers[function], event, function)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """A direct invoke, as Kinde's plan change runs PlanCheckFunction."""
        return self.handlers[function](event, LocalContext(function))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def expect(result: HttpResult, status: int, code: str | None = None) -> HttpResult:
    assert result.status == status, (status, code, result.status, result.body)
    if code is not None:
        assert result.error_code == code, (code, result.body)
    return result


# -- the run --------------------------------------------------------------------------------------
@dataclass
class Stack:
    api: Api
    faults: DynamoFaults
    env: pytest.MonkeyPatch
    secrets: Secrets
    keys: tuple[str, str]  # the usage keys in SSM: current, previous


@pytest.fixture
def stack(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> Iterator[Stack]:
    """The deployed configuration: the usage keys in an SSM SecureString (current first), DynamoDB
    behind a fault injector with botocore's backoff shortened."""
    secrets = Secrets()
    current_key = secrets.key("current", f"pgk-current-{uuid.uuid4().hex}")
    previous_key = secrets.key("previous", f"pgk-previous-{uuid.uuid4().hex}")
    boto3.client("ssm").put_parameter(
        Name=SSM_PARAM, Value=f"{current_key}\n{previous_key}\n", Type="SecureString", Overwrite=True
    )
    faults = DynamoFaults()
    real_create_client = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = real_create_client(self, service_name, *args, **kwargs)
        if service_name == "dynamodb":
            hook: Any = faults  # botocore types handlers as returning None; before-send may answer
            client.meta.events.register_first("before-send.dynamodb", hook, unique_id="log-test-faults")
        return client

    env.setattr(botocore.session.Session, "create_client", create_client)
    env.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.001)
    env.setattr(standard.RetryQuotaChecker, "acquire_retry_quota", lambda self, context: True)
    env.delenv("USAGE_API_KEY", raising=False)
    env.setenv("USAGE_API_KEY_PARAM", SSM_PARAM)
    from usage_count_api import usage_key

    usage_key.forget()
    clear_caches()
    yield Stack(Api(), faults, env, secrets, (current_key, previous_key))
    usage_key.forget()


def fresh() -> None:
    """A new container: no cached entitlement, JWKS or usage key, new clients."""
    from usage_count_api import usage_key

    usage_key.forget()
    clear_caches()


def drive_every_route(stack: Stack, kinde: KindeStandIn) -> Secrets:
    api, faults, env, secrets = stack.api, stack.faults, stack.env, stack.secrets
    current_key, previous_key = stack.keys
    wrong_key = secrets.key("wrong (sent by a caller)", f"pgk-wrong-{uuid.uuid4().hex}")
    kinde.set_plan(USER, "pro")
    kinde.set_plan(OTHER_USER, "pro")
    token = secrets.token("user", kinde.mint(USER))
    other = secrets.token("other user", kinde.mint(OTHER_USER))
    bad_tokens = {
        "expired": secrets.token("expired", kinde.mint(USER, ttl_seconds=-120)),
        "m2m": secrets.token("m2m", kinde.mint("client_abc", gty=["client_credentials"])),
        "foreign issuer": secrets.token(
            "foreign issuer", kinde.mint(USER, issuer="https://evil.example.com")
        ),
        "wrong audience": secrets.token("wrong audience", kinde.mint(USER, aud=["another-app"])),
        "not a jwt": secrets.token(
            "garbage", f"eyJ{uuid.uuid4().hex}.eyJ{uuid.uuid4().hex}.{uuid.uuid4().hex}"
        ),
    }
    numbers = {
        label: secrets.account_number(label, raw)
        for label, raw in {
            "first": "  Gb-29 NWBK 6016-1331 9268 19  ",
            "second": "DE89-3704 0044 0532 0130 QX",
            "renumbered": "fr76 3000-6000 0112 3456 7890 1ZK",
            "third": "NL91 ABNA-0417 1643 00WQ",
            "refused": "BE68-5390 0754 7034 XJ",
            "other's": "IT60 X054-2811 1010 0000 0123 456",
            "too long": "QZ-" + "7319" * 50,
            "while Kinde fails": "CH93 0076-2011 6238 5295 7",
            "while DynamoDB fails": "AT61 1904-3002 3457 3201",
        }.items()
    }

    def add(number: str, user_token: str = token, **headers: str) -> HttpResult:
        body = json.dumps({"name": "Savings", "accountNumber": number})
        return api("POST /accounts", headers={**bearer(user_token), **headers}, body=body)

    # -- accounts, as the dashboard uses them --------------------------------------------------------
    first = expect(add(numbers["first"], **{"Idempotency-Key": "idem-1"}), 201).body
    expect(add(numbers["first"], **{"Idempotency-Key": "idem-1"}), 201)  # replayed
    expect(add(numbers["second"], **{"Idempotency-Key": "idem-1"}), 422, "IDEMPOTENCY_KEY_REUSED")
    expect(add(normalised(numbers["first"]).upper()), 409, "DUPLICATE_ACCOUNT_NUMBER")
    second = expect(add(numbers["second"]), 201).body
    expect(add(numbers["too long"]), 422, "VALIDATION_ERROR")
    wrong_type = json.dumps({"name": "Savings", "accountNumber": 1234, "extra": numbers["third"]})
    expect(api("POST /accounts", headers=bearer(token), body=wrong_type), 422, "VALIDATION_ERROR")
    expect(api("POST /accounts", headers=bearer(token), body=f'{{"accountNumber": "{numbers["third"]}"'), 400)
    expect(api("GET /accounts", headers=bearer(token)), 200)
    expect(api("GET /accounts", headers=bearer(token), query={"cursor": "bm90LWEtY3Vyc29y"}), 400)
    expect(api("GET /accounts", headers=bearer(token), query={"limit": "0"}), 400)
    expect(api("GET /accounts/{id}", params={"id": first["id"]}, headers=bearer(token)), 200)
    expect(api("GET /accounts/{id}", params={"id": first["id"]}, headers=bearer(other)), 404)
    expect(api("GET /accounts/{id}", params={"id": "not-an-id"}, headers=bearer(token)), 404)
    renumber = json.dumps({"accountNumber": numbers["renumbered"]})
    expect(api("PATCH /accounts/{id}", params={"id": first["id"]}, headers=bearer(token), body=renumber), 200)
    duplicate = json.dumps({"accountNumber": numbers["second"]})
    expect(
        api("PATCH /accounts/{id}", params={"id": first["id"]}, headers=bearer(token), body=duplicate), 409
    )
    expect(api("PATCH /accounts/{id}", params={"id": first["id"]}, headers=bearer(token), body="{}"), 422)
    expect(api("DELETE /accounts/{id}", params={"id": second["id"]}, headers=bearer(token)), 204)
    expect(api("DELETE /accounts/{id}", params={"id": second["id"]}, headers=bearer(token)), 404)
    expect(api("GET /usage", headers=bearer(token)), 200)
    expect(api("GET /plan-check", headers=bearer(token), query={"plan": "free"}), 200)
    expect(api("GET /plan-check", headers=bearer(token), query={"plan": "no-such-plan"}), 422)
    expect(api("GET /plan-check", headers=bearer(token)), 400)

    # At the limit, and a plan without the entitlement.
    kinde.set_plan(USER, "free")
    fresh()
    expect(add(numbers["third"]), 201)
    expect(add(numbers["second"]), 201)
    expect(add(numbers["refused"]), 403, "LIMIT_REACHED")
    kinde.plan_limits["starter"] = {}
    kinde.set_plan(USER, "starter")
    fresh()
    expect(add(numbers["refused"]), 403, "NO_ENTITLEMENT")
    kinde.set_plan(USER, "pro")
    fresh()

    # Every token that is no good, on every route that takes a user token.
    user_routes = [
        ("GET /accounts", {}),
        ("POST /accounts", {}),
        ("GET /accounts/{id}", {"id": first["id"]}),
        ("PATCH /accounts/{id}", {"id": first["id"]}),
        ("DELETE /accounts/{id}", {"id": first["id"]}),
        ("GET /usage", {}),
        ("GET /plan-check", {}),
    ]
    for route_key, params in user_routes:
        body = (
            json.dumps({"name": "x", "accountNumber": numbers["refused"]})
            if " /accounts" in route_key
            else None
        )
        query = {"plan": "free"} if "plan-check" in route_key else None
        expect(api(route_key, params=params or None, query=query, body=body), 401)
        for bad in bad_tokens.values():
            expect(api(route_key, params=params or None, query=query, headers=bearer(bad), body=body), 401)

    # -- Kinde's faults ------------------------------------------------------------------------------
    kinde_faults = {
        "5xx": ([Fault(500, headers={"Retry-After": "0"})] * 3, 503),
        "429 for an hour": ([Fault(429, headers={"Retry-After": "3600"})], 503),
        "token refused": ([Fault(401)], 401),
        "unreadable": ([Fault(200, body=b'{"data": {"entitlement": ')], 503),
        "slow": ([Fault(0, delay_seconds=0.3)] * 3, 503),
    }
    for name, (faults_queued, status) in kinde_faults.items():
        fresh()
        kinde.faults[:] = list(faults_queued)
        if name == "slow":  # a short read timeout for this call only: a loaded machine is slow too
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(kinde_http, "READ_TIMEOUT_SECONDS", 0.2)
                expect(add(numbers["while Kinde fails"]), status)
            continue  # the same log lines as a 5xx, at a second per call
        expect(add(numbers["while Kinde fails"]), status)
        fresh()
        kinde.faults[:] = list(faults_queued)
        expect(api("GET /usage", headers=bearer(token)), 401 if status == 401 else 200)
        fresh()
        kinde.faults[:] = list(faults_queued)
        expect(api("GET /plan-check", headers=bearer(token), query={"plan": "free"}), status)
    kinde.faults.clear()
    # A signing key Kinde rotated in while its JWKS endpoint is down.
    fresh()
    new_key = kinde.rotate_key()
    rotated = secrets.token("signed with a rotated key", kinde.mint(USER, key=new_key))
    kinde.jwks_faults[:] = [Fault(503)] * 6
    expect(api("GET /accounts", headers=bearer(rotated)), 401)  # no key to check it with
    kinde.jwks_faults.clear()
    fresh()  # the verifier remembers the outage for a while

    # -- the usage count and the hold (the keys come from SSM) ------------------------------------
    count = "GET /api/users/accounts/count/{kindeId}"
    hold = "POST /api/users/accounts/count/{kindeId}/hold"
    for key in (current_key, previous_key):
        expect(api(count, params={"kindeId": USER}, headers={"x-api-key": key}), 200)
        expect(api(count, params={"kindeId": USER}, headers=bearer(key)), 200)
        expect(
            api(
                hold,
                params={"kindeId": USER},
                query={"limit": "5", "plan": "pro"},
                headers={"x-api-key": key},
            ),
            200,
        )
    expect(api(count, params={"kindeId": USER}, headers=bearer(token)), 200)
    expect(api(count, params={"kindeId": USER}, headers=bearer(other)), 401)
    expect(api(count, params={"kindeId": USER}, headers={"x-api-key": wrong_key}), 401)
    expect(api(count, params={"kindeId": USER}), 401)
    for bad in bad_tokens.values():
        expect(api(count, params={"kindeId": USER}, headers=bearer(bad)), 401)
    expect(api(count, params={"kindeId": "kp 1"}, headers={"x-api-key": current_key}), 400)
    expect(
        api(hold, params={"kindeId": USER}, query={"limit": "5", "plan": "pro"}, headers=bearer(token)), 401
    )
    expect(
        api(
            hold,
            params={"kindeId": USER},
            query={"limit": "x", "plan": "pro"},
            headers={"x-api-key": current_key},
        ),
        400,
    )
    expect(api(hold, params={"kindeId": USER}, query={"limit": "5"}, headers={"x-api-key": wrong_key}), 401)
    fresh()
    env.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # SSM unreachable
    expect(api(count, params={"kindeId": USER}, headers={"x-api-key": current_key}), 503)
    env.delenv("AWS_ENDPOINT_URL_SSM")
    fresh()

    # -- the direct invoke Kinde's plan change runs --------------------------------------------------
    for current, requested in (("pro", "free"), ("free", "pro")):
        assert "allowed" in api.invoke(
            "PlanCheckFunction", plan_selection_event(USER, current, requested, kinde.url)
        )
    with pytest.raises(Exception):  # noqa: B017 - an unknown plan cannot be judged: it fails closed
        api.invoke("PlanCheckFunction", plan_selection_event(USER, "pro", "no-such-plan", kinde.url))

    # -- the webhook: the other user's accounts go ---------------------------------------------------
    expect(add(numbers["other's"], other), 201)
    deleted = secrets.token("webhook body", sign_webhook(kinde, "user.deleted", {"user": {"id": OTHER_USER}}))
    webhook = "POST /webhooks/kinde"
    expect(
        api(webhook, headers={"webhook-id": "msg_1", "content-type": "application/jwt"}, body=deleted), 200
    )
    expect(
        api(webhook, headers={"webhook-id": "msg_1", "content-type": "application/jwt"}, body=deleted), 200
    )
    forged = secrets.token(
        "forged webhook",
        sign_webhook(kinde, "user.deleted", {"user": {"id": USER}}, key=SigningKey("forger", new_rsa_key())),
    )
    expect(api(webhook, body=forged), 401)
    expect(api(webhook, body=token), 401)  # an access token is signed, but its claims say token
    expect(api(webhook, body=""), 400)

    # -- DynamoDB's faults, on every route that stores or reads --------------------------------------
    # The repository's own backoff between attempts is not what is under test here.
    env.setattr(time, "sleep", lambda seconds: None)
    for kind in ("throttle", "denied", "timeout", "conflict"):
        fresh()
        expect(api("GET /usage", headers=bearer(token)), 200)  # the entitlement is cached; only storage fails
        with faults.armed(kind):
            expect(add(numbers["while DynamoDB fails"]), 503, "SERVICE_UNAVAILABLE")
            expect(api("GET /accounts", headers=bearer(token)), 503)
            expect(api("GET /accounts/{id}", params={"id": first["id"]}, headers=bearer(token)), 503)
            body = json.dumps({"accountNumber": numbers["while DynamoDB fails"]})
            expect(
                api("PATCH /accounts/{id}", params={"id": first["id"]}, headers=bearer(token), body=body), 503
            )
            expect(api("DELETE /accounts/{id}", params={"id": first["id"]}, headers=bearer(token)), 503)
            expect(api("GET /usage", headers=bearer(token)), 503)
            expect(api("GET /plan-check", headers=bearer(token), query={"plan": "free"}), 503)
            expect(api(count, params={"kindeId": USER}, headers={"x-api-key": current_key}), 503)
            expect(
                api(
                    hold,
                    params={"kindeId": USER},
                    query={"limit": "3", "plan": "free"},
                    headers={"x-api-key": current_key},
                ),
                503,
            )
            webhook_body = sign_webhook(kinde, "user.deleted", {"user": {"id": USER}})
            secrets.token(f"webhook body during {kind}", webhook_body)
            expect(api(webhook, body=webhook_body), 503)
            with pytest.raises(Exception):  # noqa: B017 - the direct invoke fails closed, whatever it raises
                api.invoke("PlanCheckFunction", plan_selection_event(USER, "pro", "free", kinde.url))
    assert set(faults.injected) == {"throttle", "denied", "timeout", "conflict"}

    # -- organization mode: a member's requests, the organizations' count and hold -------------------
    organization_mode(env)
    kinde.set_org_plan("org_logs", "pro")
    member = secrets.token("member", kinde.mint_member(USER, "org_logs"))
    org_number = secrets.account_number("organization's", "ES91 2100-0418 4502 0005 1332")
    body = json.dumps({"name": "Shared", "accountNumber": org_number})
    expect(api("POST /accounts", headers=bearer(member), body=body), 201)
    expect(add(org_number, member), 409, "DUPLICATE_ACCOUNT_NUMBER")
    expect(api("GET /accounts", headers=bearer(member)), 200)
    expect(api("GET /usage", headers=bearer(member)), 200)
    expect(api("GET /accounts", headers=bearer(token)), 403, "NO_ORGANIZATION")  # no org_code
    org_count = "GET /api/organizations/accounts/count/{orgCode}"
    org_hold = "POST /api/organizations/accounts/count/{orgCode}/hold"
    expect(api(org_count, params={"orgCode": "org_logs"}, headers={"x-api-key": current_key}), 200)
    expect(api(org_count, params={"orgCode": "org_logs"}, headers=bearer(member)), 401)
    expect(api(org_count, params={"orgCode": "org_logs"}, headers={"x-api-key": wrong_key}), 401)
    held = {"limit": "5", "plan": "pro"}
    expect(api(org_hold, params={"orgCode": "org_logs"}, query=held, headers={"x-api-key": current_key}), 200)
    expect(api(count, params={"kindeId": USER}, headers={"x-api-key": current_key}), 404)
    webhook_body = sign_webhook(kinde, "organization.deleted", {"organization": {"code": "org_logs"}})
    secrets.token("organization.deleted webhook body", webhook_body)
    expect(api(webhook, body=webhook_body), 200)

    missing = {route.route_key for route in TEMPLATE.routes()} - api.called
    assert not missing, f"routes this test never called: {missing}"
    return secrets


@pytest.mark.parametrize("level", LEVELS)
def test_no_token_key_or_account_number_reaches_a_log_line(
    level: str,
    stack: Stack,
    kinde: KindeStandIn,
    capfd: pytest.CaptureFixture[str],
) -> None:
    stack.env.setenv("POWERTOOLS_LOG_LEVEL", level)
    with all_log_output(level, capfd) as captured:
        # Each way out is captured: the root logger, a handler's own stream, stdout, stderr.
        logging.getLogger("capture.check").error("canary-root")
        for logger in function_loggers():
            logger.error("canary-%s", logger.name)
        print("canary-stdout")
        print("canary-stderr", file=sys.stderr)
        secrets = drive_every_route(stack, kinde)
        text = captured.collect()
        debug_records = captured.records.levels["DEBUG"]
    for canary in [
        "canary-root",
        "canary-stdout",
        "canary-stderr",
        *(f"canary-{lg.name}" for lg in function_loggers()),
    ]:
        assert canary in text, f"the capture missed {canary}"
    if level in ("DEBUG", "INFO"):
        assert re.search(r'"message": ?"usage count"', text)  # the functions' own lines are seen
    if level == "DEBUG":
        assert debug_records > 0, "the root logger was not at DEBUG"
    # The oracle agrees with the stored number guard (a guard of this user's current number exists).
    items = boto3.client("dynamodb").scan(TableName="AccountsTable")["Items"]
    assert any(item["SK"]["S"].endswith(hashed("fr76 3000-6000 0112 3456 7890 1ZK")) for item in items)
    leaks = secrets.found_in(text)
    assert not leaks, f"{len(leaks)} secret(s) in the logs at {level}:\n" + "\n".join(leaks[:20])


def test_the_scan_finds_what_the_sdk_logs_when_it_is_not_held(
    stack: Stack, kinde: KindeStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """Why the SDK is held at WARNING, and proof that the scan above can fail: with botocore left
    at the root's DEBUG, one add and one usage count put the account number in every form and
    the usage keys read from SSM in the log."""
    kinde.set_plan(USER, "pro")
    number = stack.secrets.account_number("unguarded", "SE45 5000-0000 0583 9825 7466")
    token = kinde.mint(USER)
    botocore_logger = logging.getLogger("botocore")
    held = botocore_logger.level
    botocore_logger.setLevel(logging.NOTSET)
    try:
        with all_log_output("DEBUG", capfd) as captured:
            body = json.dumps({"name": "Pension", "accountNumber": number})
            expect(stack.api("POST /accounts", headers=bearer(token), body=body), 201)
            count = "GET /api/users/accounts/count/{kindeId}"
            expect(stack.api(count, params={"kindeId": USER}, headers={"x-api-key": stack.keys[0]}), 200)
            text = captured.collect()
    finally:
        botocore_logger.setLevel(held)
    found = {leak.split(":", 1)[0] for leak in stack.secrets.found_in(text)}
    assert {
        "account number unguarded as entered",
        "account number unguarded normalised",
        "account number unguarded hashed",
        "usage key current",
        "usage key previous",
    } <= found, found


# -- the Management API's M2M client ----------------------------------------------------------------
M2M_SECRET_PARAM = "/plan-guard/kinde-m2m-client-secret"


def drive_the_management_api(env: pytest.MonkeyPatch, kinde: KindeStandIn, secrets: Secrets) -> None:
    """Every call the M2M client makes, through success, Kinde's faults and refusals, a wrong
    secret, SSM unreachable; the secret read from SSM as deployed."""
    ssm = boto3.client("ssm")
    secret = secrets.m2m_secret("current", kinde.management.client_secret)
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=secret, Type="SecureString", Overwrite=True)
    env.setenv("KINDE_M2M_CLIENT_ID", kinde.management.client_id)
    env.setenv("KINDE_M2M_CLIENT_SECRET_PARAM", M2M_SECRET_PARAM)
    env.setattr(kinde_http, "READ_TIMEOUT_SECONDS", 0.3)
    minted = kinde.management.token

    def token(form: Any) -> Any:  # every token the stand-in mints is a secret the scan looks for
        reply = minted(form)
        if isinstance(reply.body, dict) and "access_token" in reply.body:
            secrets.token("M2M", reply.body["access_token"])
        return reply

    env.setattr(kinde.management, "token", token)
    kinde.plan_limits["starter"] = {"feat_0195": 1}
    kinde.set_plan(USER, "pro")
    fresh()
    api = get_management_api()
    assert api is not None

    def attempt(call: Any, *args: Any) -> Any:
        try:
            return call(*args, None)
        except (EntitlementUnavailable, KindeRejected) as error:
            return error

    customer = api.user_customer_id(USER, None)
    assert customer is not None
    assert api.customer_entitlement(customer, "tracked_accounts", None).limit == 5
    [agreement] = api.agreements(customer, "tracked_accounts", None)
    api.meter_usage(agreement.id, "tracked_accounts", 2, None)
    assert api.organization("org_default", None) is not None
    assert api.organization("org_unknown", None) is None
    faults = {
        "5xx": [Fault(500, headers={"Retry-After": "0"})] * 3,
        "429 for an hour": [Fault(429, headers={"RateLimit-Reset": "3600"})],
        "token refused once": [Fault(401)],
        "token refused twice": [Fault(403), Fault(403)],
        "refusal": [Fault(400, body={"errors": [{"code": "CUSTOMER_INVALID", "message": "no"}]})],
        "unreadable": [Fault(200, body=b'{"entitlements": [')],
        "slow": [Fault(0, delay_seconds=0.5)] * 3,
    }
    for queued in faults.values():
        kinde.management_faults[:] = list(queued)
        attempt(api.customer_entitlement, customer, "tracked_accounts")
    kinde.management_faults.clear()
    kinde.set_plan(USER, "starter")  # the feature missing: Kinde's codes logged at ERROR
    assert api.customer_entitlement(customer, "tracked_accounts", None).missing
    assert isinstance(attempt(api.meter_usage, agreement.id, "tracked_accounts", 3), KindeRejected)
    kinde.management.revoke_tokens()
    kinde.m2m_token_faults[:] = [Fault(503, headers={"Retry-After": "0"})] * 3
    assert isinstance(attempt(api.user_customer_id, USER), EntitlementUnavailable)
    # A new container reading a wrong secret, then one that cannot reach SSM.
    wrong = secrets.m2m_secret("wrong", f"wrong-{uuid.uuid4().hex}")
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=wrong, Type="SecureString", Overwrite=True)
    fresh()
    assert isinstance(attempt(get_management_api().user_customer_id, USER), EntitlementUnavailable)  # type: ignore[union-attr]
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=secret, Type="SecureString", Overwrite=True)
    fresh()
    env.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")
    assert isinstance(attempt(get_management_api().user_customer_id, USER), EntitlementUnavailable)  # type: ignore[union-attr]
    env.delenv("AWS_ENDPOINT_URL_SSM")
    fresh()
    assert get_management_api().user_customer_id(USER, None) is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("level", LEVELS)
def test_no_m2m_secret_or_token_reaches_a_log_line(
    level: str,
    env: pytest.MonkeyPatch,
    aws: None,
    kinde: KindeStandIn,
    capfd: pytest.CaptureFixture[str],
) -> None:
    env.setenv("POWERTOOLS_LOG_LEVEL", level)
    secrets = Secrets()
    with all_log_output(level, capfd) as captured:
        logging.getLogger("planguard.kinde_management").error("canary-m2m")
        drive_the_management_api(env, kinde, secrets)
        text = captured.collect()
    fresh()
    assert "canary-m2m" in text, "the capture missed the client's logger"
    assert any(what.startswith("token M2M") for what in secrets.values.values())
    if level != "ERROR":  # the client's own lines are seen (a refused secret is logged at ERROR)
        assert "Management API answered" in text or "M2M token endpoint answered" in text
    assert "Kinde refused the M2M client's credentials (401 invalid_client)" in text
    assert "feat_0195" in text  # the missing feature's ERROR line, with Kinde's codes
    leaks = secrets.found_in(text)
    assert not leaks, f"{len(leaks)} secret(s) in the logs at {level}:\n" + "\n".join(leaks[:20])


# -- UsageReportFunction: count changes to Kinde's meter_usage through the M2M client ------------------
def drive_usage_reports(env: pytest.MonkeyPatch, kinde: KindeStandIn, secrets: Secrets) -> None:
    """UsageReportFunction on stream batches and a re-send: reports sent, skipped (no agreement
    carrying the feature, a refusal), failed (Kinde's 5xx and 429), a removal; its M2M secret
    from SSM as deployed, every M2M token minted meanwhile a secret."""
    from tests.usage_report_support import count_changes, counter_image, stream_record

    ssm = boto3.client("ssm")
    secret = secrets.m2m_secret("current", kinde.management.client_secret)
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=secret, Type="SecureString", Overwrite=True)
    env.setenv("KINDE_M2M_CLIENT_ID", kinde.management.client_id)
    env.setenv("KINDE_M2M_CLIENT_SECRET_PARAM", M2M_SECRET_PARAM)
    minted = kinde.management.token

    def token(form: Any) -> Any:
        reply = minted(form)
        if isinstance(reply.body, dict) and "access_token" in reply.body:
            secrets.token("M2M", reply.body["access_token"])
        return reply

    env.setattr(kinde.management, "token", token)
    kinde.plan_limits["starter"] = {"feat_0195": 1}
    kinde.set_plan(USER, "pro")
    kinde.set_plan(OTHER_USER, "starter")  # no agreement carrying tracked_accounts: a skip
    fresh()

    def run(event: dict[str, Any]) -> Any:
        return usage_report.lambda_handler(event, LocalContext("UsageReportFunction", 60))

    mine, other = f"USER#{USER}", f"USER#{OTHER_USER}"
    assert run({"Records": [*count_changes(mine, [1, 2]), *count_changes(other, [1])]}) == {
        "batchItemFailures": []
    }
    for queued, retried in (
        ([Fault(500, headers={"Retry-After": "0"})] * 3, True),
        ([Fault(429, headers={"RateLimit-Reset": "3600"})], True),
        ([Fault(400, body={"errors": [{"code": "AGREEMENT_INVALID", "message": "no"}]})] * 2, False),
    ):
        kinde.management_faults[:] = list(queued)
        changes = count_changes(mine, [3, 4])
        first = [{"itemIdentifier": changes[0]["dynamodb"]["SequenceNumber"]}]
        assert run({"Records": changes}) == {"batchItemFailures": first if retried else []}
    kinde.management_faults.clear()
    removed = stream_record("REMOVE", counter_image(mine, 4), None)
    assert run({"Records": [removed]}) == {"batchItemFailures": []}
    client = boto3.client("dynamodb")
    client.put_item(TableName="AccountsTable", Item=counter_image(mine, 2))
    client.put_item(TableName="AccountsTable", Item=counter_image(other, 1))
    env.setattr(time, "sleep", lambda seconds: None)
    assert run({"action": "report-usage"})["complete"] is True
    # A new container whose secret is wrong: the batch fails, nothing logged of either secret.
    wrong = secrets.m2m_secret("wrong", f"wrong-{uuid.uuid4().hex}")
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=wrong, Type="SecureString", Overwrite=True)
    fresh()
    failed = run({"Records": count_changes(mine, [5])})
    assert failed["batchItemFailures"], failed
    ssm.put_parameter(Name=M2M_SECRET_PARAM, Value=secret, Type="SecureString", Overwrite=True)
    fresh()


@pytest.mark.parametrize("level", LEVELS)
def test_usage_reports_log_no_m2m_secret_or_token(
    level: str,
    env: pytest.MonkeyPatch,
    aws: None,
    kinde: KindeStandIn,
    capfd: pytest.CaptureFixture[str],
) -> None:
    env.setenv("POWERTOOLS_LOG_LEVEL", level)
    secrets = Secrets()
    with all_log_output(level, capfd) as captured:
        logging.getLogger("usage_report_fn.batch").error("canary-usage-report")
        drive_usage_reports(env, kinde, secrets)
        text = captured.collect()
    fresh()
    assert "canary-usage-report" in text, "the capture missed the function's logger"
    assert any(what.startswith("token M2M") for what in secrets.values.values())
    if level in ("DEBUG", "INFO"):
        assert "usage reported" in text and "usage re-sent" in text  # the function's own lines are seen
    if level != "ERROR":
        assert "usage report skipped" in text and "usage report failed" in text
    leaks = secrets.found_in(text)
    assert not leaks, f"{len(leaks)} secret(s) in the logs at {level}:\n" + "\n".join(leaks[:20])
