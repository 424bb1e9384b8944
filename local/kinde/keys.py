"""The stand-in's signing keys: the JWKS it publishes and the access tokens it mints and reads back."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


class KeyRing:
    """Every key published so far (old ones stay valid, as during Kinde's rotation); the newest signs
    and ``rotate`` adds one. ``issuer`` and ``audience`` are what minted tokens say."""

    def __init__(
        self, lock: threading.RLock, saved: Callable[[], None], keys: list[SigningKey] | None = None
    ) -> None:
        self.keys: list[SigningKey] = list(keys or [])
        self.issuer = ""
        self.audience: str | None = None
        self._lock = lock
        self._saved = saved  # called after a change that the state file keeps

    def rotate(self) -> SigningKey:
        """Publish a new signing key, kept beside the old ones."""
        key = SigningKey(f"dev-{uuid.uuid4().hex[:8]}", new_rsa_key())
        with self._lock:
            self.keys.append(key)
        self._saved()
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def sign(self, claims: dict[str, Any], key: SigningKey | None = None) -> str:
        """``claims`` as a JWT signed RS256 by ``key`` (default the newest), its ``kid`` in the header."""
        signing = key or self.keys[-1]
        return jwt.encode(claims, signing.private_key, algorithm="RS256", headers={"kid": signing.kid})

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
            "iss": issuer if issuer is not None else self.issuer,
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
        return self.sign(payload, key)

    def user_from(self, authorization: str | None) -> str | None:
        """The ``sub`` of a bearer token this stand-in signed (any of its keys), else None."""
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

    def to_state(self) -> list[dict[str, str]]:
        pem = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        with self._lock:
            return [{"kid": k.kid, "pem": k.private_key.private_bytes(*pem).decode()} for k in self.keys]

    @staticmethod
    def from_state(items: list[dict[str, str]]) -> list[SigningKey]:
        keys = []
        for item in items:
            key = serialization.load_pem_private_key(item["pem"].encode(), password=None)
            keys.append(SigningKey(item["kid"], key))  # type: ignore[arg-type]
        return keys
