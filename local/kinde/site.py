"""The browser's side of the stand-in: what Kinde's SPA SDK and a signed-in user reach.

  GET  /oauth2/auth     the sign-in page (a checked authorization request)
  POST /oauth2/auth     its form: a code, back to the redirect URI with the state untouched
  POST /oauth2/token    authorization_code (PKCE S256) and refresh_token grants
  GET  /logout          ?redirect= to a registered logout URL
  GET  /account_api/v1/portal_link (with the Account API) -> {"url"} of a one-time portal link
  GET  /portal?key=     opens the portal; GET/POST /portal/{session}: its plan selection

Writes (every POST) pass the origin rules first (``origins.SiteRules.refusal``, in ``http``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.kinde.account_api import PlanStore
from local.kinde.oauth import OAuth, OAuthError, SignInRefused
from local.kinde.origins import SiteRules
from local.kinde.pages import PAGE_HEADERS, message_page, portal_page, sign_in_page
from local.kinde.portal import PORTAL_PATH, Portal

AUTH_PATH = "/oauth2/auth"
TOKEN_PATH = "/oauth2/token"
LOGOUT_PATH = "/logout"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class Reply:
    """An answer: ``body`` bytes are sent as they are (with ``headers``' Content-Type), else as JSON."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", {"Location": location, "Cache-Control": "no-store"})


def html(status: int, body: bytes) -> Reply:
    return Reply(status, body, dict(PAGE_HEADERS))


def _outcome(answer: Mapping[str, Any]) -> str:
    if answer.get("error"):
        return f"not run ({answer['error']})"
    if not answer.get("allowed"):
        return "denied"
    return f"applies at {answer['applyAt']}" if answer.get("applyAt") else f"now on {answer.get('plan')}"


class Site:
    """Kinde's hosted pages and the endpoints its browser SDK calls, over the stand-in's parts."""

    def __init__(
        self,
        oauth: OAuth,
        portal: Portal,
        plans: PlanStore,
        rules: SiteRules,
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.oauth, self.portal, self.plans, self.rules = oauth, portal, plans, rules
        self.log = log  # one line per sign-in, token grant and portal choice (make dev prints them)

    @property
    def base_url(self) -> str:
        return self.oauth.keys.issuer  # the stand-in's own URL

    def get(self, path: str, query: Mapping[str, str]) -> Reply | None:
        if path == AUTH_PATH:
            return self._authorize(query, None)
        if path == LOGOUT_PATH:
            return self._logout(query.get("redirect"))
        if path == PORTAL_PATH:
            session_id = self.portal.open(query.get("key", ""))
            if session_id is None:
                message = "This portal link has expired or was already used: open your plan page again."
                return html(400, message_page("Link expired", message))
            return redirect(f"{PORTAL_PATH}/{session_id}", 303)
        if path.startswith(f"{PORTAL_PATH}/"):
            return self._portal_page(path.removeprefix(f"{PORTAL_PATH}/"))
        return None

    def post(self, path: str, form: Mapping[str, str]) -> Reply | None:
        if path == AUTH_PATH:
            return self._authorize(form, form)
        if path == TOKEN_PATH:
            grant = f"POST {TOKEN_PATH} grant_type={form.get('grant_type')}"
            try:
                answer = self.oauth.token(form)
            except OAuthError as exc:
                self.log(f"Kinde stand-in: {grant} -> {exc.status} {exc.error} ({exc.description})")
                body = {"error": exc.error, "error_description": exc.description}
                return Reply(exc.status, body, dict(NO_STORE))
            self.log(f"Kinde stand-in: {grant} -> 200 (expires_in {answer['expires_in']})")
            return Reply(200, answer, dict(NO_STORE))
        if path.startswith(f"{PORTAL_PATH}/"):
            session_id = path.removeprefix(f"{PORTAL_PATH}/")
            session = self.portal.session(session_id)
            if session is None:
                return self._portal_page(session_id)
            self.portal.choose(session, form)
            outcome = session.error or _outcome(session.result or {})
            self.log(f"Kinde stand-in: portal, {session.user} chose {form.get('plan')!r}: {outcome}")
            return redirect(f"{PORTAL_PATH}/{session_id}", 303)  # a reload shows it, never re-sends it
        return None

    def portal_link(self, user: str, query: Mapping[str, str]) -> Reply:
        try:
            return Reply(200, self.portal.link(self.base_url, user, query))
        except ValueError as exc:
            return Reply(400, {"errors": [{"code": "INVALID_REQUEST", "message": str(exc)}]})

    def _authorize(self, query: Mapping[str, str], form: Mapping[str, str] | None) -> Reply:
        """The sign-in page for a request (``form`` None), or its submitted form: a code."""
        try:
            request = self.oauth.check(query)
        except SignInRefused as exc:
            return html(400, message_page("Sign-in refused", str(exc)))
        except OAuthError as exc:
            assert exc.location is not None
            return redirect(exc.location)
        if form is None:
            return html(200, sign_in_page(request.fields(), self.plans.plan_limits))
        user, plan = form.get("user", "").strip(), form.get("plan", "")
        org = form.get("org", "").strip()
        try:
            location = self.oauth.sign_in(request, user, plan or None, org or None)
        except ValueError as exc:
            page = sign_in_page(
                request.fields(), self.plans.plan_limits, user=user, plan=plan, org=org, error=str(exc)
            )
            return html(422, page)
        where = f" to {org}" if org else ""
        self.log(f"Kinde stand-in: {user} signed in{where}, back to {request.redirect_uri}")
        return redirect(location)

    def _logout(self, target: str | None) -> Reply:
        """Kinde ends its session and goes back to a registered logout URL (the dashboard's page)."""
        if target is None:
            return html(200, message_page("Signed out", "You are signed out of the Kinde stand-in."))
        if not self.rules.is_redirect_uri(target):  # the dashboard's page is its logout URL too
            known = ", ".join(self.rules.redirect_uris) or "none"
            message = f"{target!r} is not a logout URL of this application (registered: {known})."
            return html(400, message_page("Sign-out refused", message))
        return redirect(target)

    def _portal_page(self, session_id: str) -> Reply:
        session = self.portal.session(session_id)
        if session is None:
            message = "This portal session has ended: open your plan page again from the app."
            return html(404, message_page("Portal closed", message))
        current = self.plans.plan_of(session.user)
        pending = self.plans.pending.get(session.user)
        return html(200, portal_page(session, self.plans.plan_limits, current, pending))
