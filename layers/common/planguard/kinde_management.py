"""Kinde's Management API, called with a machine-to-machine (M2M) token: what the Account API does
not answer (an organization's plan, a customer's agreements) and the one write, ``meter_usage``.

The token comes from the client-credentials grant at ``{management_url}/oauth2/token`` (audience
``{management_url}/api`` unless ``KINDE_MANAGEMENT_AUDIENCE`` says otherwise). Kinde counts every
token minted against a quota, so it is kept in the container until a minute before it expires; a
401 or 403 from the API drops it and mints once more (a token revoked early). The client secret
comes from an SSM SecureString (``KINDE_M2M_CLIENT_SECRET_PARAM``: read when first needed, kept an
hour, read again at once when Kinde refuses it) or from ``KINDE_M2M_CLIENT_SECRET`` locally; it
and the token go only into the request that needs them, never into a log line, an error or a repr.

Every call is ``planguard.kinde_http``'s bounded request: retries within the invocation's time
left, ``RateLimit-Reset`` honoured on a 429, and Kinde down, slow or unreadable raising
``EntitlementUnavailable`` (with its Retry-After), as the Account API client does. A 4xx other than
429 is ``KindeRejected``: Kinde understood and said no, so the caller decides. Shapes and names:
``docs/KINDE.md``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import urllib3

from planguard.errors import EntitlementUnavailable
from planguard.kinde_http import bounded_request, http_pool, read_json
from planguard.settings import get_settings

logger = logging.getLogger(__name__)

API = "Management API"
UNLIMITED_SENTINEL = 2_147_483_647  # "no maximum" as some Kinde components send it (INT32_MAX)
TOKEN_MARGIN_SECONDS = 60  # a token this close to its expiry is not used: mint a new one
DEFAULT_TOKEN_SECONDS = 3600  # a token answer without expires_in (Kinde's own SDKs assume this)
ENTITLEMENTS_PAGE_SIZE = 500  # the most Kinde gives per page: one page for any real plan
MAX_PAGES = 20  # a list longer than this is one we cannot trust to end
# Every 4xx but 429 is Kinde's answer to read (404, or a refusal), not an outage to retry.
ANSWERED = frozenset(range(400, 500)) - {429}
TOKEN_REFUSED = frozenset({401, 403})
SSM_SECRET_MAX_SECONDS = 3600  # a rotated secret is picked up within the hour (or on a refusal)


class KindeRejected(Exception):
    """The Management API refused the request with a 4xx other than 429 (a 401/403 only once a
    fresh token was refused too): ``status`` and Kinde's own ``message`` (never a secret)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kinde's {API} answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class PlanSubscription:
    code: str
    subscribed_on: datetime | None  # None when Kinde's value cannot be read


@dataclass(frozen=True)
class OrganizationAgreement:
    plan_code: str | None
    agreement_id: str


@dataclass(frozen=True)
class Organization:
    code: str
    is_default: bool
    billing_customer_id: str | None  # None: the organization is no billing customer (yet)
    agreements: tuple[OrganizationAgreement, ...] = ()


@dataclass(frozen=True)
class CustomerEntitlement:
    """A billing customer's limit for one feature: ``limit`` None is unlimited (null, or
    2147483647 and more); ``missing`` when no entitlement has that feature code (``limit`` is then
    0: the caller applies its own rule for a missing entitlement); ``plans`` as Kinde lists them."""

    limit: int | None
    missing: bool
    plans: tuple[PlanSubscription, ...]


@dataclass(frozen=True)
class Agreement:
    id: str
    plan_code: str | None
    expires_on: datetime | None  # None: it has not expired


