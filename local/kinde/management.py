"""Kinde's Management API as the stand-in plays it: the client-credentials grant for one M2M
application, and the routes Plan Guard's client calls (docs/KINDE.md has Kinde's shapes).

  POST /oauth2/token  grant_type=client_credentials&client_id&client_secret&audience={issuer}/api
  GET  /api/v1/organization?code=&expand=billing      GET /api/v1/user?id=&expand=billing
  GET  /api/v1/billing/entitlements?customer_id=&expand=plans&page_size=&starting_after=
  GET  /api/v1/billing/agreements?customer_id=&feature_code=&page_size=&starting_after=
  POST /api/v1/billing/meter_usage                    GET /dev/meter_usage?user=… | ?org=…

Its data model, over the plan store: every user is a billing customer on their plan; organizations
are known by code, the default one (``org_default``) being no billing customer, every other one a
customer on its own plan (kept in the plan store under ``org_plan_key(code)``). Ids are derived:
a customer's from whose it is, an agreement's from the customer, the plan and when it applied, so a
plan change makes a new agreement and the one before it expires at that moment. Lists page as
Kinde's do: ``page_size`` (10 when not given), ``has_more``, and ``starting_after`` the last id.
Only tokens this stand-in minted for the M2M application pass (a user's token is 403), and only
while it remembers them (``revoke_tokens`` forgets them all, as a restart does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from local.kinde.account_api import PlanStore, iso
from local.kinde.keys import KeyRing
from local.kinde.organizations import Organizations, org_plan_key
from local.kinde.site import Reply

DEV_M2M_CLIENT_ID = "plan-guard-m2m-dev"
DEV_M2M_CLIENT_SECRET = "local-dev-m2m-secret"  # local only: make dev gives the functions the same
M2M_TOKEN_SECONDS = 3600
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 500
# The scopes Plan Guard's client needs, route by route (an M2M application is granted these).
SCOPES = {
    "/api/v1/organization": "read:organizations",
    "/api/v1/user": "read:users",
    "/api/v1/billing/entitlements": "read:billing_entitlements",
    "/api/v1/billing/agreements": "read:billing_agreements",
    "/api/v1/billing/meter_usage": "create:meter_usage",
}
API_PREFIX = "/api/v1/"
METER_USAGE_PATH = "/dev/meter_usage"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"errors": [{"code": code, "message": message}]})


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


@dataclass
class AgreementRecord:
    id: str
    plan: str
    started: float  # epoch seconds, the stand-in's clock
    expires: float | None = None


@dataclass
class Management:
    """The M2M application, the organizations, the agreements seen so far and the usage reported."""

    keys: KeyRing
    plans: PlanStore
    client_id: str = DEV_M2M_CLIENT_ID
    client_secret: str = field(default=DEV_M2M_CLIENT_SECRET, repr=False)
    token_seconds: int = M2M_TOKEN_SECONDS
    log: Callable[[str], None] = lambda _line: None
    # The stand-in's one organizations model (members, the default one); their plans are in plans.
    organizations: Organizations = field(
        default_factory=lambda: Organizations(threading.RLock(), lambda: None)
    )
    scopes: set[str] = field(default_factory=lambda: set(SCOPES.values()))  # granted to the application
    unlimited_as: int | None = None  # how "no maximum" is sent: null (the spec) or e.g. 2147483647
    max_page_size: int = MAX_PAGE_SIZE  # a bigger page_size gets this many (tests lower it to page)
    issued: set[str] = field(default_factory=set)  # the jti of every token still honoured
    mints: int = 0
    meter_usage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # plan key -> records
    history: dict[str, list[AgreementRecord]] = field(default_factory=dict)  # plan key -> agreements
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def reset(self) -> None:
        """As configured, with no organization but the default one, no token and no usage."""
        with self._lock:
            self.organizations.reset()
            self.scopes = set(SCOPES.values())
            self.unlimited_as = None
            self.max_page_size = MAX_PAGE_SIZE
            self.issued.clear()
            self.mints = 0
            self.meter_usage.clear()
            self.history.clear()

    def add_organization(self, code: str, *, is_default: bool = False) -> None:
        with self._lock:
            self.organizations.add(code, is_default=is_default)

    def revoke_tokens(self) -> None:
        """Every M2M token minted so far is refused from now on (401)."""
        with self._lock:
            self.issued.clear()

    # -- the client-credentials grant -----------------------------------------------------------
    def token(self, form: Mapping[str, str]) -> Reply:
        grant = "POST /oauth2/token grant_type=client_credentials"
        known = hmac.compare_digest(form.get("client_id", ""), self.client_id)
        if not known or not hmac.compare_digest(form.get("client_secret", ""), self.client_secret):
            self.log(f"Kinde stand-in: {grant} -> 401 invalid_client")
            body = {"error": "invalid_client", "error_description": "Unknown client or wrong secret."}
            return Reply(401, body, dict(NO_STORE))
        audience = form.get("audience", "")
        if audience != self.audience:
            self.log(f"Kinde stand-in: {grant} -> 400 invalid_request (audience)")
            body = {"error": "invalid_request", "error_description": f"audience must be {self.audience}."}
            return Reply(400, body, dict(NO_STORE))
        jti = uuid.uuid4().hex
        token = self.keys.mint(
            None,
            ttl_seconds=self.token_seconds,
            jti=jti,
            azp=self.client_id,
            aud=[self.audience],
            gty=["client_credentials"],
            scp=sorted(self.scopes),
        )
        with self._lock:
            self.issued.add(jti)
            self.mints += 1
        self.log(f"Kinde stand-in: {grant} -> 200 (expires_in {self.token_seconds})")
        answer = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.token_seconds,
            "scope": "",
        }
        return Reply(200, answer, dict(NO_STORE))

    @property
    def audience(self) -> str:
        return f"{self.keys.issuer}/api"

    def _refusal(self, authorization: str | None, path: str) -> Reply | None:
        """Why a Management API call is refused (None: it may go ahead)."""
        claims = self._claims(authorization)
        if claims is None:
            return _error(401, "TOKEN_INVALID", "A valid bearer token is required.")
        audiences = claims.get("aud")
        with self._lock:
            live, scopes = claims.get("jti") in self.issued, set(self.scopes)
        needed = SCOPES.get(path)
        if "client_credentials" not in (claims.get("gty") or []) or "sub" in claims:
            refusal = (403, "A user's token cannot call the Management API.")
        elif self.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            refusal = (403, "The token is not for the Management API.")
        elif not live:
            refusal = (401, "The token was revoked.")
        elif needed is not None and needed not in scopes:
            refusal = (403, f"The application lacks the scope {needed}.")
        else:
            return None
        return _error(refusal[0], "FORBIDDEN" if refusal[0] == 403 else "TOKEN_INVALID", refusal[1])

    def _claims(self, authorization: str | None) -> dict[str, Any] | None:
        """The claims of a bearer token one of the stand-in's keys signed, unexpired; else None."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization[7:].strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.keys.keys if k.kid == kid)
            claims: dict[str, Any] = jwt.decode(
                token, key.private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
            )
        except (jwt.PyJWTError, StopIteration):
            return None
        return claims

    # -- routes ---------------------------------------------------------------------------------
    def get(self, path: str, query: Mapping[str, str], authorization: str | None) -> Reply:
        if path not in SCOPES or path == "/api/v1/billing/meter_usage":
            return _error(404, "ROUTE_NOT_FOUND", "Not found.")
        if (refusal := self._refusal(authorization, path)) is not None:
            return refusal
        expand = query.get("expand", "").split(",")
        if path == "/api/v1/organization":
            return self._organization(query.get("code", ""), "billing" in expand)
        if path == "/api/v1/user":
            return self._user(query.get("id", ""), "billing" in expand)
        return self._billing_list(path, query)

    def _billing_list(self, path: str, query: Mapping[str, str]) -> Reply:
        key = self._customer(query.get("customer_id", ""))
        size = _page_size(query.get("page_size"), self.max_page_size)
        if key is None:
            return _error(400, "CUSTOMER_INVALID", "No billing customer with this id.")
        if size is None:
            return _error(400, "INVALID_PAGE_SIZE", f"page_size must be 1 to {MAX_PAGE_SIZE}.")
        if path == "/api/v1/billing/entitlements":
            return self._entitlements(key, query, size)
        return self._agreements(key, query, size)

    def post(self, path: str, body: bytes | None, authorization: str | None) -> Reply:
        if path != "/api/v1/billing/meter_usage":
            return _error(404, "ROUTE_NOT_FOUND", "Not found.")
        if (refusal := self._refusal(authorization, path)) is not None:
            return refusal
        try:
            data = json.loads(body or b"")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _error(400, "INVALID_BODY", "A JSON object is required.")
        return self._meter_usage(data)

    def records(self, query: Mapping[str, str]) -> Reply:
        """``GET /dev/meter_usage?user=…`` or ``?org=…``: what was reported for that customer."""
        if query.get("user"):
            key = query["user"]
        elif query.get("org"):
            key = org_plan_key(query["org"])
        else:
            return _error(400, "BAD_REQUEST", "Give ?user=kp_... or ?org=org_...")
        with self._lock:
            return Reply(200, {"records": [dict(record) for record in self.meter_usage.get(key, [])]})

    # -- the data model -------------------------------------------------------------------------
    def customer_id(self, key: str) -> str:
        """A plan key's billing customer id (a user's, or an organization's)."""
        kind, ident = ("org", key[4:]) if key.startswith("org/") else ("user", key)
        return f"customer_{kind}_{ident}"

    def _customer(self, customer_id: str) -> str | None:
        """The plan key behind a customer id, when that customer exists."""
        kind, _, ident = customer_id.removeprefix("customer_").partition("_")
        if not customer_id.startswith("customer_") or not ident:
            return None
        if kind == "user":
            return ident if self._user_known(ident) else None
        if kind == "org":
            return org_plan_key(ident) if self._org_billed(ident) else None
        return None

    def _user_known(self, user: str) -> bool:
        return not user.startswith("org/") and (user in self.plans.plans or user in self.plans.subscribed)

    def _org_known(self, code: str) -> bool:
        return self.organizations.get(code) is not None or org_plan_key(code) in self.plans.plans

    def _is_default(self, code: str) -> bool:
        organization = self.organizations.get(code)
        return organization is not None and organization.is_default

    def _org_billed(self, code: str) -> bool:
        """Every known organization but a default one is a billing customer."""
        return self._org_known(code) and not self._is_default(code)

    def current_agreement(self, key: str) -> AgreementRecord:
        """The customer's agreement now: a plan applied since the last one makes a new one, and
        the one before it expires when the new plan applied."""
        plan, since = self.plans.subscription(key)
        with self._lock:
            history = self.history.setdefault(key, [])
            if history and history[-1].plan == plan and history[-1].started == since:
                return history[-1]
            if history and history[-1].expires is None:
                history[-1].expires = since
            record = AgreementRecord(
                f"agreement_{_digest(self.customer_id(key), plan, repr(since))}", plan, since
            )
            history.append(record)
            return record

    def _features(self, plan: str) -> dict[str, int | None]:
        return self.plans.plan_limits.get(plan, {})

    def _organization(self, code: str, billing: bool) -> Reply:
        if not self._org_known(code):
            return _error(404, "ORGANIZATION_NOT_FOUND", "No organization with this code.")
        is_default = self._is_default(code)
        answer: dict[str, Any] = {"code": code, "name": code, "is_default": is_default}
        if billing:
            if self._org_billed(code):
                key = org_plan_key(code)
                current = self.current_agreement(key)
                agreements = [{"plan_code": current.plan, "agreement_id": current.id}]
                answer["billing"] = {"billing_customer_id": self.customer_id(key), "agreements": agreements}
            else:
                answer["billing"] = {"billing_customer_id": None, "agreements": []}
        return Reply(200, answer)

    def _user(self, user: str, billing: bool) -> Reply:
        if not self._user_known(user):
            return _error(404, "USER_NOT_FOUND", "No user with this id.")
        answer: dict[str, Any] = {"id": user, "preferred_email": f"{user}@example.com"}
        if billing:
            answer["billing"] = {"customer_id": self.customer_id(user)}
        return Reply(200, answer)

    def _entitlements(self, key: str, query: Mapping[str, str], size: int) -> Reply:
        plan, since = self.plans.subscription(key)
        items = sorted(
            (
                {
                    "id": f"entitlement_{plan}_{feature}",
                    "fixed_charge": None,
                    "price_name": plan.title(),
                    "unit_amount": None,
                    "feature_code": feature,
                    "feature_name": feature.replace("_", " ").capitalize(),
                    "entitlement_limit_max": self.unlimited_as if limit is None else limit,
                    "entitlement_limit_min": None,
                }
                for feature, limit in self._features(plan).items()
            ),
            key=lambda item: str(item["id"]),
        )
        page, more = _page(items, query.get("starting_after"), size)
        answer: dict[str, Any] = {"code": "OK", "message": "Success", "has_more": more, "entitlements": page}
        if "plans" in query.get("expand", "").split(","):
            answer["plans"] = [{"code": plan, "subscribed_on": iso(since)}]
        return Reply(200, answer)

    def _agreements(self, key: str, query: Mapping[str, str], size: int) -> Reply:
        self.current_agreement(key)  # a plan change since the last read shows as a new agreement
        feature = query.get("feature_code")
        with self._lock:
            history = list(self.history.get(key, []))
        items = [
            {
                "id": record.id,
                "plan_code": record.plan,
                "expires_on": None if record.expires is None else iso(record.expires),
                "billing_group_id": "bg_plan_guard",
                "current_period_start": iso(record.started),
                "current_period_end": None,
                "entitlements": [
                    {"feature_code": code, "entitlement_id": f"entitlement_{record.plan}_{code}"}
                    for code in self._features(record.plan)
                ],
            }
            for record in history
            if not feature or feature in self._features(record.plan)
        ]
        page, more = _page(items, query.get("starting_after"), size)
        return Reply(200, {"code": "OK", "message": "Success", "has_more": more, "agreements": page})

    def _meter_usage(self, data: dict[str, Any]) -> Reply:
        agreement_id, feature = data.get("customer_agreement_id"), data.get("billing_feature_code")
        value, kind = data.get("meter_value"), data.get("meter_type_code", "delta")
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            return _error(400, "INVALID_METER_VALUE", "meter_value must be a string of digits.")
        if kind not in ("absolute", "delta"):
            return _error(400, "INVALID_METER_TYPE", "meter_type_code must be absolute or delta.")
        with self._lock:
            found = next(
                (
                    (key, record)
                    for key, records in self.history.items()
                    for record in records
                    if record.id == agreement_id
                ),
                None,
            )
        if found is None:
            return _error(400, "AGREEMENT_INVALID", "No agreement with this id.")
        key, record = found
        self.current_agreement(key)  # a plan changed since the last read ends this agreement now
        if record.expires is not None and record.expires <= self.plans.now():
            return _error(400, "AGREEMENT_EXPIRED", "This agreement has ended.")
        if not isinstance(feature, str) or feature not in self._features(record.plan):
            return _error(400, "FEATURE_INVALID", "The agreement's plan has no such feature.")
        entry = {"agreementId": record.id, "featureCode": feature, "value": int(value), "type": kind}
        with self._lock:
            self.meter_usage.setdefault(key, []).append({**entry, "at": iso(self.plans.now())})
        return Reply(200, {"code": "OK", "message": "Success"})


def _page_size(raw: str | None, cap: int) -> int | None:
    """The page asked for (``DEFAULT_PAGE_SIZE`` when none), at most ``cap``; None when unreadable."""
    if raw is None or raw == "":
        return min(DEFAULT_PAGE_SIZE, cap)
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        return None
    return min(int(raw), cap)


def _page(items: list[dict[str, Any]], after: str | None, size: int) -> tuple[list[dict[str, Any]], bool]:
    """One page after the item whose id is ``after``, and whether more follow."""
    start = next((n + 1 for n, item in enumerate(items) if item["id"] == after), 0) if after else 0
    return items[start : start + size], start + size < len(items)
