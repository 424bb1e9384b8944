"""Hypothesis strategies for what OpenAPI cannot express, over real HTTP and by direct invoke.

Any unicode (lone surrogates as JSON escapes, control and bidi characters, 4-byte characters),
numbers that are not finite or absurdly large, deep nesting wherever something is decoded (JSON
bodies, cursors, JWT headers, base64 bodies), huge and duplicated headers, garbage JWTs as webhook
bodies and bearer tokens. Pass: no 5xx, every 4xx the error body (``assert_sound``).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.kinde import KindeStandIn
from tests.fuzz.api.harness import (
    FIGURES,
    FREE,
    PRO,
    USAGE_KEY,
    Stack,
    assert_sound,
    fuzz_settings,
    running_stack,
    seeded,
)
from tests.support import HttpResult, invoke_http, load_event

# -- strategies -------------------------------------------------------------------------------
SPECIAL = "\u202e\u202d\u2066\u200f\u200b\ufeff\u0000\u0007\u001b\u007f\u0085\u2028\u2029\U0001f600\U00010348"
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
CHARS = st.one_of(
    st.characters(codec="utf-8"),  # any scalar value, 4-byte ones included
    st.sampled_from(SPECIAL),
    SURROGATES,  # JSON-escaped as \\udXXX: a lone surrogate once decoded
)
TEXT = st.text(CHARS, max_size=40)
# Plausible field values (letters, digits, symbols, 4-byte characters) salted with lone surrogates.
FIELD_TEXT = st.text(
    st.one_of(st.characters(categories=("L", "N", "P", "S")), SURROGATES), min_size=1, max_size=30
)


def _nested(depth: int, kind: str) -> str:
    return {"list": "[" * depth + "]" * depth, "dict": '{"a":' * depth + "1" + "}" * depth}[kind]


NUMBER_TOKENS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "9" * 5000, "-" + "9" * 400, "0.1e400"]
)
DEEP = st.builds(_nested, st.sampled_from([50, 900, 1200, 5000]), st.sampled_from(["list", "dict"]))
SCALARS = st.one_of(
    TEXT, st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
PLACEHOLDER = "__RAW__"


@st.composite
def json_text(draw: Any, fields: tuple[str, ...] = ()) -> str:
    """JSON-ish text: valid JSON of hostile values, with raw number/nesting tokens spliced in."""
    if fields and draw(st.booleans()):
        value: Any = {
            name: draw(st.one_of(FIELD_TEXT, TEXT, VALUES, st.just(PLACEHOLDER))) for name in fields
        }
    else:
        value = draw(st.one_of(VALUES, st.just(PLACEHOLDER)))
    text = json.dumps(value)  # ensure_ascii: lone surrogates become \\udXXX escapes
    while f'"{PLACEHOLDER}"' in text:
        text = text.replace(f'"{PLACEHOLDER}"', draw(st.one_of(NUMBER_TOKENS, DEEP)), 1)
    return text


BODIES = st.one_of(
    json_text(("name", "accountNumber")),
    json_text(("limit", "plan")),
    json_text(),
    st.binary(max_size=64),
    DEEP,
    st.text(CHARS.filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF), max_size=64),
)


def b64url(data: str | bytes) -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE_JWT = st.one_of(
    st.builds(
        lambda h, p, s: f"{b64url(h)}.{b64url(p)}.{s}", json_text(("alg", "kid", "typ")), json_text(), TEXT
    ),
    st.builds(lambda h: f"{b64url(h)}.e30.c2ln", DEEP),
    st.builds(lambda kid: f"{b64url(json.dumps({'alg': 'RS256', 'kid': kid}))}.e30.c2ln", VALUES),
    st.text(st.sampled_from("abcXYZ019-_.=+/ "), max_size=80),
)


def _ascii(value: str) -> str:
    return value.encode("ascii", "backslashreplace").decode()


# -- helpers ----------------------------------------------------------------------------------
def send(
    stack: Stack, method: str, path: str, *, body: bytes | str | None = None, headers: Any = None
) -> Any:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    response = stack.session.request(method, stack.url + path, data=data, headers=headers or {}, timeout=30)
    FIGURES["hypothesis requests"] += 1
    assert_sound(response)
    return response


def auth(stack: Stack, user: str = PRO) -> dict[str, str]:
    return {"Authorization": stack.tokens[f"user:{user}"]}


@pytest.fixture
def stack(env: Any, aws: None, kinde: KindeStandIn) -> Any:
    with running_stack(kinde) as running:
        yield running


# -- over HTTP --------------------------------------------------------------------------------
def test_hostile_json_bodies(stack: Stack) -> None:
    account = stack.account_ids[0]

    @seeded
    @fuzz_settings(EXAMPLES_BODY)
    @given(
        body=BODIES,
        content_type=st.sampled_from(["application/json", "application/merge+json", "text/plain", ""]),
    )
    def run(body: str | bytes, content_type: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        send(stack, "POST", "/accounts", body=body, headers={**auth(stack, FREE), **headers})
        send(stack, "PATCH", f"/accounts/{account}", body=body, headers={**auth(stack), **headers})
        hold = f"/api/users/accounts/count/{FREE}/hold"
        send(stack, "POST", hold, body=body, headers={"x-api-key": USAGE_KEY, **headers})
        send(stack, "POST", "/webhooks/kinde", body=body, headers={"Content-Type": "application/jwt"})

    run()


def test_hostile_cursors_and_queries(stack: Stack) -> None:
    @seeded
    @fuzz_settings(EXAMPLES_BODY)
    @given(
        cursor=st.one_of(st.builds(b64url, json_text(("u", "a"))), st.builds(b64url, DEEP), TEXT),
        value=st.one_of(TEXT, NUMBER_TOKENS),
    )
    def run(cursor: str, value: str) -> None:
        encoded = quote(cursor.encode("utf-8", "surrogatepass"), safe="")
        number = quote(value.encode("utf-8", "surrogatepass"), safe="")
        send(stack, "GET", f"/accounts?cursor={encoded}", headers=auth(stack))
        send(stack, "GET", f"/accounts?limit={number}&cursor={encoded}", headers=auth(stack))
        send(stack, "GET", f"/plan-check?plan={number}", headers=auth(stack))
        hold = f"/api/users/accounts/count/{PRO}/hold?limit={number}&plan={encoded}"
        send(stack, "POST", hold, headers={"x-api-key": USAGE_KEY})
        send(stack, "GET", f"/accounts/{encoded or 'x'}", headers=auth(stack))
        send(stack, "GET", f"/api/users/accounts/count/{encoded or 'x'}", headers={"x-api-key": USAGE_KEY})

    run()


def test_garbage_jwts_as_webhooks_and_tokens(stack: Stack) -> None:
    @seeded
    @fuzz_settings(EXAMPLES_BODY)
    @given(token=GARBAGE_JWT)
    def run(token: str) -> None:
        send(stack, "POST", "/webhooks/kinde", body=token, headers={"Content-Type": "application/jwt"})
        bearer = {"Authorization": f"Bearer {_ascii(token)}"}
        for path in ("/accounts", "/usage", "/plan-check?plan=free", f"/api/users/accounts/count/{PRO}"):
            send(stack, "GET", path, headers=bearer)

    run()


HEADER_NAMES = [
    "Authorization",
    "x-api-key",
    "Content-Type",
    "Idempotency-Key",
    "webhook-id",
    "Origin",
    "X-Other",
]


def test_huge_and_duplicated_headers(stack: Stack) -> None:
    @seeded
    @fuzz_settings(EXAMPLES_BODY)
    @given(
        extra=st.lists(
            st.tuples(
                st.sampled_from(HEADER_NAMES),
                st.one_of(
                    TEXT,
                    st.integers(1, 8000).map(lambda n: "A" * n),
                    st.sampled_from(list(stack.tokens.values())),
                ),
            ),
            max_size=6,
        )
    )
    def run(extra: list[tuple[str, str]]) -> None:
        # http.client sends every pair, so a name given twice arrives twice (the gateway joins them).
        pairs = [("Authorization", stack.tokens[f"user:{PRO}"]), *extra]
        headers = [(name, value.encode("utf-8", "surrogatepass")) for name, value in pairs]
        body = json.dumps({"name": "Hdr", "accountNumber": "HDR-1"})
        for method, path in (
            ("POST", "/accounts"),
            ("GET", "/accounts"),
            ("GET", f"/api/users/accounts/count/{PRO}"),
            ("POST", "/webhooks/kinde"),
        ):
            raw_request(stack, method, path, headers, body if method == "POST" else None)

    run()


def raw_request(
    stack: Stack, method: str, path: str, headers: list[tuple[str, bytes]], body: str | None
) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in headers:
            connection.putheader(name, value.replace(b"\r", b" ").replace(b"\n", b" "))
        data = (body or "").encode()
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    FIGURES["hypothesis requests"] += 1
    FIGURES["requests"] += 1
    FIGURES[f"status {response.status}"] += 1
    context = f"{method} {path} {headers!r:.300} -> {response.status} {text[:300]!r}"
    assert response.status < 500, context
    if response.status >= 400:
        assert isinstance(json.loads(text).get("error", {}).get("code"), str), context


# -- direct invoke: what API Gateway itself would never send, which a function must survive ------
FUNCTIONS = {
    "AccountsFunction": ("accounts_api.handler", "accounts_create.json"),
    "UsageCountFunction": ("usage_count_api.handler", "usage_hold.json"),
    "KindeWebhookFunction": ("kinde_webhooks_api.handler", "kinde_webhook_user_deleted.json"),
}


def test_undecodable_bodies_by_direct_invoke(env: Any, aws: None, kinde: KindeStandIn) -> None:
    import importlib

    from local.lambda_runtime import stamp_token

    kinde.set_plan(PRO, "pro")
    token = kinde.mint(PRO)

    @seeded
    @fuzz_settings(EXAMPLES_BODY)
    @given(
        function=st.sampled_from(sorted(FUNCTIONS)),
        body=st.one_of(
            st.text(CHARS, max_size=64), st.builds(lambda t: base64.b64encode(t.encode()).decode(), DEEP)
        ),
        is_base64=st.booleans(),
    )
    def run(function: str, body: str, is_base64: bool) -> None:
        module, sample = FUNCTIONS[function]
        event = stamp_token(load_event(sample), token)
        event["headers"]["x-api-key"] = USAGE_KEY
        event.pop("queryStringParameters", None)
        event.update(body=body, isBase64Encoded=is_base64)
        result: HttpResult = invoke_http(importlib.import_module(module).lambda_handler, event, function)
        FIGURES["direct invokes"] += 1
        assert result.status < 500, (function, body, is_base64, result.body)
        if result.status >= 400:
            assert result.error_code, result.body

    run()


EXAMPLES_BODY = 0  # set below from the shared count (bodies are cheap: 4 requests an example)


def _examples() -> int:
    from tests.fuzz.api.harness import EXAMPLES

    return EXAMPLES * 2


EXAMPLES_BODY = _examples()
