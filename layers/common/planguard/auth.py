"""Kinde JWT verification: access tokens, and the signed bodies of Kinde webhooks.

RS256 only, exact issuer, audience when configured, exp/nbf with a small leeway, signing key by
``kid`` from a JWKS that is cached across warm invocations and refetched once for an unknown kid.
Machine-to-machine tokens and tokens without a user ``sub`` are refused. Every failure is the
same ``Unauthorized``: the reason is logged, never returned.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.types import Options

from planguard.errors import Unauthorized
from planguard.headers import bearer_token
from planguard.settings import get_settings

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30
# PyJWKClient refuses a forced refetch for this long after any fetch. A short pause keeps a
# rotated key usable within a second while a flood of made-up kids cannot hammer Kinde.
JWKS_REFETCH_COOLDOWN_SECONDS = 1.0
JWKS_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for."""

    user_id: str
    token: str = field(repr=False)
    claims: Mapping[str, Any] = field(repr=False)


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
        self._jwks = jwt.PyJWKClient(
            jwks_url,
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
            # business (any non-empty aud) is not ours (DESIGN.md §7).
            logger.info("Token refused: audience %s not expected", type(claims["aud"]).__name__)
            raise Unauthorized()
        grant_types = claims.get("gty") or []
        if "client_credentials" in (grant_types if isinstance(grant_types, list) else [grant_types]):
            raise Unauthorized("Machine-to-machine tokens cannot act as a user.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthorized()
        return Principal(user_id=subject, token=token, claims=claims)

    def verify_webhook(self, token: str) -> dict[str, Any]:
        """A Kinde webhook: a JWT signed by the same environment keys, carrying the event as claims
        (``type``, ``event_id``, ``data``…); no user, no audience. Signature and ``kid`` only."""
        return self._decode(token, audience=None, options={"verify_aud": False})

    def _decode(self, token: str, *, audience: str | None, options: Options) -> dict[str, Any]:
        """RS256 by the JWKS key of the token's ``kid``; every failure is the same 401."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthorized("Unsupported token algorithm.")
            if not isinstance(header.get("kid"), str):
                raise Unauthorized()
            key = self._signing_key(header["kid"])
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

    def _signing_key(self, kid: str) -> jwt.PyJWK:
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


@functools.cache
def get_verifier() -> TokenVerifier:
    """One verifier per container, so its JWKS cache survives warm invocations."""
    settings = get_settings()
    return TokenVerifier(settings.kinde_issuer_url, settings.jwks_url, settings.kinde_audience)