class ManagementApi:
    """One M2M client: its token cached, every call bounded. ``secret`` gives the client secret
    (read lazily: a container that never calls Kinde never reads SSM); ``forget_secret`` is
    called when Kinde refuses the credentials, so a rotated secret is read again."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: Callable[[], str],
        *,
        audience: str | None = None,
        forget_secret: Callable[[], None] = lambda: None,
        http: urllib3.PoolManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.removesuffix("/")
        self.client_id = client_id
        self.audience = audience or f"{self.base_url}/api"
        self._secret = secret
        self._forget_secret = forget_secret
        self._http = http or http_pool()  # the container's pool: Kinde's host, kept-alive
        self.clock = clock  # the token's expiry (tests move it)
        self._now = now  # Kinde's dates (an agreement's expires_on)
        self._sleep = sleep
        self._token: tuple[str, float] | None = None  # (access token, usable until on clock())
        self._lock = threading.Lock()
        self.mints = 0  # tokens minted by this container (each counts against Kinde's quota)

    def __repr__(self) -> str:
        return f"ManagementApi({self.base_url!r}, client_id={self.client_id!r})"

    # -- reads -------------------------------------------------------------------------------
    def organization(self, code: str, deadline: float | None) -> Organization | None:
        """``GET /api/v1/organization?code=…&expand=billing``; None when Kinde has no such one (404)."""
        payload = self._get("/api/v1/organization", {"code": code, "expand": "billing"}, deadline)
        if payload is None:
            return None
        is_default = payload.get("is_default")
        if is_default is not None and not isinstance(is_default, bool):
            raise EntitlementUnavailable(detail=f"{API}: an organization's is_default is not a boolean")
        billing = _object(payload.get("billing"))
        agreements = tuple(
            OrganizationAgreement(_text(item.get("plan_code")), agreement_id)
            for item in _objects(billing.get("agreements"))
            if (agreement_id := _text(item.get("agreement_id"))) is not None
        )
        return Organization(code, is_default is True, _text(billing.get("billing_customer_id")), agreements)

    def user_customer_id(self, user_id: str, deadline: float | None) -> str | None:
        """``GET /api/v1/user?id=…&expand=billing`` → ``billing.customer_id``; None when the user
        is no billing customer, or Kinde has no such user (404)."""
        payload = self._get("/api/v1/user", {"id": user_id, "expand": "billing"}, deadline)
        if payload is None:
            return None
        return _text(_object(payload.get("billing")).get("customer_id"))

    def customer_entitlement(
        self, customer_id: str, feature_code: str, deadline: float | None
    ) -> CustomerEntitlement:
        """The customer's entitlement to ``feature_code`` and its plans, from every page of
        ``GET /api/v1/billing/entitlements?customer_id=…&expand=plans``."""
        query = {"customer_id": customer_id, "expand": "plans", "page_size": str(ENTITLEMENTS_PAGE_SIZE)}
        entitlements: list[dict[str, Any]] = []
        plans: dict[str, PlanSubscription] = {}
        for page in self._pages("/api/v1/billing/entitlements", query, "entitlements", deadline):
            entitlements.extend(_objects(page.get("entitlements")))
            for plan in _objects(page.get("plans")):
                if (code := _text(plan.get("code"))) is not None and code not in plans:
                    plans[code] = PlanSubscription(code, _moment(plan.get("subscribed_on")))
        found = next((item for item in entitlements if item.get("feature_code") == feature_code), None)
        if found is None:
            codes = sorted({str(item.get("feature_code"))[:100] for item in entitlements})
            logger.error(
                "Kinde lists no entitlement with feature code %r for this customer (KINDE_FEATURE_CODE); "
                "the feature codes it lists: %s",
                feature_code,
                ", ".join(codes) or "none",
            )
            return CustomerEntitlement(limit=0, missing=True, plans=tuple(plans.values()))
        return CustomerEntitlement(_limit(found.get("entitlement_limit_max")), False, tuple(plans.values()))

    def agreements(self, customer_id: str, feature_code: str, deadline: float | None) -> list[Agreement]:
        """The customer's agreements that carry ``feature_code`` and have not expired, from every
        page of ``GET /api/v1/billing/agreements?customer_id=…&feature_code=…``."""
        now = self._now()
        found = []
        query = {"customer_id": customer_id, "feature_code": feature_code}
        for page in self._pages("/api/v1/billing/agreements", query, "agreements", deadline):
            for item in _objects(page.get("agreements")):
                agreement_id = _text(item.get("id"))
                carried = item.get("entitlements")
                if agreement_id is None or (
                    isinstance(carried, list)
                    and not any(_object(e).get("feature_code") == feature_code for e in carried)
                ):
                    continue
                raw_expiry = item.get("expires_on")
                expires_on = _moment(raw_expiry)
                if raw_expiry is not None and expires_on is None:
                    logger.warning("%s: an agreement's expires_on cannot be read; it is left out", API)
                    continue
                if expires_on is None or expires_on > now:
                    found.append(Agreement(agreement_id, _text(item.get("plan_code")), expires_on))
        return found

    # -- the write ---------------------------------------------------------------------------
    def meter_usage(self, agreement_id: str, feature_code: str, value: int, deadline: float | None) -> None:
        """``POST /api/v1/billing/meter_usage``: the feature's usage is ``value`` from now on
        (``absolute``: a retry or a duplicate sends the same truth again)."""
        body = {
            "customer_agreement_id": agreement_id,
            "billing_feature_code": feature_code,
            "meter_value": str(value),
            "meter_type_code": "absolute",
        }
        response = self._call("POST", "/api/v1/billing/meter_usage", None, body, deadline)
        if response.status >= 300:
            raise _rejected(response)

    # -- internals ---------------------------------------------------------------------------
    def _get(self, path: str, query: dict[str, str], deadline: float | None) -> dict[str, Any] | None:
        """The answer's JSON object, or None for a 404."""
        response = self._call("GET", path, query, None, deadline)
        if response.status == 404:
            return None
        if response.status >= 300:
            raise _rejected(response)
        return read_json(response, API)

    def _pages(
        self, path: str, query: dict[str, str], items: str, deadline: float | None
    ) -> list[dict[str, Any]]:
        """Every page of a list: Kinde says ``has_more`` and the next page starts after the last
        item's ``id``."""
        pages = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = self._get(path, query if after is None else {**query, "starting_after": after}, deadline)
            if page is None:
                raise KindeRejected(404, f"{path} answered 404")
            pages.append(page)
            if page.get("has_more") is not True:
                return pages
            listed = _objects(page.get(items))
            last = _text(listed[-1].get("id")) if listed else None
            if last is None or last == after:
                raise EntitlementUnavailable(detail=f"{API}: {items} say there is more but not where")
            after = last
        raise EntitlementUnavailable(detail=f"{API}: {items} run past {MAX_PAGES} pages")

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        body: dict[str, Any] | None,
        deadline: float | None,
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            token = self._access_token(deadline)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            response = bounded_request(
                self._http,
                method,
                url,
                deadline,
                self._sleep,
                headers=headers,
                body=data,
                answered=ANSWERED,
                api=API,
            )
            if response.status not in TOKEN_REFUSED:
                return response
            self._drop(token)
            if attempt == 1:
                logger.info("%s answered %d: minting a new token once", API, response.status)
        logger.error(
            "%s refused a freshly minted token (%d): is the M2M application authorized for the "
            "Management API with the scopes Plan Guard uses (docs/KINDE.md)?",
            API,
            response.status,
        )
        raise _rejected(response)

    def prepare(self, deadline: float | None) -> None:
        """Hold a token before the first call needs one (a cold container mints it beside the
        key-set fetch); a failure here is left for that call to meet."""
        try:
            self._access_token(deadline)
        except (EntitlementUnavailable, KindeRejected):
            logger.info("M2M token mint ahead of the first call failed; the call will try again")

    def _access_token(self, deadline: float | None) -> str:
        """The cached token, or a new one (one mint at a time: a second caller waits and reuses it)."""
        with self._lock:
            if self._token is not None and self.clock() < self._token[1]:
                return self._token[0]
            token, seconds = self._mint(deadline)
            self.mints += 1
            self._token = (token, self.clock() + seconds - TOKEN_MARGIN_SECONDS)
            return token

    def _drop(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _mint(self, deadline: float | None) -> tuple[str, float]:
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret(),
                "audience": self.audience,
            }
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        response = bounded_request(
            self._http,
            "POST",
            f"{self.base_url}/oauth2/token",
            deadline,
            self._sleep,
            headers=headers,
            body=form,
            answered=ANSWERED,
            api="M2M token endpoint",
        )
        if response.status >= 300:
            self._forget_secret()  # a rotated secret is read again next time
            error = _object(_json_or_none(response)).get("error")
            logger.error(
                "Kinde refused the M2M client's credentials (%d %s): check KINDE_M2M_CLIENT_ID, its "
                "secret, and that the application is authorized for the Management API",
                response.status,
                str(error)[:60] if isinstance(error, str) else "",
            )
            raise EntitlementUnavailable(detail=f"M2M token endpoint answered {response.status}")
        payload = read_json(response, "M2M token endpoint")
        token, expires_in = payload.get("access_token"), payload.get("expires_in", DEFAULT_TOKEN_SECONDS)
        if not isinstance(token, str) or not token:
            raise EntitlementUnavailable(detail="M2M token endpoint answered without an access_token")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
            or not math.isfinite(expires_in)
        ):
            raise EntitlementUnavailable(detail="M2M token endpoint answered an unreadable expires_in")
        return token, float(expires_in)


