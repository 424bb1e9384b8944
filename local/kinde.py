"""A local Kinde stand-in: JWKS, dev access tokens, the Account API, plan changes and webhooks.

It speaks the parts of Kinde that Plan Guard uses (KINDE.md), from a local plan store: each user
has a plan code, and limits come from ``PLAN_LIMITS``. ``make dev`` runs it unless
``KINDE_ISSUER_URL`` is set; tests use it as a programmable Kinde on 127.0.0.1: plans per user
(``set_plan``), any answer the Account API or the JWKS endpoint should give next (``faults``,
``jwks_faults``: status, headers, raw body, delay), key rotation, a call counter.

Dev endpoints (what ``make token``, ``make plan`` and ``make webhook`` call):
  POST /dev/token   {"user", "plan"?, "ttlSeconds"?}   -> {"access_token", ...}
  POST /dev/plan    {"user", "plan", "applyAfter"?}    -> the plan check's decision, applied or not
  POST /dev/webhook {"type", "user", "data"?, "ageSeconds"?}            -> the API's answer
                    or {"redeliver": webhookId, "newWebhookId"?: true}   (the same body again)
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.web import BackgroundHTTPServer, http_request

DEFAULT_PLAN = "free"
WEBHOOK_PATH = "/webhooks/kinde"
# Kinde running the workflow on a plan selection: (user, current plan, requested plan) -> decision.
PlanChangeHook = Callable[[str, str | None, str], dict[str, Any]]
# The stand-in of each local API (by the API's URL): the gateway passes the dashboard's /dev/token
# and /dev/plan on to it, so the page calls its own origin only.
_STANDINS: weakref.WeakValueDictionary[str, KindeStandIn] = weakref.WeakValueDictionary()


def standin_for(api_url: str) -> KindeStandIn | None:
    return _STANDINS.get(api_url)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def webhook_claims(
    event_type: str, data: dict[str, Any], *, event_id: str | None = None, age_seconds: float = 0
) -> dict[str, Any]:
    """What Kinde signs in every webhook: a new ``event_id`` (unless given) and the ``timestamp``
    of the event, ``age_seconds`` ago (negative: in the future), to try stale and future events."""
    return {
        "type": event_type,
        "event_id": event_id or f"event_{uuid.uuid4().hex}",
        "source": "admin",
        "timestamp": datetime.fromtimestamp(time.time() - age_seconds, UTC).isoformat(),
        "data": data,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Fault:
    """One canned answer, consumed in order: exactly this status, these headers and this body
    (bytes are sent as they are, e.g. malformed JSON; anything else as JSON), after ``delay_seconds``.
    Status 0 means only the delay, then the normal answer (a slow Kinde)."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_seconds: float = 0.0


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


