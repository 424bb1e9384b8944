"""Kinde JWT verification: access tokens, and the signed bodies of Kinde webhooks.

Access tokens: RS256 only, exact issuer, audience when configured, exp/nbf with a small leeway,
signing key by ``kid`` from a JWKS that is cached across warm invocations and refetched once for
an unknown kid. Machine-to-machine tokens and tokens whose ``sub`` is not a Kinde user id are
refused. Every failure is the same ``Unauthorized``: the reason is logged, never returned. Webhook
bodies have rules of their own (``kinde_webhooks_api.webhook_token``) over the same keys.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import urllib3
from jwt.types import Options

from planguard.errors import Unauthorized
from planguard.ids import is_kinde_id
from planguard.kinde_http import http_pool
from planguard.request_parsing import bearer_token
from planguard.settings import get_settings

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30
# PyJWKClient refuses a forced refetch for this long after any fetch. A short pause keeps a
# rotated key usable within a second while a flood of made-up kids cannot hammer Kinde.
JWKS_REFETCH_COOLDOWN_SECONDS = 1.0
JWKS_TIMEOUT_SECONDS = 3


class BoundedJWKClient(jwt.PyJWKClient):
    """``PyJWKClient`` with a negative cache: at most one fetch attempt per ``min_interval``.

    PyJWT's cooldown starts only after a *successful* fetch, so while the JWKS endpoint is down
    (or serves garbage) every token with an unknown ``kid`` (and every request of a cold container)
    would be one more fetch: an attacker's made-up kids would hammer Kinde and stall our requests
    on its timeout. A failed attempt is remembered for ``min_interval`` and raised again without a
    fetch. Any unusable answer (not JSON, not a key set, too deep) counts as a failed fetch, raised
    as ``PyJWKClientConnectionError`` so the last good key for a known ``kid`` keeps working.
    Fetched through the container's urllib3 pool (PyJWT's own fetch opens a new connection, and a
    new TLS handshake, every time), with no redirects.
    """

    def __init__(self, uri: str, *, min_interval: float, **kwargs: Any) -> None:
        super().__init__(uri, **kwargs)
        self.min_interval = min_interval
        self.fetch_attempts = 0
        self.loaded = False  # a key set was fetched once in this container
        self._failed_at: float | None = None
        self._failure = ""

    @staticmethod
    def _as_jwk_set_payload(data: Any) -> dict[str, Any]:
        """Drop the keys PyJWK cannot load. PyJWT skips most unusable keys itself, but some raise
        errors it does not expect (``alg: none`` is NotImplementedError, ``oct`` without ``k`` a
        KeyError) and would make the whole set, good keys included, unusable."""
        payload = jwt.PyJWKClient._as_jwk_set_payload(data)
        keys = payload.get("keys")
        if isinstance(keys, list):
            payload = {**payload, "keys": [key for key in keys if _loadable(key)]}
        return payload

    def fetch_data(self) -> Any:
        now = time.monotonic()
        if self._failed_at is not None and now - self._failed_at < self.min_interval:
            raise jwt.PyJWKClientConnectionError(
                f"JWKS fetch failed {now - self._failed_at:.1f}s ago: {self._failure}"
            )
        self.fetch_attempts += 1
        try:
            data = self._as_jwk_set_payload(self._download())
            # What PyJWT's own fetch does on success: the cache (which refuses a set with no usable
            # key), and the start of the refetch cooldown.
            if self.jwk_set_cache is not None:
                self.jwk_set_cache.put(data)
        except Exception as exc:  # any unusable answer: not JSON, no usable key, nesting too deep...
            self._failed_at, self._failure = time.monotonic(), f"{type(exc).__name__}: {exc}"[:200]
            raise jwt.PyJWKClientConnectionError(self._failure) from None
        self._last_successful_fetch = time.monotonic()
        self._failed_at, self.loaded = None, True
        return data

    def _download(self) -> Any:
        response = http_pool().request(
            "GET",
            self.uri,
            headers={"Accept": "application/json", **self.headers},
            timeout=urllib3.Timeout(total=self.timeout),
            retries=False,
            redirect=False,
        )
        if response.status != 200:
            raise jwt.PyJWKClientConnectionError(f"JWKS endpoint answered {response.status}")
        return json.loads(response.data)


def _loadable(key: Any) -> bool:
    if not isinstance(key, dict):
        return False
    try:
        jwt.PyJWK(key)
    except Exception:  # whatever a malformed key raises, it is not a key we can use
        return False
    return True


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for."""

    user_id: str
    token: str = field(repr=False)
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def issued_at(self) -> int:
        """The token's ``iat`` (epoch seconds, Kinde's clock); 0 when it has none, so it counts as
        issued before anything (a deleted user's token is refused)."""
        iat = self.claims.get("iat")
        return int(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else 0


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        jwks_url: str,
        audience: str | None = None,
        *,
        refetch_cooldown_seconds: float = JWKS_REFETCH_COOLDOWN_SECONDS,
        leeway_seconds: int = LEEWAY_SECONDS,
    ) -> None:
        self.issuer = issuer.removesuffix("/")
        self.audience = audience or None
        self.leeway_seconds = leeway_seconds
        self._jwks = BoundedJWKClient(
            jwks_url,
            min_interval=refetch_cooldown_seconds,
            cache_jwk_set=True,
            lifespan=600,
            timeout=JWKS_TIMEOUT_SECONDS,
            cooldown_duration=refetch_cooldown_seconds,
        )
        self._last_good: dict[str, jwt.PyJWK] = {}

    def verify(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized(token_given=False)
        claims = self._decode(
            token,
            audience=self.audience,
            options={
                "require": ["exp", "iss", "sub"],
                "verify_aud": self.audience is not None,
                "verify_iss": False,  # compared below, modulo one trailing slash
            },
        )
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer.removesuffix("/") != self.issuer:
            raise Unauthorized()
        if self.audience is None and claims.get("aud"):
            # No audience configured: a token minted for another application of the same Kinde
            # business (any non-empty aud) is not ours.
            logger.info("Token refused: audience %s not expected", type(claims["aud"]).__name__)
            raise Unauthorized()
        grant_types = claims.get("gty") or []
        if "client_credentials" in (grant_types if isinstance(grant_types, list) else [grant_types]):
            raise Unauthorized("Machine-to-machine tokens cannot act as a user.")
        subject = claims.get("sub")
        if not is_kinde_id(subject):
            # Not a Kinde user id (e.g. 2 KiB long): every key built from it would be refused by
            # DynamoDB, a failure no retry fixes. The token is no good: 401, never a 503.
            logger.info("Token refused: sub is not a Kinde user id")
            raise Unauthorized()
        return Principal(user_id=subject, token=token, claims=claims)

    def _decode(self, token: str, *, audience: str | None, options: Options) -> dict[str, Any]:
        """RS256 by the JWKS key of the token's ``kid``; every failure is the same 401."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthorized("Unsupported token algorithm.")
            if not isinstance(header.get("kid"), str):
                raise Unauthorized()
            key = self.signing_key(header["kid"])
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=audience,
                leeway=self.leeway_seconds,
                options=options,
            )
        except Unauthorized:
            raise
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("JWKS unreachable: %s", exc)
            raise Unauthorized() from None
        except jwt.PyJWTError as exc:
            logger.info("Token refused: %s", type(exc).__name__)
            raise Unauthorized() from None
        return claims

    def key_set(self) -> list[jwt.PyJWK]:
        """Every usable key of the set, from the same cache as ``signing_key``."""
        return list(self._jwks.get_jwk_set().keys)

    def signing_key(self, kid: str) -> jwt.PyJWK:
        """The key for ``kid``; if Kinde's JWKS is unreachable when the cache expires, the last
        key fetched for that kid keeps working rather than every request turning into a 401."""
        try:
            key = self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            if kid in self._last_good:
                logger.warning("JWKS unreachable; using the last key fetched for this kid")
                return self._last_good[kid]
            raise
        self._last_good[kid] = key
        return key

    def authenticate(self, headers: Mapping[str, str] | None) -> Principal:
        return self.verify(bearer_token(headers))

    def jwks_loaded(self) -> bool:
        """Whether this container ever fetched a key set: from then on, nothing may be started for a
        token before it verified (so a forged token never buys a call to Kinde)."""
        return self._jwks.loaded


def unverified_subject(token: str | None) -> str | None:
    """The ``sub`` a token claims, signature NOT checked: only to start a read that is discarded
    unless the token then verifies as this subject."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return subject if is_kinde_id(subject) else None


@functools.cache
def get_verifier() -> TokenVerifier:
    """One verifier per container, so its JWKS cache survives warm invocations."""
    settings = get_settings()
    return TokenVerifier(settings.kinde_issuer_url, settings.jwks_url, settings.kinde_audience)
