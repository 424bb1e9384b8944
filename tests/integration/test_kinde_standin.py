"""The Kinde stand-in over real sockets: the programmable fixture tests use, plan changes, webhooks."""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from unittest.mock import ANY
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import WEBHOOK_PATH, Fault, KindeStandIn
from local.web import BackgroundHTTPServer


def raw_post(url: str, path: str, headers: str, body: bytes = b"") -> tuple[int, bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() + body)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(
                    next(
                        (
                            line.split(b":")[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")
                        ),
                        b"0",
                    )
                )
                if len(rest) >= length:
                    return int(head.split(b" ")[1]), rest[:length]
    raise AssertionError("no response")


@pytest.mark.parametrize("length", ["abc", "\u00b2", "-5", "99999999999"])
def test_garbage_content_length_is_a_400(kinde: KindeStandIn, length: str) -> None:
    status, body = raw_post(kinde.url, "/dev/token", f"Content-Length: {length}\r\n")
    assert status == 400
    assert "user" in json.loads(body)["errors"][0]["message"]
    # and it keeps serving
    status, body = raw_post(
        kinde.url,
        "/dev/token",
        "Content-Length: 17\r\nContent-Type: application/json\r\n",
        b'{"user":"kp_bob"}',
    )
    assert status == 200 and json.loads(body)["access_token"]


# -- one programmable Kinde: canned answers, keys, plans ---------------------------------------------
@pytest.fixture
def standin(tmp_path: Path) -> Iterator[KindeStandIn]:
    """A stand-in of its own (the shared one is reset only for what conftest knows about)."""
    kinde = KindeStandIn(copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json").start()
    yield kinde
    kinde.stop()


def entitlement(standin: KindeStandIn, user: str) -> requests.Response:
    return requests.get(
        f"{standin.url}/account_api/v1/entitlement/tracked_accounts",
        headers={"Authorization": f"Bearer {standin.mint(user)}"},
        timeout=10,
    )


def test_queued_answers_are_given_exactly_then_the_real_one(standin: KindeStandIn) -> None:
    standin.set_plan("kp_f", "pro")
    standin.faults += [
        Fault(429, {"RateLimit-Reset": "7", "Retry-After": "7"}),
        Fault(200, {"Content-Type": "text/plain", "X-Odd": "1"}, b'{"data": {"entitlement": '),
        Fault(0, delay_seconds=0.3),  # only slow
    ]
    limited = entitlement(standin, "kp_f")
    assert limited.status_code == 429
    assert (limited.headers["RateLimit-Reset"], limited.headers["Retry-After"]) == ("7", "7")
    malformed = entitlement(standin, "kp_f")
    assert malformed.content == b'{"data": {"entitlement": '
    assert malformed.headers["Content-Type"] == "text/plain" and malformed.headers["X-Odd"] == "1"
    started = time.monotonic()
    slow = entitlement(standin, "kp_f")
    assert time.monotonic() - started >= 0.3
    assert slow.json()["data"]["entitlement"]["entitlement_limit_max"] == 5
    assert entitlement(standin, "kp_f").status_code == 200
    assert standin.account_api_calls == 4 and standin.faults == []


def test_the_jwks_answers_can_be_queued_and_keys_rotate(standin: KindeStandIn) -> None:
    standin.jwks_faults += [Fault(503, {"Retry-After": "1"}), Fault(200, body={"keys": "not a list"})]
    jwks_url = f"{standin.url}/.well-known/jwks"
    assert requests.get(jwks_url, timeout=10).status_code == 503
    assert requests.get(jwks_url, timeout=10).json() == {"keys": "not a list"}
    first = standin.keys[0]
    rotated = standin.rotate_key()
    assert [key["kid"] for key in requests.get(jwks_url, timeout=10).json()["keys"]] == [
        first.kid,
        rotated.kid,
    ]
    assert standin.jwks_calls == 3
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(standin.mint("kp_r"))
    assert signing_key.key_id == rotated.kid  # new tokens use the newest key


def test_a_late_plan_change_is_decided_at_once_and_applied_later(
    standin: KindeStandIn, tmp_path: Path
) -> None:
    decided: list[tuple[str, str | None, str]] = []

    def allow(user: str, current: str | None, requested: str) -> dict[str, Any]:
        decided.append((user, current, requested))
        return {"allowed": True, "message": None, "reasons": [], "usage": None}

    standin.plan_change_hook = allow
    standin.set_plan("kp_late", "pro")
    response = requests.post(
        f"{standin.url}/dev/plan", json={"user": "kp_late", "plan": "free", "applyAfter": 0.5}, timeout=10
    )
    answer = response.json()
    assert response.status_code == 200 and decided == [("kp_late", "pro", "free")]
    assert (answer["allowed"], answer["plan"], answer["applyAfter"]) == (True, "pro", 0.5)
    # applyAt is shown in whole seconds; the change is due half a second from now.
    assert datetime.fromisoformat(answer["applyAt"]) >= datetime.now(UTC).replace(microsecond=0)
    assert entitlement(standin, "kp_late").json()["data"]["entitlement"]["entitlement_limit_max"] == 5
    reloaded = KindeStandIn(copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json")
    reloaded._server.server_close()
    assert reloaded.pending["kp_late"][0] == "free"  # a restart keeps the pending change
    time.sleep(0.6)
    assert entitlement(standin, "kp_late").json()["data"]["entitlement"]["entitlement_limit_max"] == 3
    assert standin.plan_of("kp_late") == "free" and not standin.pending
    for bad in (-1, "soon", True):
        rejected = requests.post(
            f"{standin.url}/dev/plan", json={"user": "kp_late", "plan": "pro", "applyAfter": bad}, timeout=10
        )
        assert rejected.status_code == 400 and "applyAfter" in rejected.text


def test_a_denied_late_change_is_never_applied(standin: KindeStandIn) -> None:
    standin.plan_change_hook = lambda _u, _c, _r: {
        "allowed": False,
        "message": "no",
        "reasons": [],
        "usage": None,
    }
    standin.set_plan("kp_denied", "pro")
    answer = standin.request_plan_change("kp_denied", "free", apply_after=0.01)
    assert answer["allowed"] is False and "applyAt" not in answer and not standin.pending


def entitlements(standin: KindeStandIn, user: str, query: str = "") -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {standin.mint(user)}"}
    url = f"{standin.url}/account_api/v1/entitlements{query}"
    body: dict[str, Any] = requests.get(url, headers=headers, timeout=10).json()
    return body


def subscribed_on(standin: KindeStandIn, user: str) -> tuple[str, datetime]:
    plan = entitlements(standin, user)["data"]["plans"][0]
    return plan["key"], datetime.fromisoformat(plan["subscribed_on"])


def test_a_change_applies_at_once_later_or_never_and_subscribed_on_says_when(standin: KindeStandIn) -> None:
    """Kinde fires the selection before payment: the stand-in applies an allowed change at once,
    after ``applyAfter`` (on its clock, moved here rather than waited for), or never (``fails``)."""
    standin.plan_change_hook = lambda _u, _c, _r: {"allowed": True}
    standin.set_plan("kp_when", "pro")
    key, since = subscribed_on(standin, "kp_when")
    assert key == "pro" and abs(since.timestamp() - time.time()) < 2
    standin.clock_offset = 100  # Kinde's clock, 100 s on
    at_once = requests.post(f"{standin.url}/dev/plan", json={"user": "kp_when", "plan": "free"}, timeout=10)
    assert (at_once.json()["plan"], at_once.json()["from"]) == ("free", "pro")
    key, applied = subscribed_on(standin, "kp_when")
    assert key == "free" and applied.timestamp() - since.timestamp() >= 99  # moved when it applied
    never = requests.post(
        f"{standin.url}/dev/plan", json={"user": "kp_when", "plan": "pro", "fails": True}, timeout=10
    ).json()
    assert (never["allowed"], never["fails"], never["plan"], "applyAt" in never) == (
        True,
        True,
        "free",
        False,
    )
    later = standin.request_plan_change("kp_when", "pro", apply_after=60)
    assert (later["plan"], standin.pending["kp_when"][0]) == ("free", "pro")
    standin.clock_offset += 59
    assert subscribed_on(standin, "kp_when")[0] == "free"
    standin.clock_offset += 2
    key, moved = subscribed_on(standin, "kp_when")
    assert key == "pro" and round(moved.timestamp() - applied.timestamp()) == 60  # at its own time
    # A selection whose payment fails supersedes a change still waiting: neither applies.
    standin.request_plan_change("kp_when", "free", apply_after=30)
    standin.request_plan_change("kp_when", "free", fails=True)
    standin.clock_offset += 31
    assert subscribed_on(standin, "kp_when") == ("pro", moved)
    for bad in ("yes", 1, None):
        rejected = requests.post(
            f"{standin.url}/dev/plan", json={"user": "kp_when", "plan": "free", "fails": bad}, timeout=10
        )
        assert rejected.status_code == 400 and "fails" in rejected.text


def test_the_entitlements_list_is_paged(standin: KindeStandIn) -> None:
    standin.plan_limits["pro"] = {"a_feature": 1, "b_feature": 2, "tracked_accounts": 5}
    standin.set_plan("kp_pages", "pro")
    first = entitlements(standin, "kp_pages", "?page_size=2")
    assert [item["feature_key"] for item in first["data"]["entitlements"]] == ["a_feature", "b_feature"]
    assert first["metadata"] == {"has_more": True, "next_page_starting_after": "entitlement_pro_b_feature"}
    second = entitlements(standin, "kp_pages", "?page_size=2&starting_after=entitlement_pro_b_feature")
    assert [item["feature_key"] for item in second["data"]["entitlements"]] == ["tracked_accounts"]
    assert second["metadata"] == {"has_more": False, "next_page_starting_after": None}
    assert first["data"]["plans"] == second["data"]["plans"]
    assert len(entitlements(standin, "kp_pages")["data"]["entitlements"]) == 3  # the default page: 10


# -- webhooks --------------------------------------------------------------------------------------
class Receiver:
    """A throwaway HTTP server on 127.0.0.1 playing the API gateway's POST /webhooks/kinde."""

    def __init__(self, status: int, answer: dict[str, Any]) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = BackgroundHTTPServer("127.0.0.1", 0, Handler).start()


@pytest.fixture
def receiver(standin: KindeStandIn) -> Iterator[Receiver]:
    received = Receiver(200, {"received": True})
    standin.api_url = received.server.url
    yield received
    received.server.stop()


def test_a_signed_webhook_verifies_against_the_jwks(standin: KindeStandIn) -> None:
    standin.rotate_key()
    token = standin.sign_webhook("user.deleted", {"user": {"id": "kp_gone"}})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == standin.keys[-1].kid
    key = jwt.PyJWKClient(f"{standin.url}/.well-known/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"])
    assert set(claims) == {"type", "event_id", "source", "timestamp", "data"}
    assert (claims["type"], claims["source"], claims["data"]) == (
        "user.deleted",
        "admin",
        {"user": {"id": "kp_gone"}},
    )
    assert claims["event_id"].startswith("event_") and datetime.fromisoformat(claims["timestamp"]).tzinfo
    assert (
        jwt.decode(standin.sign_webhook("x", {}), key.key, algorithms=["RS256"])["event_id"]
        != claims["event_id"]
    )


def test_dev_webhook_delivers_it_to_the_api(standin: KindeStandIn, receiver: Receiver) -> None:
    response = requests.post(
        f"{standin.url}/dev/webhook", json={"type": "user.deleted", "user": "kp_gone"}, timeout=10
    )
    answer = response.json()
    assert response.status_code == 200, answer
    assert answer == {"delivered": True, "status": 200, "response": {"received": True}, "webhookId": ANY}
    path, headers, body = receiver.requests[0]
    assert path == WEBHOOK_PATH and headers["content-type"] == "application/jwt"
    assert headers["webhook-id"] == answer["webhookId"]
    claims = jwt.decode(body, standin.keys[-1].private_key.public_key(), algorithms=["RS256"])
    assert (claims["type"], claims["data"]) == ("user.deleted", {"user": {"id": "kp_gone"}})
    again = requests.post(f"{standin.url}/dev/webhook", json={"redeliver": answer["webhookId"]}, timeout=10)
    assert again.json()["webhookId"] == answer["webhookId"]
    assert receiver.requests[1][1]["webhook-id"] == answer["webhookId"] and receiver.requests[1][2] == body
    other = requests.post(
        f"{standin.url}/dev/webhook", json={"type": "user.deleted", "user": "kp_2"}, timeout=10
    )
    assert other.json()["webhookId"] != answer["webhookId"]  # a new event, a new id


def test_webhook_errors_are_clear(standin: KindeStandIn, receiver: Receiver) -> None:
    def post(body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{standin.url}/dev/webhook", json=body, timeout=10)

    assert post({"user": "kp_x"}).status_code == 400  # no type
    assert post({"redeliver": "msg_unknown"}).status_code == 404
    no_route = Receiver(404, {"error": {"code": "NOT_FOUND"}})
    standin.api_url = no_route.server.url
    try:
        answer = post({"type": "user.deleted", "user": "kp_x"})
        assert answer.status_code == 502
        assert answer.json()["delivered"] is False and answer.json()["status"] == 404
        assert f"no POST {WEBHOOK_PATH} route" in answer.json()["error"]
    finally:
        no_route.server.stop()
    standin.api_url = None
    alone = post({"type": "user.deleted", "user": "kp_x"})
    assert alone.status_code == 502 and "No local API" in alone.json()["error"]


def test_dev_webhook_signs_a_stale_or_future_event_on_request(
    standin: KindeStandIn, receiver: Receiver
) -> None:
    """``ageSeconds`` (``make webhook AGE=``) dates the signed timestamp back, or ahead when negative."""
    for age in (73 * 3600, -600, 0):
        body = {"type": "user.deleted", "user": "kp_aged", "ageSeconds": age}
        assert requests.post(f"{standin.url}/dev/webhook", json=body, timeout=10).status_code == 200
        claims = jwt.decode(receiver.requests[-1][2], options={"verify_signature": False})
        signed_at = datetime.fromisoformat(claims["timestamp"]).timestamp()
        assert abs(time.time() - age - signed_at) < 5 and claims["event_id"].startswith("event_")
    for bad in ("old", True, None, 1e12):
        body = {"type": "user.deleted", "user": "kp_aged", "ageSeconds": bad}
        answer = requests.post(f"{standin.url}/dev/webhook", json=body, timeout=10)
        assert (answer.status_code, answer.json()["errors"][0]["code"]) == (400, "BAD_REQUEST")
