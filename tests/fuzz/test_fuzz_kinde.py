"""Fuzzing Kinde's answers (issue 10, part 3).

The Account API stand-in answers with generated shapes, types, numbers, status codes, slowness and
malformed JSON; each example calls one route of AccountsFunction in-process and compares the
answer with an oracle written from the contract (not from the client's code):

- adds fail closed: 401 when Kinde refuses the caller's token (401/403), 403 NO_ENTITLEMENT for a
  missing entitlement, 403 LIMIT_REACHED at the limit, 503 ENTITLEMENT_ERROR with Retry-After
  for an outage or an answer we cannot read;
- reads (``GET /accounts``, ``GET /usage``) answer 200 with ``limitSource: "unavailable"`` when
  the limit cannot be read, 401 when the token is refused; never a 500.

Fixed seed and a small count in ``make test``; ``FUZZ_EXAMPLES=2000 make fuzz`` for a longer run
(``FUZZ_SEED`` picks another sequence).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from planguard import entitlements, kinde_http
from planguard.kinde_http import UNLIMITED_SENTINEL

from local.kinde import Fault, KindeStandIn
from tests.support import AccountsClient, seed

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SEED = int(os.environ.get("FUZZ_SEED", "20240610"))
FEATURE = "tracked_accounts"
PRO_LIMIT = 5  # what the stand-in answers once the queued answers are used up (plan "pro")
READ_TIMEOUT = 0.3  # the client's read timeout, lowered so a "slow Kinde" costs little

# -- generators -------------------------------------------------------------------------------------


def any_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 7, 2**31 - 1, 2**63, -(2**63), 10**30, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.5, -2.5, 3.0, 1e300, -1e-300, 0.0, -0.0, rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return rng.choice(["", "5", "null", "\u202e5", "\U0001f600", "x" * 300, "NaN", "Infinity"])
    if kind == 5:
        return {}
    if kind == 6:
        return [any_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["data", "entitlement", "x", ""]): any_json(rng, depth + 1) for _ in range(3)}


def limit_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            0,
            0,
            1,
            1,
            2,
            2,
            5,
            3.0,
            2.5,
            -1,
            -0.0,
            UNLIMITED_SENTINEL,
            UNLIMITED_SENTINEL - 1,
            2**63,
            10**30,
            1e300,
            True,
            False,
            "5",
            "",
            [],
            {},
            [5],
            {"max": 5},
            any_json(rng),
        ]
    )


MISSING = object()


def entitlement_body(rng: random.Random) -> Any:
    """A 200 body: Kinde's shape with generated values, or a shape that is not Kinde's."""
    shape = rng.randrange(10)
    if shape < 6:
        entitlement: dict[str, Any] = {"id": "e_1", "feature_name": "Tracked accounts"}
        key = rng.choice([FEATURE, FEATURE, FEATURE, MISSING, None, "other_feature", 5, ["x"]])
        if key is not MISSING:
            entitlement["feature_key"] = key
        value = limit_value(rng) if rng.random() < 0.9 else MISSING
        if value is not MISSING:
            entitlement["entitlement_limit_max"] = value
        if rng.random() < 0.3:
            entitlement["entitlement_limit_min"] = any_json(rng)
        return {"data": {"org_code": "org_1", "entitlement": entitlement}, "metadata": any_json(rng)}
    if shape == 6:
        return {"data": rng.choice([None, [], "x", 5, {}, {"entitlement": any_json(rng)}])}
    if shape == 7:
        return rng.choice([[], "data", 5, None, True, [{"data": {}}]])
    return any_json(rng)


# Bodies that are not JSON, or that Python's json reads but no JSON parser should accept.
UNREADABLE_BYTES = [
    b"",
    b"{",
    b'{"data": {"entitlement": {"entitlement_limit_max": 5}}',
    b"<html><body>502 Bad Gateway</body></html>",
    b"\xff\xfe\x00{",
    b'{"data": {"entitlement": {"entitlement_limit_max": NaN}}}',
    b'{"data": {"entitlement": {"entitlement_limit_max": Infinity}}}',
    b'{"data": {"entitlement": {"entitlement_limit_max": -Infinity}}}',
    b'{"data": {"entitlement": {"entitlement_limit_max": 1e400}}}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"null",
    b'"just a string"',
]


@dataclass
class Answer:
    """One answer of the Account API, and what it means by the contract."""

    fault: Fault
    meaning: str  # "ok", "missing", "unreadable", "refused", "retry", "fail"
    limit: int | None = None
    wait: float | None = None  # for "retry": the wait the server asked for (None: none asked)


def meaning_of_body(body: Any) -> tuple[str, int | None]:
    """The oracle for a 2xx body: the limit, missing or unreadable."""
    if not isinstance(body, dict):
        return "unreadable", None
    data = body.get("data")
    entitlement = data.get("entitlement") if isinstance(data, dict) else None
    if not isinstance(entitlement, dict) or entitlement.get("feature_key") not in (None, FEATURE):
        return "missing", None
    raw = entitlement.get("entitlement_limit_max")
    if raw is None:
        return "ok", None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return "unreadable", None
    if raw != raw or raw in (float("inf"), float("-inf")) or raw < 0 or raw != int(raw):
        return "unreadable", None
    return "ok", (None if int(raw) >= UNLIMITED_SENTINEL else int(raw))


def server_wait(headers: dict[str, str]) -> float | None:
    for name in ("Retry-After", "RateLimit-Reset"):
        value = headers.get(name, "").strip()
        if value.isascii() and value.isdigit():
            return float(value)
    return None


def answer(rng: random.Random) -> Answer:
    delay = rng.choice([0.0] * 8 + [0.02, 0.1])
    if rng.random() < 0.06:  # slower than the client's read timeout: a timeout, then a retry
        return Answer(Fault(status=rng.choice([0, 200]), delay_seconds=READ_TIMEOUT + 0.15), "retry")
    pick = rng.randrange(100)
    if pick < 40:
        body = entitlement_body(rng)
        meaning, limit = meaning_of_body(body)
        status = rng.choice([200] * 6 + [201, 203])
        raw = b"null" if body is None else body  # the stand-in sends its own body for None
        return Answer(Fault(status, body=raw, delay_seconds=delay), meaning, limit)
    if pick < 50:
        raw = rng.choice(UNREADABLE_BYTES)
        return Answer(Fault(200, body=raw, delay_seconds=delay), "unreadable")
    if pick < 58:  # 404 whatever the body: no entitlement
        body = rng.choice([None, {"errors": [{"code": "ENTITLEMENT_NOT_FOUND"}]}, b"not json"])
        return Answer(Fault(404, body=body, delay_seconds=delay), "missing")
    if pick < 68:  # Kinde refuses the caller's token
        body = rng.choice([None, {"errors": [{"code": "TOKEN_INVALID"}]}, b"", b"\x00garbage"])
        return Answer(Fault(rng.choice([401, 403]), body=body, delay_seconds=delay), "refused")
    if pick < 88:  # rate limited or a server error: retried within bounds
        status = rng.choice([429, 429, 500, 502, 503, 504])
        headers: dict[str, str] = {}
        for name in ("RateLimit-Reset", "Retry-After"):
            if rng.random() < 0.5:
                headers[name] = rng.choice(["0", "1", "2", "3", "30", "86400", "-1", "1.5", "soon", "\xb2"])
        return Answer(
            Fault(status, headers=headers, body=rng.choice([None, b"", b"{"]), delay_seconds=delay),
            "retry",
            wait=server_wait(headers),
        )
    status = rng.choice([400, 405, 409, 410, 418, 422, 451, 501, 505, 300])
    return Answer(Fault(status, body=rng.choice([None, b"", b"[]"]), delay_seconds=delay), "fail")


def expected(answers: list[Answer]) -> tuple[str, int | None]:
    """What the client makes of this sequence of answers (then the stand-in's own: pro, 5)."""
    for attempt in range(1, entitlements.MAX_ATTEMPTS + 1):
        current = answers[attempt - 1] if attempt <= len(answers) else Answer(Fault(), "ok", PRO_LIMIT)
        if current.meaning != "retry":
            return ("unreadable" if current.meaning == "fail" else current.meaning), current.limit
        if attempt == entitlements.MAX_ATTEMPTS or (current.wait or 0) > entitlements.MAX_WAIT_SECONDS:
            return "unreadable", None
    raise AssertionError("unreachable")


# -- the fuzz run -------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_env(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> pytest.MonkeyPatch:
    env.setenv("ENTITLEMENT_CACHE_SECONDS", "0")  # every request asks Kinde: every answer counts
    env.setattr(kinde_http, "READ_TIMEOUT_SECONDS", READ_TIMEOUT)  # where the bounded GET reads it
    return env


def check(result: Any, route: str, outcome: str, limit: int | None, used: int) -> str:
    """Compare one answer with the oracle; returns a label for the figures."""
    assert result.status < 500 or result.error_code == "ENTITLEMENT_ERROR", (result.status, result.body)
    if result.status >= 400:
        assert isinstance(result.body, dict) and set(result.body["error"]) >= {"code", "message"}
    if outcome == "refused":
        assert (result.status, result.error_code) == (401, "UNAUTHORIZED")
        assert "www-authenticate" in result.headers
        return "401"
    if route == "POST /accounts":
        if outcome == "unreadable":
            assert (result.status, result.error_code) == (503, "ENTITLEMENT_ERROR")
            assert result.headers["retry-after"].isdigit()
            return "503 ENTITLEMENT_ERROR"
        if outcome == "missing":
            assert (result.status, result.error_code) == (403, "NO_ENTITLEMENT")
            return "403 NO_ENTITLEMENT"
        if limit is not None and used >= limit:
            assert (result.status, result.error_code) == (403, "LIMIT_REACHED")
            assert result.body["error"]["usage"] == {"used": used, "limit": limit}
            return "403 LIMIT_REACHED"
        assert result.status == 201, result.body
        return "201"
    assert result.status == 200, result.body
    usage = result.body["usage"] if route == "GET /accounts" else result.body["tracked_accounts"]
    if outcome == "unreadable":
        assert usage == {"used": used, "limit": None, "limitSource": "unavailable"}
        return "200 unavailable"
    want = 0 if outcome == "missing" else limit
    over = {"excess": used - want} if want is not None and used > want else {}  # how many to remove
    assert usage == {"used": used, "limit": want, "limitSource": "kinde", **over}
    return "200 kinde"


def test_fuzz_account_api_answers(fuzz_env: pytest.MonkeyPatch, kinde: KindeStandIn) -> None:
    rng = random.Random(SEED)
    api = entitlements.get_account_api()
    waits: list[float] = []
    api._sleep = waits.append  # retries are real, their sleeps recorded (and skipped)
    figures: Counter[str] = Counter()
    answers_sent = 0
    for number in range(EXAMPLES):
        user = f"kp_fuzz{number:05d}"
        kinde.set_plan(user, "pro")
        used = rng.choice([0, 0, 1, 2])
        seed(user, used)
        answers = [answer(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        outcome, limit = expected(answers)
        kinde.faults[:] = [a.fault for a in answers]
        calls_before = kinde.account_api_calls
        route = rng.choice(["POST /accounts", "POST /accounts", "GET /accounts", "GET /usage"])
        client = AccountsClient(kinde, user)
        if route == "POST /accounts":
            result = client.add(f"Fuzz {number}", f"F-{number}")
        elif route == "GET /accounts":
            result = client.list()
        else:
            result = client.request("GET", "/usage")
        try:
            label = check(result, route, outcome, limit, used)
        except AssertionError as error:
            shown = [(a.fault.status, a.fault.headers, repr(a.fault.body)[:200], a.meaning) for a in answers]
            raise AssertionError(f"example {number} {route}: {shown} -> {result}") from error
        answers_sent += kinde.account_api_calls - calls_before
        kinde.faults.clear()
        figures[f"{route} -> {label}"] += 1
    assert all(0 <= w <= entitlements.MAX_WAIT_SECONDS for w in waits), waits
    print(f"\nKinde answers fuzzed: {EXAMPLES} requests, {answers_sent} Account API answers, seed {SEED}")
    for label, count in sorted(figures.items()):
        print(f"  {label}: {count}")
    # The run covered every class of outcome, or it proved little.
    assert {"201", "401", "403 NO_ENTITLEMENT", "503 ENTITLEMENT_ERROR", "200 unavailable"} <= {
        label.split(" -> ")[1] for label in figures
    }


def test_json_module_is_what_the_oracle_assumes() -> None:
    """Control for the oracle: Python's json reads NaN/Infinity/1e400 (so the client must refuse
    them itself) and gives up on deep nesting with RecursionError, not ValueError."""
    assert json.loads(b"NaN") != json.loads(b"NaN")
    assert json.loads(b"1e400") == float("inf")
    with pytest.raises(RecursionError):
        json.loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    "raw",
    UNREADABLE_BYTES[5:11],
    ids=["NaN", "Infinity", "-Infinity", "1e400", "deep-array", "deep-object"],
)
def test_unreadable_numbers_and_deep_nesting_are_503_for_adds_and_unavailable_for_reads(
    fuzz_env: pytest.MonkeyPatch, kinde: KindeStandIn, raw: bytes
) -> None:
    """Regression: NaN/Infinity/1e400 made ``int()`` raise (500), a deep document RecursionError (500)."""
    kinde.set_plan("kp_regression", "pro")
    client = AccountsClient(kinde, "kp_regression")
    kinde.faults[:] = [Fault(200, body=raw)]
    added = client.add("A", "1")
    assert (added.status, added.error_code) == (503, "ENTITLEMENT_ERROR")
    kinde.faults[:] = [Fault(200, body=raw)]
    usage = client.request("GET", "/usage").body["tracked_accounts"]
    assert usage == {"used": 0, "limit": None, "limitSource": "unavailable"}


@pytest.mark.parametrize("status", [401, 403])
def test_kinde_refusing_the_token_is_401_on_every_route(
    fuzz_env: pytest.MonkeyPatch, kinde: KindeStandIn, status: int
) -> None:
    """Regression: a 401/403 from the Account API was a 503 (adds) and "unavailable" (reads)."""
    client = AccountsClient(kinde, "kp_refused")
    for route in ("POST /accounts", "GET /accounts", "GET /usage"):
        kinde.faults[:] = [Fault(status)]
        method, path = route.split()
        result = client.add("A", "1") if method == "POST" else client.request(method, path)
        assert (result.status, result.error_code) == (401, "UNAUTHORIZED")
        assert kinde.faults == []  # not retried
