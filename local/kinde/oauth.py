"""Kinde's OAuth 2.0 side of the browser sign-in: the authorization code flow with PKCE (S256).

What Kinde's SPA SDK needs and checks (docs/KINDE.md): a code for a registered redirect URI (compared
without a trailing slash) and an untouched ``state``; a token answer with an ``id_token`` that has
``sub`` and a ``refresh_token``; ``expires_in`` well above 10 s (its refresh timer fires 10 s early).
Codes are single-use and short-lived. Refresh tokens rotate: each is good for one refresh, and
every token rotated from one sign-in is one family. A spent refresh token presented again (or a
replayed code) means someone else holds a copy: the whole family is revoked, the newest token
included (OAuth 2.0 Security BCP, refresh token rotation). A user signs in to one organization at a
time (the one typed on the sign-in page, else their first, else the default one): the access
token's ``org_code``, ``org_codes`` and ``permissions`` say so, and a refresh keeps that organization.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from local.kinde.account_api import PlanStore
from local.kinde.keys import KeyRing
from local.kinde.organizations import Organizations, check_org_code, org_plan_key
from local.kinde.origins import SiteRules, normalise_uri

CLIENT_ID = "plan-guard-dev"  # the stand-in's one application; frontend/config.js names it
CODE_SECONDS = 60
DEFAULT_TOKEN_SECONDS = 3600
SCOPE = "openid profile email offline"
MAX_REFRESH_TOKENS = 1000  # the oldest sessions are forgotten past this
USER_ID = re.compile(r"[A-Za-z0-9_:-]{1,100}")


class OAuthError(Exception):
    """An OAuth error answer: ``error`` and ``error_description`` (RFC 6749), with its HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400, location: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.location = location  # a sign-in error goes back to the redirect URI


class SignInRefused(Exception):
    """A sign-in request that must not be sent back to its redirect URI (an unknown client or
    redirect URI): the stand-in shows the reason on its own page, as Kinde does."""


@dataclass(frozen=True)
class AuthRequest:
    """A checked ``/oauth2/auth`` request: what the sign-in page carries to its form's POST."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    code_challenge: str
    scope: str

    def fields(self) -> dict[str, str]:
        """The request as the sign-in form's hidden fields (the same names as the query)."""
        fields = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "scope": self.scope,
        }
        return {
            **fields,
            **{name: value for name, value in (("state", self.state), ("nonce", self.nonce)) if value},
        }

    def back_with(self, **answer: str) -> str:
        """The redirect URI with ``answer`` and the ``state`` as it came (a code, or an error)."""
        if self.state is not None:
            answer["state"] = self.state
        parts = urlsplit(self.redirect_uri)
        query = "&".join(filter(None, (parts.query, urlencode(answer))))
        return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshGrant:
    """What a live refresh token stands for: its user, and the sign-in it was rotated from."""

    user: str
    family: str
    org: str | None = None  # the organization the sign-in chose (a refresh keeps it)

    @classmethod
    def from_state(cls, token_hash: str, value: Any) -> RefreshGrant:
        """A saved grant; a state file from before families were kept held only the user (each
        token its own family)."""
        if isinstance(value, dict):
            org = value.get("org")
            return cls(str(value["user"]), str(value["family"]), org if isinstance(org, str) else None)
        return cls(str(value), token_hash)


@dataclass(frozen=True)
class Grant:
    """What a code stands for, until it is redeemed or expires."""

    user: str
    redirect_uri: str  # normalised
    code_challenge: str
    nonce: str | None
    expires_at: float
    org: str | None = None  # the organization signed in to (None: the user's first)


