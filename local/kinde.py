"""A local Kinde stand-in: JWKS, dev access tokens, the Account API and plan changes.

It speaks the parts of Kinde that Plan Guard uses (KINDE.md), from a local plan store: each user
has a plan code, and limits come from ``PLAN_LIMITS``. Tests use it as the fake Kinde on
127.0.0.1 (with fault injection); ``make dev`` uses it unless ``KINDE_ISSUER_URL`` is set.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.background import BackgroundHTTPServer

DEFAULT_PLAN = "free"
PlanChangeHook = Callable[[str, str | None, str], dict[str, Any]]


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Fault:
    """One canned answer for the Account API, consumed in order (tests: 429, 500, slow...)."""

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
    ) -> None:
        self.plan_limits = plan_limits
        self.audience = audience
        self.state_file = state_file
        self.plans: dict[str, str] = {}
        self.keys: list[SigningKey] = []
        self.faults: list[Fault] = []
        self.account_api_calls = 0
        self.plan_change_hook: PlanChangeHook | None = None
        self._lock = threading.Lock()
        self._load_state()
        if not self.keys:
            self.keys.append(SigningKey(f"dev-{uuid.uuid4().hex[:8]}", new_rsa_key()))
            self._save_state()
        super().__init__(host, port, self._handler_class(), "kinde-standin")

    # -- tokens ------------------------------------------------------------------------------
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
        """Publish a new key (kept beside the old one, as Kinde does during rotation)."""
        key = SigningKey(f"dev-{uuid.uuid4().hex[:8]}", new_rsa_key())
        with self._lock:
            self.keys.append(key)
        self._save_state()
        return key

    # -- plan store --------------------------------------------------------------------------
    def plan_of(self, user_id: str) -> str:
        return self.plans.get(user_id, DEFAULT_PLAN)

    def set_plan(self, user_id: str, plan: str) -> None:
        if plan not in self.plan_limits:
            raise ValueError(f"Unknown plan {plan!r}; known plans: {', '.join(self.plan_limits)}")
        with self._lock:
            self.plans[user_id] = plan
        self._save_state()

    def request_plan_change(self, user_id: str, plan: str) -> dict[str, Any]:
        """What Kinde does on a plan selection: run the workflow, then apply or deny."""
        if plan not in self.plan_limits:
            raise ValueError(f"Unknown plan {plan!r}; known plans: {', '.join(self.plan_limits)}")
        current = self.plan_of(user_id)
        if self.plan_change_hook is None:
            decision: dict[str, Any] = {"allowed": True, "message": None, "reasons": [], "usage": None}
        else:
            decision = self.plan_change_hook(user_id, current, plan)
        if decision.get("allowed"):
            self.set_plan(user_id, plan)
        return {
            "user": user_id,
            "from": current,
            "requested": plan,
            "plan": self.plan_of(user_id),
            **decision,
        }

    def failed_plan_change(self, user_id: str, plan: str | None, error: Exception) -> dict[str, Any]:
        """The answer when the plan check itself failed: Kinde stops the change (fail closed)."""
        current = self.plan_of(user_id)
        return {
            "user": user_id,
            "from": current,
            "requested": plan,
            "plan": current,
            "allowed": False,
            "error": f"The plan check failed: {error}",
        }

    # -- Account API -------------------------------------------------------------------------
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
        sub = claims.get("sub")
        return sub if isinstance(sub, str) else None

    def entitlement_body(self, user_id: str, feature: str) -> dict[str, Any] | None:
        plan = self.plan_of(user_id)
        features = self.plan_limits.get(plan, {})
        if feature not in features:
            return None
        return {
            "data": {
                "org_code": "org_dev",
                "entitlement": {
                    "id": f"entitlement_{plan}_{feature}",
                    "fixed_charge": None,
                    "price_name": plan.title(),
                    "unit_amount": None,
                    "feature_key": feature,
                    "feature_name": feature.replace("_", " ").capitalize(),
                    "entitlement_limit_max": features[feature],
                    "entitlement_limit_min": None,
                },
            },
            "metadata": {},
        }

    def entitlements_body(self, user_id: str) -> dict[str, Any]:
        plan = self.plan_of(user_id)
        entitlements = [
            body["data"]["entitlement"]
            for feature in self.plan_limits.get(plan, {})
            if (body := self.entitlement_body(user_id, feature))
        ]
        return {
            "data": {
                "org_code": "org_dev",
                "plans": [{"key": plan, "subscribed_on": datetime.now(UTC).isoformat()}],
                "entitlements": entitlements,
            },
            "metadata": {"has_more": False, "next_page_starting_after": None},
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.account_api_calls += 1
            return self.faults.pop(0) if self.faults else None

    # -- persistence (make dev only) -----------------------------------------------------------
    def _load_state(self) -> None:
        if not self.state_file or not self.state_file.exists():
            return
        state = json.loads(self.state_file.read_text())
        self.plans = dict(state.get("plans", {}))
        self.keys = [
            SigningKey(
                item["kid"],
                serialization.load_pem_private_key(item["pem"].encode(), password=None),  # type: ignore[arg-type]
            )
            for item in state.get("keys", [])
        ]

    def _save_state(self) -> None:
        if not self.state_file:
            return
        pem = serialization.Encoding.PEM
        keys = [
            {
                "kid": key.kid,
                "pem": key.private_key.private_bytes(
                    pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode(),
            }
            for key in self.keys
        ]
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"plans": self.plans, "keys": keys}, indent=1))
        tmp.replace(self.state_file)

    # -- HTTP --------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: HTTPStatus, message: str) -> None:
                self._send(
                    status,
                    {"errors": [{"code": status.phrase.upper().replace(" ", "_"), "message": message}]},
                )

            def _json_body(self) -> dict[str, Any]:
                """The JSON object sent, or ``{}`` (then the caller answers 400 for the missing user)."""
                raw_length = self.headers.get("Content-Length") or "0"
                if not re.fullmatch(r"[0-9]{1,7}", raw_length):
                    self.close_connection = True  # the body's end is unknown: do not reuse it
                    return {}
                try:
                    data = json.loads(self.rfile.read(int(raw_length)) or b"{}")
                except ValueError:
                    return {}
                return data if isinstance(data, dict) else {}

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                if path in ("/.well-known/jwks", "/.well-known/jwks.json"):
                    self._send(200, standin.jwks())
                    return
                if path.startswith("/account_api/v1/"):
                    self._account_api(path, parse_qs(parts.query))
                    return
                if path == "/dev/users":
                    self._send(200, {"plans": standin.plans, "planLimits": standin.plan_limits})
                    return
                self._error(HTTPStatus.NOT_FOUND, "Not found")

            def _account_api(self, path: str, _query: dict[str, list[str]]) -> None:
                fault = standin._next_fault()
                if fault is not None:
                    time.sleep(fault.delay_seconds)
                    if fault.status:
                        self._send(fault.status, fault.body or {"errors": [{"code": "FAULT"}]}, fault.headers)
                        return
                user = standin._user_from(self.headers.get("Authorization"))
                if user is None:
                    self._error(HTTPStatus.UNAUTHORIZED, "Invalid token")
                    return
                if path == "/account_api/v1/entitlements":
                    self._send(200, standin.entitlements_body(user))
                    return
                prefix = "/account_api/v1/entitlement/"
                if path.startswith(prefix):
                    body = standin.entitlement_body(user, unquote(path[len(prefix) :]))
                    if body is None:
                        self._error(HTTPStatus.NOT_FOUND, "Entitlement not found")
                    else:
                        self._send(200, body)
                    return
                self._error(HTTPStatus.NOT_FOUND, "Not found")

            def do_POST(self) -> None:
                body = self._json_body()
                user, plan = body.get("user"), body.get("plan")
                if not isinstance(user, str) or not user:
                    self._error(HTTPStatus.BAD_REQUEST, 'Give {"user": "kp_..."}')
                    return
                try:
                    if self.path == "/dev/token":
                        if isinstance(plan, str):
                            standin.set_plan(user, plan)
                        ttl = body.get("ttlSeconds")
                        ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else 3600
                        self._send(
                            200,
                            {
                                "access_token": standin.mint(user, ttl_seconds=ttl),
                                "token_type": "bearer",
                                "expires_in": ttl,
                                "plan": standin.plan_of(user),
                            },
                        )
                    elif self.path == "/dev/plan" and isinstance(plan, str):
                        self._send(200, standin.request_plan_change(user, plan))
                    else:
                        self._error(HTTPStatus.NOT_FOUND, "Not found")
                except ValueError as exc:
                    self._error(HTTPStatus.BAD_REQUEST, str(exc))
                except Exception as exc:  # the plan check failed: Kinde stops the change
                    self._send(502, standin.failed_plan_change(user, plan, exc))

        return Handler
