"""The stand-in's HTTP surface: Kinde's JWKS and Account API, the browser's side (``site``: sign-in,
tokens, logout, the portal), and the dev endpoints. Every POST passes the origin rules first; the
dashboard's origins get CORS answers (the SDK calls the token endpoint and the Account API).

The Management API (``/api/v1/…``) and the client-credentials grant are ``management``'s.

Dev endpoints (what ``make token``, ``make plan`` and ``make webhook`` call):
  POST /dev/token   {"user", "org"?, "plan"?, "permissions"?, "ttlSeconds"?}  -> {"access_token", ...}
                    (with "org" the user is signed in to that organization, joining it when new to
                    it, "plan" is the organization's and "permissions" the member's there)
  POST /dev/plan    {"user" | "org", "plan", "applyAfter"?, "fails"?}
                    -> the plan check's decision; allowed, it applies at once, after applyAfter
                       seconds, or never ("fails": true, a payment that does not go through);
                       with "org" the organization's plan ("user" then the member selecting it)
  POST /dev/webhook {"type", "user" | "org", "data"?, "ageSeconds"?}    -> the API's answer
                    ("org": data.organization.code, e.g. organization.deleted)
                    or {"redeliver": webhookId, "newWebhookId"?: true}   (the same body again)
  GET  /dev/meter_usage?user=… | ?org=…
                    -> {"records": [{"agreementId", "featureCode", "value", "type", "at"}]}
"""

from __future__ import annotations

import json
import re
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.kinde.account_api import entitlement_body, entitlements_body
from local.kinde.faults import Fault
from local.kinde.management import API_PREFIX, METER_USAGE_PATH
from local.kinde.organizations import check_org_code, check_permissions, org_plan_key
from local.kinde.parts import Parts
from local.kinde.site import TOKEN_PATH, Reply

JWKS_PATHS = ("/.well-known/jwks", "/.well-known/jwks.json")
ACCOUNT_API = "/account_api/v1/"