class OAuth:
    """Codes (in memory: a restart ends a sign-in under way) and refresh tokens (kept by hash in the
    state file, so a restart of make dev keeps the page signed in)."""

    def __init__(
        self,
        keys: KeyRing,
        plans: PlanStore,
        site: SiteRules,
        lock: threading.RLock,
        saved: Callable[[], None],
        *,
        state: Mapping[str, Any] | None = None,
        token_seconds: int = DEFAULT_TOKEN_SECONDS,
        organizations: Organizations | None = None,
    ) -> None:
        self.keys, self.plans, self.site = keys, plans, site
        self.organizations = organizations
        self.token_seconds = token_seconds
        self.code_seconds: float = CODE_SECONDS
        self.codes: dict[str, Grant] = {}
        self.redeemed: dict[str, str] = {}  # code -> the family of the refresh tokens it gave
        kept = state or {}
        self.refresh_tokens: dict[str, RefreshGrant] = {  # hash -> grant
            token_hash: RefreshGrant.from_state(token_hash, value)
            for token_hash, value in dict(kept.get("refreshTokens", {})).items()
        }
        self.spent: dict[str, str] = dict(kept.get("spentRefreshTokens", {}))  # hash -> family
        self._lock = lock
        self._saved = saved

    # -- /oauth2/auth --------------------------------------------------------------------------
    def check(self, query: Mapping[str, str]) -> AuthRequest:
        """The sign-in request, checked. ``SignInRefused`` for one that must not be redirected;
        ``OAuthError`` for one whose error goes back to the redirect URI (its ``location``)."""
        client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
        if client_id != CLIENT_ID:
            raise SignInRefused(
                f"Unknown client_id {client_id!r}: this stand-in's application is {CLIENT_ID!r}."
            )
        if not self.site.is_redirect_uri(redirect_uri):
            known = ", ".join(self.site.redirect_uris) or "none"
            raise SignInRefused(
                f"redirect_uri {redirect_uri!r} is not a callback URL of this application "
                f"(registered: {known})."
            )
        request = AuthRequest(
            client_id,
            redirect_uri,
            query.get("state"),
            query.get("nonce"),
            query.get("code_challenge", ""),
            query.get("scope") or SCOPE,
        )
        if query.get("response_type") != "code":
            error = ("unsupported_response_type", "Only response_type=code is supported.")
        elif query.get("code_challenge_method") != "S256" or not re.fullmatch(
            r"[A-Za-z0-9_-]{43}", request.code_challenge
        ):
            error = ("invalid_request", "PKCE is required: a code_challenge with code_challenge_method=S256.")
        else:
            return request
        back = request.back_with(error=error[0], error_description=error[1])
        raise OAuthError(*error, location=back)

    def sign_in(self, request: AuthRequest, user: str, plan: str | None, org: str | None = None) -> str:
        """Sign ``user`` in (setting their plan when one is chosen), to ``org`` when given (they join
        it when new to it; the plan is then the organization's): the redirect URI with a code."""
        if not USER_ID.fullmatch(user):
            raise ValueError("A user id is 1 to 100 letters, digits, _ : or - (for example kp_alice).")
        if org is not None:
            check_org_code(org)
        if plan:
            self.plans.set_plan(org_plan_key(org) if org else user, plan)  # ValueError: unknown plan
        if org is not None and self.organizations is not None:
            self.organizations.claims(user, org)  # joins it
        code = secrets.token_urlsafe(32)
        grant = Grant(
            user,
            normalise_uri(request.redirect_uri),
            request.code_challenge,
            request.nonce,
            time.time() + self.code_seconds,
            org,
        )
        with self._lock:
            self.codes = {c: g for c, g in self.codes.items() if g.expires_at > time.time()}
            self.codes[code] = grant
        return request.back_with(code=code)

    # -- /oauth2/token -------------------------------------------------------------------------
    def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token endpoint's answer for ``form``; ``OAuthError`` for every refusal."""
        if form.get("client_id") != CLIENT_ID:
            raise OAuthError("invalid_client", f"Unknown client_id {form.get('client_id')!r}.", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._redeem(form)
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""))
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")

    def _redeem(self, form: Mapping[str, str]) -> dict[str, Any]:
        code = form.get("code", "")
        with self._lock:
            grant = self.codes.pop(code, None)  # single-use: gone whatever follows
            if grant is None and code in self.redeemed:
                self._revoke(self.redeemed[code])
                self._saved()
                raise OAuthError("invalid_grant", "This code was already used; its tokens are revoked.")
        if grant is None:
            raise OAuthError("invalid_grant", "Unknown authorization code.")
        if grant.expires_at <= time.time():
            raise OAuthError("invalid_grant", "The authorization code has expired.")
        if normalise_uri(form.get("redirect_uri", "")) != grant.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri is not the one the code was issued for.")
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier is missing.")
        if not hmac.compare_digest(s256(verifier), grant.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge.")
        family = secrets.token_hex(16)
        with self._lock:
            self.redeemed[code] = family
            while len(self.redeemed) > MAX_REFRESH_TOKENS:
                self.redeemed.pop(next(iter(self.redeemed)))
        return self._tokens(grant.user, grant.nonce, family, grant.org)

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        token_hash = _hash(refresh_token)
        with self._lock:
            grant = self.refresh_tokens.pop(token_hash, None) if refresh_token else None
            if grant is None and refresh_token and token_hash in self.spent:
                self._revoke(self.spent[token_hash])
                self._saved()
                reused = "This refresh token was already used; every token of its sign-in is revoked."
                raise OAuthError("invalid_grant", reused)
            if grant is not None:
                self.spent[token_hash] = grant.family
                while len(self.spent) > MAX_REFRESH_TOKENS:
                    self.spent.pop(next(iter(self.spent)))
        if grant is None:
            raise OAuthError("invalid_grant", "The refresh token is unknown, used or revoked.")
        return self._tokens(grant.user, None, grant.family, grant.org)

    def _revoke(self, family: str) -> None:
        """Every live refresh token of one sign-in goes (the caller holds the lock and saves)."""
        self.refresh_tokens = {h: g for h, g in self.refresh_tokens.items() if g.family != family}

    def _tokens(self, user: str, nonce: str | None, family: str, org: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        org_claims = self.organizations.claims(user, org) if self.organizations is not None else {}
        access = self.keys.mint(user, ttl_seconds=self.token_seconds, **org_claims)
        claims: dict[str, Any] = {
            "iss": self.keys.issuer,
            "sub": user,
            "aud": [CLIENT_ID],
            "azp": CLIENT_ID,
            "iat": now,
            "auth_time": now,
            "exp": now + self.token_seconds,
            "jti": secrets.token_hex(16),
        }
        if nonce:
            claims["nonce"] = nonce
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self.refresh_tokens[_hash(refresh)] = RefreshGrant(user, family, org_claims.get("org_code"))
            while len(self.refresh_tokens) > MAX_REFRESH_TOKENS:
                self.refresh_tokens.pop(next(iter(self.refresh_tokens)))
        self._saved()
        return {
            "access_token": access,
            "id_token": self.keys.sign(claims),
            "refresh_token": refresh,
            "expires_in": self.token_seconds,
            "token_type": "bearer",
            "scope": SCOPE,
        }

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            live = self.refresh_tokens.items()
            return {
                "refreshTokens": {h: {"user": g.user, "family": g.family, "org": g.org} for h, g in live},
                "spentRefreshTokens": dict(self.spent),
            }