# -- reading Kinde's answers (leniently: what is not the documented shape is left out) ----------
def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset; none given is UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _limit(raw: Any) -> int | None:
    """``entitlement_limit_max``: null or INT32_MAX and more is unlimited; a number that is not a
    whole one from 0 up is an answer we cannot read (never guessed at: a limit is at stake)."""
    if raw is None:
        return None
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or (isinstance(raw, float) and not math.isfinite(raw))
        or raw < 0
        or raw != int(raw)
    ):
        raise EntitlementUnavailable(detail=f"{API}: unexpected entitlement_limit_max {raw!r:.40}")
    return None if int(raw) >= UNLIMITED_SENTINEL else int(raw)


def _json_or_none(response: urllib3.BaseHTTPResponse) -> Any:
    try:
        return json.loads(response.data)
    except (ValueError, RecursionError):
        return None


def _rejected(response: urllib3.BaseHTTPResponse) -> KindeRejected:
    """Kinde's refusal with its own words (``errors[0]``: code and message), shortened."""
    errors = _object(_json_or_none(response)).get("errors")
    first = _object(errors[0]) if isinstance(errors, list) and errors else {}
    words = [str(first[key])[:200] for key in ("code", "message") if isinstance(first.get(key), str)]
    message = ": ".join(words) or f"{API} answered {response.status}"
    return KindeRejected(response.status, "".join(ch for ch in message if ch.isprintable()))