class KindeStandIn(BackgroundHTTPServer):
    def __init__(
        self,
        plan_limits: dict[str, dict[str, int | None]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        audience: str | None = None,
        api_url: str | None = None,
    ) -> None:
        self.plan_limits = plan_limits
        self.audience = audience
        self.state_file = state_file
        self.api_url = api_url  # the local API gateway, where webhooks are delivered
        self.plans: dict[str, str] = {}
        self.pending: dict[str, tuple[str, float]] = {}  # user -> (plan, when it applies, epoch s)
        self.keys: list[SigningKey] = []
        self.faults: list[Fault] = []  # the Account API's next answers
        self.jwks_faults: list[Fault] = []  # the JWKS endpoint's next answers
        self.account_api_calls = 0
        self.jwks_calls = 0
        self.webhooks: dict[str, str] = {}  # webhook-id -> the signed body, for redelivery
        self.plan_change_hook: PlanChangeHook | None = None
        self._lock = threading.RLock()
        if state_file and state_file.exists():
            state = json.loads(state_file.read_text())
            self.plans = dict(state.get("plans", {}))
            self.pending = {user: (plan, float(at)) for user, (plan, at) in state.get("pending", {}).items()}
            for item in state.get("keys", []):
                key = serialization.load_pem_private_key(item["pem"].encode(), password=None)
                self.keys.append(SigningKey(item["kid"], key))  # type: ignore[arg-type]
        if not self.keys:
            self.rotate_key()
        super().__init__(host, port, self._handler_class())
        if api_url:
            _STANDINS[api_url] = self

    def _save(self) -> None:
        if not self.state_file:
            return
        pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        with self._lock:
            state = {
                "plans": self.plans,
                "pending": self.pending,
                "keys": [
                    {"kid": k.kid, "pem": k.private_key.private_bytes(*pem).decode()} for k in self.keys
                ],
            }
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1))
            tmp.replace(self.state_file)

    # -- tokens and keys -----------------------------------------------------------------------
    def mint(
        self,
        user_id: str | None,
        *,
        ttl_seconds: int = 3600,
        key: SigningKey | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token shaped like Kinde's, for ``user_id`` (None: no ``sub``)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer if issuer is not None else self.url,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "azp": "plan-guard-dev",
            "scp": ["openid", "profile", "email"],
        }
        if user_id is not None:
            payload["sub"] = user_id
        if self.audience:
            payload["aud"] = [self.audience]
        payload.update(claims)
        signing = key or self.keys[-1]
        return jwt.encode(payload, signing.private_key, algorithm="RS256", headers={"kid": signing.kid})

    def rotate_key(self) -> SigningKey:
        """Publish a new signing key, kept beside the old ones (as Kinde does during rotation)."""
        key = SigningKey(f"dev-{uuid.uuid4().hex[:8]}", new_rsa_key())
        with self._lock:
            self.keys.append(key)
        self._save()
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    # -- plans -----------------------------------------------------------------------------------
    def _check_plan(self, plan: str) -> None:
        if plan not in self.plan_limits:
            raise ValueError(f"Unknown plan {plan!r}; known plans: {', '.join(self.plan_limits)}")

    def plan_of(self, user_id: str) -> str:
        """The user's plan now (a late plan change whose time has come is applied first)."""
        with self._lock:
            plan, at = self.pending.get(user_id, (None, 0.0))
            if plan is not None and time.time() >= at:
                self.pending.pop(user_id)
                self.plans[user_id] = plan
                self._save()
            return self.plans.get(user_id, DEFAULT_PLAN)

    def set_plan(self, user_id: str, plan: str) -> None:
        self._check_plan(plan)
        with self._lock:
            self.plans[user_id] = plan
            self.pending.pop(user_id, None)
        self._save()

    def request_plan_change(self, user_id: str, plan: str, apply_after: float = 0) -> dict[str, Any]:
        """What Kinde does on a plan selection: run the workflow (``plan_change_hook``), then apply
        the change (after ``apply_after`` seconds, if given) or deny it. A failing workflow stops it."""
        self._check_plan(plan)
        current = self.plan_of(user_id)
        answer: dict[str, Any] = {"user": user_id, "from": current, "requested": plan}
        try:
            decision = self.plan_change_hook(user_id, current, plan) if self.plan_change_hook else {}
        except Exception as exc:
            return {**answer, "plan": current, "allowed": False, "error": f"The plan check failed: {exc}"}
        decision = {"allowed": True, "message": None, "reasons": [], "usage": None, **decision}
        if decision["allowed"] and apply_after > 0:
            at = time.time() + apply_after
            with self._lock:
                self.pending[user_id] = (plan, at)
            self._save()
            answer.update(applyAfter=apply_after, applyAt=_iso(at))
        elif decision["allowed"]:
            self.set_plan(user_id, plan)
        return {**answer, "plan": self.plan_of(user_id), **decision}

    # -- Account API -----------------------------------------------------------------------------
    def entitlement_body(self, user_id: str, feature: str) -> dict[str, Any] | None:
        plan = self.plan_of(user_id)
        features = self.plan_limits.get(plan, {})
        if feature not in features:
            return None
        entitlement = {
            "id": f"entitlement_{plan}_{feature}",
            "fixed_charge": None,
            "price_name": plan.title(),
            "unit_amount": None,
            "feature_key": feature,
            "feature_name": feature.replace("_", " ").capitalize(),
            "entitlement_limit_max": features[feature],
            "entitlement_limit_min": None,
        }
        return {"data": {"org_code": "org_dev", "entitlement": entitlement}, "metadata": {}}

    def entitlements_body(self, user_id: str) -> dict[str, Any]:
        plan = self.plan_of(user_id)
        features = self.plan_limits.get(plan, {})
        entitlements = [
            body["data"]["entitlement"] for f in features if (body := self.entitlement_body(user_id, f))
        ]
        return {
            "data": {
                "org_code": "org_dev",
                "plans": [{"key": plan, "subscribed_on": datetime.now(UTC).isoformat()}],
                "entitlements": entitlements,
            },
            "metadata": {"has_more": False, "next_page_starting_after": None},
        }

    def _user_from(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.keys if k.kid == kid)
            claims = jwt.decode(
                token, key.private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
            )
        except (jwt.PyJWTError, StopIteration):
            return None
        return claims["sub"] if isinstance(claims.get("sub"), str) else None

    # -- webhooks --------------------------------------------------------------------------------
    def sign_webhook(
        self, event_type: str, data: dict[str, Any], *, event_id: str | None = None, age_seconds: float = 0
    ) -> str:
        """A Kinde webhook body: a JWT signed RS256 with the current key (``kid`` in the header)."""
        claims = webhook_claims(event_type, data, event_id=event_id, age_seconds=age_seconds)
        key = self.keys[-1]
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})

    def deliver_webhook(self, body: str, webhook_id: str | None = None) -> dict[str, Any]:
        """POST a signed webhook to the local API, as Kinde delivers it. A new ``webhook-id`` unless
        ``webhook_id`` is given (a redelivery reuses it). ``delivered`` means the API answered 2xx."""
        webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        with self._lock:
            self.webhooks[webhook_id] = body
        answer: dict[str, Any] = {"delivered": False, "webhookId": webhook_id}
        if not self.api_url:
            return {**answer, "error": "No local API to deliver to (the stand-in runs without make dev)."}
        url = f"{self.api_url}{WEBHOOK_PATH}"
        headers = {"Content-Type": "application/jwt", "webhook-id": webhook_id}
        try:
            status, response = http_request("POST", url, body.encode(), headers, timeout=60)
        except OSError as exc:
            return {**answer, "error": f"The API at {self.api_url} does not answer: {exc}"}
        answer.update(delivered=200 <= status < 300, status=status, response=response)
        if status == 404:
            answer["error"] = (
                f"The API at {self.api_url} has no POST {WEBHOOK_PATH} route: add KindeWebhookFunction "
                "with that HttpApi event to template.yaml."
            )
        return answer

    # -- HTTP ------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers = headers or {}
                self.send_response(status)
                if not any(name.lower() == "content-type" for name in headers):
                    self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: HTTPStatus, message: str) -> None:
                code = status.phrase.upper().replace(" ", "_")
                self._send(status, {"errors": [{"code": code, "message": message}]})

            def _fault(self, queue: list[Fault]) -> bool:
                """Answer with the next queued fault; False when there is none (or only a delay)."""
                with standin._lock:
                    fault = queue.pop(0) if queue else None
                if fault is None:
                    return False
                time.sleep(fault.delay_seconds)
                if fault.status:
                    body = {"errors": [{"code": "FAULT"}]} if fault.body is None else fault.body
                    self._send(fault.status, body, fault.headers)
                return bool(fault.status)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path in ("/.well-known/jwks", "/.well-known/jwks.json"):
                    with standin._lock:
                        standin.jwks_calls += 1
                    if not self._fault(standin.jwks_faults):
                        self._send(200, standin.jwks())
                elif path.startswith("/account_api/v1/"):
                    with standin._lock:
                        standin.account_api_calls += 1
                    if not self._fault(standin.faults):
                        self._account_api(path)
                else:
                    self._error(HTTPStatus.NOT_FOUND, "Not found")

            def _account_api(self, path: str) -> None:
                user = standin._user_from(self.headers.get("Authorization"))
                prefix = "/account_api/v1/entitlement/"
                if user is None:
                    self._error(HTTPStatus.UNAUTHORIZED, "Invalid token")
                elif path == "/account_api/v1/entitlements":
                    self._send(200, standin.entitlements_body(user))
                elif path.startswith(prefix) and (
                    body := standin.entitlement_body(user, unquote(path[len(prefix) :]))
                ):
                    self._send(200, body)
                else:
                    self._error(HTTPStatus.NOT_FOUND, "Entitlement not found")

            def _json_body(self) -> dict[str, Any]:
                """The JSON object sent, or ``{}`` (then the caller answers 400 for what is missing)."""
                raw_length = self.headers.get("Content-Length") or "0"
                if not re.fullmatch(r"[0-9]{1,7}", raw_length):
                    self.close_connection = True  # the body's end is unknown: do not reuse it
                    return {}
                try:
                    data = json.loads(self.rfile.read(int(raw_length)) or b"{}")
                except ValueError:
                    return {}
                return data if isinstance(data, dict) else {}

            def do_POST(self) -> None:
                body = self._json_body()
                user, plan = body.get("user"), body.get("plan")
                if self.path == "/dev/webhook" and isinstance(body.get("redeliver"), str):
                    self._webhook(body["redeliver"], None, new_id=body.get("newWebhookId") is True)
                elif not isinstance(user, str) or not user:
                    self._error(HTTPStatus.BAD_REQUEST, 'Give {"user": "kp_..."}')
                elif self.path == "/dev/token":
                    self._token(user, plan, body.get("ttlSeconds"))
                elif self.path == "/dev/plan":
                    self._plan(user, plan, body.get("applyAfter", 0))
                elif self.path == "/dev/webhook":
                    event_type, data = body.get("type"), body.get("data", {"user": {"id": user}})
                    age = body.get("ageSeconds", 0)
                    if not isinstance(event_type, str) or not isinstance(data, dict):
                        self._error(HTTPStatus.BAD_REQUEST, 'Give {"type": "user.deleted", "user": "kp_..."}')
                    elif isinstance(age, bool) or not isinstance(age, int | float) or not -1e9 <= age <= 1e9:
                        self._error(HTTPStatus.BAD_REQUEST, "ageSeconds must be a number of seconds")
                    elif body.get("deliver") is False:  # make invoke: the signed body only
                        self._send(200, {"body": standin.sign_webhook(event_type, data, age_seconds=age)})
                    else:
                        self._webhook(None, standin.sign_webhook(event_type, data, age_seconds=age))
                else:
                    self._error(HTTPStatus.NOT_FOUND, "Not found")

            def _token(self, user: str, plan: Any, ttl: Any) -> None:
                try:
                    if isinstance(plan, str):
                        standin.set_plan(user, plan)
                except ValueError as exc:
                    self._error(HTTPStatus.BAD_REQUEST, str(exc))
                    return
                ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else 3600
                token = standin.mint(user, ttl_seconds=ttl)
                answer = {
                    "access_token": token,
                    "token_type": "bearer",
                    "expires_in": ttl,
                    "plan": standin.plan_of(user),
                }
                self._send(200, answer)

            def _plan(self, user: str, plan: Any, apply_after: Any) -> None:
                if not isinstance(plan, str):
                    self._error(HTTPStatus.BAD_REQUEST, 'Give {"user": "kp_...", "plan": "free"}')
                elif (
                    isinstance(apply_after, bool)
                    or not isinstance(apply_after, int | float)
                    or apply_after < 0
                ):
                    self._error(HTTPStatus.BAD_REQUEST, "applyAfter must be a number of seconds, 0 or more")
                else:
                    try:
                        answer = standin.request_plan_change(user, plan, apply_after)
                    except ValueError as exc:
                        self._error(HTTPStatus.BAD_REQUEST, str(exc))
                        return
                    self._send(502 if "error" in answer else 200, answer)

            def _webhook(self, webhook_id: str | None, token: str | None, *, new_id: bool = False) -> None:
                if token is None and (token := standin.webhooks.get(webhook_id or "")) is None:
                    self._error(HTTPStatus.NOT_FOUND, f"No webhook {webhook_id!r} was sent")
                    return
                # new_id: the same signed body under a webhook-id of its own, as a replayer sends it
                answer = standin.deliver_webhook(token, None if new_id else webhook_id)
                self._send(200 if answer["delivered"] else 502, answer)

        return Handler
