"""Fuzzing the Management API's answers, as ``test_fuzz_kinde`` fuzzes the Account API's.

The stand-in's entitlements list answers with generated shapes, types, numbers, status codes,
rate-limit headers, slowness and malformed JSON, one or more pages; each example reads one
customer's entitlement with the Management API client and compares the outcome with an oracle
written from the contract (not from the client's code):

- a limit (None: unlimited, from null or 2147483647 and more), or the feature missing;
- ``EntitlementUnavailable`` (fail closed, with a Retry-After) for an outage past the retry bounds,
  a timeout, a status that is neither an answer nor retryable, or an answer we cannot read;
- ``KindeRejected`` for a 4xx other than 429 (a 401/403 only after one re-mint was refused too).

Fixed seed and a small count in ``make test``; ``FUZZ_EXAMPLES=2000 make fuzz`` for a longer run.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from planguard import kinde_http
from planguard.errors import EntitlementUnavailable
from planguard.kinde_management import UNLIMITED_SENTINEL, KindeRejected, ManagementApi

from local.kinde import Fault, KindeStandIn
from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET
from tests.fuzz.test_fuzz_kinde import (
    EXAMPLES,
    READ_TIMEOUT,
    SEED,
    UNREADABLE_BYTES,
    any_json,
    limit_value,
    server_wait,
)

FEATURE = "tracked_accounts"
MISSING = object()
REAL_PAGE = {
    "has_more": False,
    "entitlements": [{"id": "e_real", "feature_code": FEATURE, "entitlement_limit_max": 5}],
}


@dataclass
class Answer:
    fault: Fault
    kind: str  # "body" (a 2xx to read), "retry", "refused", "rejected", "fail"
    body: Any = None  # for "body": what the client reads (bytes: as sent)
    wait: float | None = None  # for "retry": the wait the server asked for


def entitlement(rng: random.Random) -> Any:
    if rng.random() < 0.08:
        return any_json(rng)
    item: dict[str, Any] = {}
    ident = rng.choice(["e_1", "e_2", f"e_{rng.randrange(1000)}", "", None, 5, MISSING])
    if ident is not MISSING:
        item["id"] = ident
    code = rng.choice([FEATURE, FEATURE, FEATURE, "feat_0195", None, 5, MISSING])
    if code is not MISSING:
        item["feature_code"] = code
    value = limit_value(rng) if rng.random() < 0.9 else MISSING
    if value is not MISSING:
        item["entitlement_limit_max"] = value
    return item


def page_body(rng: random.Random) -> Any:
    shape = rng.randrange(10)
    if shape < 7:
        body: dict[str, Any] = {"code": "OK", "message": "Success"}
        more = rng.choice([False, False, False, None, True, True, "true", 1, MISSING])
        if more is not MISSING:
            body["has_more"] = more
        items = [entitlement(rng) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))]
        body["entitlements"] = items if items or rng.random() < 0.5 else rng.choice([None, "x", {}])
        if rng.random() < 0.5:
            body["plans"] = rng.choice(
                [[{"code": "pro", "subscribed_on": "2026-01-01T00:00:00Z"}], any_json(rng)]
            )
        return body
    if shape == 7:
        return {"has_more": False, "entitlements": any_json(rng)}
    if shape == 8:
        return rng.choice([[], "data", 5, None, True, [{"entitlements": []}]])
    return any_json(rng)


def answer(rng: random.Random) -> Answer:
    delay = rng.choice([0.0] * 8 + [0.02, 0.1])
    if rng.random() < 0.05:  # slower than the read timeout: a timeout, then a retry
        return Answer(Fault(rng.choice([0, 200]), delay_seconds=READ_TIMEOUT + 0.15), "retry")
    pick = rng.randrange(100)
    if pick < 45:
        body = page_body(rng)
        sent = b"null" if body is None else body  # the stand-in sends its own body for None
        return Answer(Fault(rng.choice([200] * 6 + [201, 203]), body=sent, delay_seconds=delay), "body", body)
    if pick < 53:
        raw = rng.choice(UNREADABLE_BYTES)
        return Answer(Fault(200, body=raw, delay_seconds=delay), "body", raw)
    if pick < 61:
        body = rng.choice([None, {"errors": [{"code": "TOKEN_INVALID"}]}, b"", b"\x00garbage"])
        return Answer(Fault(rng.choice([401, 403]), body=body, delay_seconds=delay), "refused")
    if pick < 68:
        body = rng.choice([None, {"errors": [{"code": "CUSTOMER_INVALID", "message": "no"}]}, b"", b"[]"])
        status = rng.choice([400, 404, 405, 409, 410, 418, 422, 451])
        return Answer(Fault(status, body=body, delay_seconds=delay), "rejected")
    if pick < 90:
        status = rng.choice([429, 429, 500, 502, 503, 504])
        headers: dict[str, str] = {}
        for name in ("RateLimit-Reset", "Retry-After"):
            if rng.random() < 0.5:
                headers[name] = rng.choice(["0", "1", "2", "3", "30", "86400", "-1", "1.5", "soon", "\xb2"])
        fault = Fault(status, headers=headers, body=rng.choice([None, b"", b"{"]), delay_seconds=delay)
        return Answer(fault, "retry", wait=server_wait(headers))
    status = rng.choice([300, 501, 505])
    return Answer(Fault(status, body=rng.choice([None, b"", b"[]"]), delay_seconds=delay), "fail")


# -- the oracle ---------------------------------------------------------------------------------
def readable(body: Any) -> Any:
    """What a JSON reader makes of the body, or MISSING when it is not one JSON object."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return MISSING
    return body if isinstance(body, dict) else MISSING