# -- the container's client ---------------------------------------------------------------------
class _SsmSecret:
    """The client secret from an SSM SecureString, read with a bare botocore client (no boto3:
    cold start) and kept for the container until Kinde refuses it or an hour passes."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._value: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"_SsmSecret({self.name!r})"

    def __call__(self) -> str:
        with self._lock:
            if self._value is not None and self._clock() < self._value[1]:
                return self._value[0]
            value = self._fetch()
            self._value = (value, self._clock() + SSM_SECRET_MAX_SECONDS)
            return value

    def forget(self) -> None:
        with self._lock:
            self._value = None

    def _fetch(self) -> str:
        import botocore.session  # noqa: PLC0415 - only a deployed container with an M2M client
        from botocore.config import Config  # noqa: PLC0415
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        from planguard.json_logs import hold_sdk_logs_at_warning  # noqa: PLC0415

        hold_sdk_logs_at_warning()  # botocore's DEBUG lines would print the parameter's value
        config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
        try:
            client: Any = botocore.session.get_session().create_client("ssm", config=config)
            answer = client.get_parameter(Name=self.name, WithDecryption=True)
            value = answer["Parameter"]["Value"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ParameterNotFound":
                logger.error("KINDE_M2M_CLIENT_SECRET_PARAM %s does not exist in SSM", self.name)
            else:
                logger.warning("SSM answered %s reading the M2M client secret", code)
            raise EntitlementUnavailable(detail="the M2M client secret cannot be read") from None
        except BotoCoreError as error:
            logger.warning("%s reading the M2M client secret from SSM", type(error).__name__)
            raise EntitlementUnavailable(detail="the M2M client secret cannot be read") from None
        if not isinstance(value, str) or not value.strip():
            raise EntitlementUnavailable(detail="the M2M client secret in SSM is empty")
        return value.strip()


@functools.cache
def get_management_api() -> ManagementApi | None:
    """The container's client (its token lives across warm invocations), or None when no M2M
    client is configured (then nothing may depend on the Management API)."""
    settings = get_settings()
    if settings.kinde_m2m_client_id is None:
        return None
    if settings.kinde_m2m_client_secret is not None:
        local = settings.kinde_m2m_client_secret.get_secret_value()
        return ManagementApi(
            settings.management_url,
            settings.kinde_m2m_client_id,
            lambda: local,
            audience=settings.management_audience,
        )
    assert settings.kinde_m2m_client_secret_param is not None  # settings refuse an id without one
    secret = _SsmSecret(settings.kinde_m2m_client_secret_param)
    return ManagementApi(
        settings.management_url,
        settings.kinde_m2m_client_id,
        secret,
        audience=settings.management_audience,
        forget_secret=secret.forget,
    )