def handler_class(parts: Parts) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``parts`` (http.server makes one handler per request)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = dict(headers or {})
            if (origin := parts.rules.cors_origin(self.headers.get("Origin"))) is not None:
                headers.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
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

        def _fault(self, fault: Fault | None) -> bool:
            """Answer with a queued fault; False when there is none (or only a delay)."""
            if fault is None:
                return False
            time.sleep(fault.delay_seconds)
            if fault.status:
                body = {"errors": [{"code": "FAULT"}]} if fault.body is None else fault.body
                self._send(fault.status, body, fault.headers)
            return bool(fault.status)

        def _reply(self, reply: Reply) -> None:
            self._send(reply.status, reply.body, reply.headers)

        def do_GET(self) -> None:
            target = urlsplit(self.path)
            path, query = target.path, dict(parse_qsl(target.query, keep_blank_values=True))
            if path in JWKS_PATHS:
                if not self._fault(parts.faults.jwks_call()):
                    self._send(200, parts.keys.jwks())
            elif path.startswith(ACCOUNT_API):
                if not self._fault(parts.faults.account_api_call()):
                    self._account_api(path, query)
            elif path.startswith(API_PREFIX):
                if not self._fault(parts.faults.management_api_call()):
                    self._reply(parts.management.get(path, query, self.headers.get("Authorization")))
            elif path == METER_USAGE_PATH:
                self._reply(parts.management.records(query))
            elif (reply := parts.site.get(path, query)) is not None:
                self._reply(reply)
            else:
                self._error(HTTPStatus.NOT_FOUND, "Not found")

        def do_OPTIONS(self) -> None:
            """CORS preflight: the dashboard's origins may call the token endpoint and the Account API."""
            path = urlsplit(self.path).path
            headers = {}
            if parts.rules.cors_origin(self.headers.get("Origin")) and (
                path == TOKEN_PATH or path.startswith(ACCOUNT_API)
            ):
                headers = {
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type, Kinde-SDK",
                    "Access-Control-Max-Age": "600",
                }
            self._send(204, b"", headers)

        def _account_api(self, path: str, query: dict[str, str]) -> None:
            user = parts.keys.user_from(self.headers.get("Authorization"))
            prefix = f"{ACCOUNT_API}entitlement/"
            if user is None:
                self._error(HTTPStatus.UNAUTHORIZED, "Invalid token")
            elif path == f"{ACCOUNT_API}portal_link":
                self._reply(parts.site.portal_link(user, query))
            elif path == f"{ACCOUNT_API}entitlements":
                self._send(200, entitlements_body(parts.plans, user, query))
            elif path.startswith(prefix) and (
                body := entitlement_body(parts.plans, user, unquote(path[len(prefix) :]))
            ):
                self._send(200, body)
            else:
                self._error(HTTPStatus.NOT_FOUND, "Entitlement not found")

        def _body(self) -> bytes | None:
            """The body sent, or None when its length is not a number (then the connection closes)."""
            raw_length = self.headers.get("Content-Length") or "0"
            if not re.fullmatch(r"[0-9]{1,7}", raw_length):
                self.close_connection = True  # the body's end is unknown: do not reuse it
                return None
            return self.rfile.read(int(raw_length))

        def _json_body(self) -> dict[str, Any]:
            """The JSON object sent, or ``{}`` (then the caller answers 400 for what is missing)."""
            try:
                data = json.loads(self._body() or b"{}")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

        def do_POST(self) -> None:
            refusal = parts.rules.refusal({name.lower(): value for name, value in self.headers.items()})
            if refusal is not None:  # another site's page, or a rebound DNS name: nothing happens
                self.close_connection = True
                self._error(HTTPStatus.FORBIDDEN, refusal)
                return
            path = urlsplit(self.path).path
            if path.startswith("/dev/"):
                self._dev(self._json_body())
                return
            if path.startswith(API_PREFIX):
                body = self._body()  # read first: a queued fault must not leave it on the connection
                if not self._fault(parts.faults.management_api_call()):
                    self._reply(parts.management.post(path, body, self.headers.get("Authorization")))
                return
            form = dict(parse_qsl((self._body() or b"").decode("utf-8", "replace"), keep_blank_values=True))
            if path == TOKEN_PATH and form.get("grant_type") == "client_credentials":
                if not self._fault(parts.faults.m2m_token_call()):
                    self._reply(parts.management.token(form))
            elif (reply := parts.site.post(path, form)) is not None:
                self._reply(reply)
            else:
                self._error(HTTPStatus.NOT_FOUND, "Not found")

        def _dev(self, body: dict[str, Any]) -> None:
            """The dev endpoints: each needs a user (or, for a plan or a webhook, an organization),
            but a redelivery names only the webhook."""
            user, plan, org = body.get("user"), body.get("plan"), body.get("org")
            if org is not None:
                try:
                    check_org_code(org)
                except ValueError as exc:
                    self._error(HTTPStatus.BAD_REQUEST, str(exc))
                    return
                if not isinstance(user, str) and self.path == "/dev/plan":
                    user = parts.organizations.selecting_member(org)
            if self.path == "/dev/webhook" and isinstance(body.get("redeliver"), str):
                self._webhook(body["redeliver"], None, new_id=body.get("newWebhookId") is True)
            elif self.path == "/dev/webhook" and org is not None and not isinstance(user, str):
                self._dev_webhook(body, {"organization": {"code": org}})
            elif not isinstance(user, str) or not user:
                self._error(HTTPStatus.BAD_REQUEST, 'Give {"user": "kp_..."} (or {"org": "org_..."})')
            elif self.path == "/dev/token":
                self._token(user, plan, body.get("ttlSeconds"), org, body.get("permissions"))
            elif self.path == "/dev/plan":
                self._plan(user, plan, body.get("applyAfter", 0), body.get("fails", False), org)
            elif self.path == "/dev/webhook":
                default = {"organization": {"code": org}} if org is not None else {"user": {"id": user}}
                self._dev_webhook(body, default)
            else:
                self._error(HTTPStatus.NOT_FOUND, "Not found")

        def _dev_webhook(self, body: dict[str, Any], default_data: dict[str, Any]) -> None:
            """Sign one event and deliver it (or only sign it: ``"deliver": false``)."""
            event_type, data = body.get("type"), body.get("data", default_data)
            age = body.get("ageSeconds", 0)
            if not isinstance(event_type, str) or not isinstance(data, dict):
                self._error(HTTPStatus.BAD_REQUEST, 'Give {"type": "user.deleted", "user": "kp_..."}')
            elif isinstance(age, bool) or not isinstance(age, int | float) or not -1e9 <= age <= 1e9:
                self._error(HTTPStatus.BAD_REQUEST, "ageSeconds must be a number of seconds")
            elif body.get("deliver") is False:  # make invoke: the signed body only
                self._send(200, {"body": parts.webhooks.sign(event_type, data, age_seconds=age)})
            else:
                if event_type == "organization.deleted":  # Kinde deleted it, then told us
                    organization = data.get("organization")
                    code = organization.get("code") if isinstance(organization, dict) else None
                    parts.organizations.remove(code if isinstance(code, str) else "")
                self._webhook(None, parts.webhooks.sign(event_type, data, age_seconds=age))

        def _token(self, user: str, plan: Any, ttl: Any, org: str | None, permissions: Any) -> None:
            key = org_plan_key(org) if org is not None else user
            try:
                if isinstance(plan, str):
                    parts.plans.set_plan(key, plan)
                if org is not None:
                    granted = check_permissions(permissions) if permissions is not None else None
                    parts.organizations.join(user, org, granted)
                elif permissions is not None:
                    raise ValueError('permissions are a member\'s in an organization: give "org" too')
            except ValueError as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            ttl = ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else 3600
            claims = parts.organizations.claims(user, org)
            token = parts.keys.mint(user, ttl_seconds=ttl, **claims)
            answer = {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": ttl,
                "plan": parts.plans.plan_of(org_plan_key(claims["org_code"]) if org is not None else user),
                "org": claims["org_code"],
                "permissions": claims["permissions"],
            }
            self._send(200, answer)

        def _plan(self, user: str, plan: Any, apply_after: Any, fails: Any, org: str | None = None) -> None:
            if not isinstance(plan, str):
                self._error(HTTPStatus.BAD_REQUEST, 'Give {"user": "kp_...", "plan": "free"}')
            elif isinstance(apply_after, bool) or not isinstance(apply_after, int | float) or apply_after < 0:
                self._error(HTTPStatus.BAD_REQUEST, "applyAfter must be a number of seconds, 0 or more")
            elif not isinstance(fails, bool):
                self._error(HTTPStatus.BAD_REQUEST, "fails must be true or false")
            else:
                try:
                    answer = parts.plan_changes.request(user, plan, apply_after, fails, org=org)
                except ValueError as exc:
                    self._error(HTTPStatus.BAD_REQUEST, str(exc))
                    return
                self._send(502 if "error" in answer else 200, answer)

        def _webhook(self, webhook_id: str | None, token: str | None, *, new_id: bool = False) -> None:
            if token is None and (token := parts.webhooks.sent.get(webhook_id or "")) is None:
                self._error(HTTPStatus.NOT_FOUND, f"No webhook {webhook_id!r} was sent")
                return
            # new_id: the same signed body under a webhook-id of its own, as a replayer sends it
            answer = parts.webhooks.deliver(token, None if new_id else webhook_id)
            self._send(200 if answer["delivered"] else 502, answer)

    return Handler