def limit_of(raw: Any) -> tuple[str, int | None]:
    if raw is None:
        return "limit", None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return "unavailable", None
    if raw != raw or raw in (float("inf"), float("-inf")) or raw < 0 or raw != int(raw):
        return "unavailable", None
    return "limit", None if int(raw) >= UNLIMITED_SENTINEL else int(raw)


def expected(answers: list[Answer]) -> tuple[str, int | None]:
    """("limit", n) / ("missing", None) / ("unavailable", None) / ("rejected", status)."""
    queue = list(answers)

    def next_answer() -> Answer:
        return queue.pop(0) if queue else Answer(Fault(200), "body", REAL_PAGE)

    found: list[dict[str, Any]] = []
    after: Any = None
    while True:  # one page: a request, a re-mint after one refusal, each with bounded attempts
        page: Any = None
        for refusals in (0, 1):
            for attempt in range(1, kinde_http.MAX_ATTEMPTS + 1):
                current = next_answer()
                if current.kind == "retry":
                    if (
                        attempt == kinde_http.MAX_ATTEMPTS
                        or (current.wait or 0) > kinde_http.MAX_WAIT_SECONDS
                    ):
                        return "unavailable", None
                    continue
                break
            if current.kind == "refused" and refusals == 0:
                continue
            if current.kind in ("refused", "rejected"):
                return "rejected", current.fault.status
            if current.kind == "fail":
                return "unavailable", None
            page = readable(current.body)
            break
        if page is MISSING:
            return "unavailable", None
        items = page.get("entitlements")
        listed = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
        found.extend(listed)
        if page.get("has_more") is not True:
            break
        last = listed[-1].get("id") if listed else None
        if not isinstance(last, str) or not last or last == after:
            return "unavailable", None
        after = last
    match = next((item for item in found if item.get("feature_code") == FEATURE), None)
    if match is None:
        return "missing", None
    return limit_of(match.get("entitlement_limit_max"))


# -- the run ------------------------------------------------------------------------------------
@pytest.fixture
def client(kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch) -> tuple[ManagementApi, list[float]]:
    monkeypatch.setattr(kinde_http, "READ_TIMEOUT_SECONDS", READ_TIMEOUT)
    waits: list[float] = []
    api = ManagementApi(kinde.url, DEV_M2M_CLIENT_ID, lambda: DEV_M2M_CLIENT_SECRET, sleep=waits.append)
    return api, waits


def test_fuzz_management_api_answers(kinde: KindeStandIn, client: tuple[ManagementApi, list[float]]) -> None:
    api, waits = client
    rng = random.Random(SEED + 1)
    figures: Counter[str] = Counter()
    for number in range(EXAMPLES):
        user = f"kp_mfuzz{number:05d}"
        kinde.set_plan(user, "pro")
        answers = [answer(rng) for _ in range(rng.choice([1, 1, 2, 3, 4]))]
        want, value = expected(answers)
        kinde.management_faults[:] = [a.fault for a in answers]
        try:
            found = api.customer_entitlement(f"customer_user_{user}", FEATURE, None)
            got: tuple[str, int | None] = ("missing", None) if found.missing else ("limit", found.limit)
            if found.missing:
                assert found.limit == 0
        except EntitlementUnavailable as unavailable:
            assert unavailable.headers["Retry-After"].isdigit()
            got = ("unavailable", None)
        except KindeRejected as rejected:
            got = ("rejected", rejected.status)
        shown = [(a.fault.status, a.fault.headers, repr(a.fault.body)[:160], a.kind) for a in answers]
        assert got == (want, value), f"example {number}: {shown}"
        kinde.management_faults.clear()
        figures[want] += 1
    assert all(0 <= w <= kinde_http.MAX_WAIT_SECONDS for w in waits), waits
    print(
        f"\nManagement API answers fuzzed: {EXAMPLES} reads, seed {SEED + 1}, mints {kinde.management.mints}"
    )
    for label, count in sorted(figures.items()):
        print(f"  {label}: {count}")
    assert {"limit", "missing", "unavailable", "rejected"} <= set(figures)
