"""Verifying a Kinde webhook body: never more than Kinde's own decoder accepts.

Kinde's ``@kinde/webhooks`` (``decodeWebhook``) runs jose's ``jwtVerify`` with no options over the
environment's key set. A body it would refuse must never delete anything here, so each of its
checks is made, none looser: RS256 by a key of the set (2048 bits or more), the key by ``kid``,
or without a ``kid`` the set's only key; ``iat``/``nbf``/``exp`` numbers when present, ``nbf`` and
``exp`` with no leeway; header and claims JSON objects as JavaScript parses them. Its answers are
simpler than ours: what the webhook says (type, age, duplicates) is the handler's business. One
refusal is ours alone: a body carrying an access token's claims (``scp``, ``azp``, ``gty``) is a
token, not an event, although Kinde's decoder would accept it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import jwt
from jwt.utils import base64url_decode
from planguard.auth import TokenVerifier
from planguard.errors import BadRequest, Unauthorized

# Under "planguard": the resolver copies its JSON log format onto the layer's loggers (planguard.api).
logger = logging.getLogger("planguard.webhook_token")

ALGORITHM = "RS256"
# Claims of an access token (its scopes, the client it was issued to, its grant type), never of a
# webhook. The environment signs both with the same keys, so a user's own access token minted with
# ``type``, ``event_id`` and ``timestamp`` claims would otherwise pass for an event.
ACCESS_TOKEN_CLAIMS = ("scp", "azp", "gty")


class WebhookRefused(Exception):
    """The token failed ``check`` (logged with ``detail``; the caller sees a plain 401)."""

    def __init__(self, check: str, detail: str = "") -> None:
        super().__init__(check)
        self.check = check
        self.detail = detail


def verify_webhook(token: str, verifier: TokenVerifier) -> dict[str, Any]:
    """The claims of a webhook body (``type``, ``event_id``, ``timestamp``, ``data``…).

    Not a JWT at all: ``BadRequest``. Any other refusal: ``Unauthorized``, its check logged as
    ``webhook refused`` with ``check`` (``alg``, ``kid``, ``key``, ``signature``, ``exp``,
    ``access-token``…).
    """
    try:
        header, claims = parse_compact(token)
        if header.get("alg") != ALGORITHM:
            raise WebhookRefused("alg", f"alg {str(header.get('alg'))[:20]!r}")
        key = _key(verifier, header.get("kid"))
        try:
            jwt.api_jws.decode_complete(
                token, key=key, algorithms=[ALGORITHM], options={"enforce_minimum_key_length": True}
            )
        except jwt.InvalidKeyError:  # under 2048 bits, which jose refuses for RS256 too
            raise WebhookRefused("key", "RSA key too short") from None
        except jwt.PyJWTError as exc:
            raise WebhookRefused("signature", type(exc).__name__) from None
        check_times(claims, math.floor(time.time()))
        if found := [name for name in ACCESS_TOKEN_CLAIMS if name in claims]:
            raise WebhookRefused("access-token", f"carries {', '.join(found)}")
    except WebhookRefused as refused:
        logger.info("webhook refused", extra={"check": refused.check, "detail": refused.detail})
        raise Unauthorized() from None
    return claims


def parse_compact(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWT, before any key is looked up.

    Not three base64url segments with a JSON object in each of the first two: ``BadRequest``.
    PyJWT's header rules (``kid`` a string, no ``crit`` it does not know) are refusals: jose makes
    the second; the first only refuses more (jose would ignore a ``kid`` that is not a string).
    """
    try:
        jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise BadRequest("The body must be a JWT (Content-Type: application/jwt).") from None
    except jwt.InvalidTokenError as exc:
        raise WebhookRefused("header", str(exc)[:200]) from None
    try:
        header, claims = (_strict_json(base64url_decode(segment)) for segment in token.split(".")[:2])
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or absurdly deep
        header = claims = None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise BadRequest("The body must be a JWT whose header and claims are JSON objects.")
    return header, claims


def check_times(claims: dict[str, Any], now: int) -> None:
    """``iat``, ``nbf``, ``exp`` as jose checks them with no options: numbers when present, ``nbf``
    not after ``now``, ``exp`` after it, ``now`` in whole seconds; no leeway, no age limit."""
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise WebhookRefused(name, f"{name} is {type(value).__name__}, not a number")
    if "nbf" in claims and claims["nbf"] > now:
        raise WebhookRefused("nbf", "not valid yet")
    if "exp" in claims and claims["exp"] <= now:
        raise WebhookRefused("exp", "expired")


def _key(verifier: TokenVerifier, kid: Any) -> jwt.PyJWK:
    """The key of ``kid``; without a ``kid``, the set's only key (with two, which one is a guess,
    and Kinde's decoder refuses it too). An RS256 signing key, as jose would select it."""
    try:
        if isinstance(kid, str):
            key = verifier.signing_key(kid)
        elif kid is None and len(keys := verifier.key_set()) == 1:
            key = keys[0]
        else:
            raise WebhookRefused("kid", "no kid, and the set has more than one key")
    except jwt.PyJWKClientConnectionError as exc:  # an outage to see, not one more forged token
        logger.warning("JWKS unreachable: %s", exc)
        raise WebhookRefused("key", "JWKS unreachable") from None
    except jwt.PyJWTError as exc:  # an unknown kid, or a key set we cannot use
        raise WebhookRefused("key", f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if key.key_type != "RSA" or key.algorithm_name != ALGORITHM or key.public_key_use not in (None, "sig"):
        raise WebhookRefused("key", "not an RS256 signing key")
    return key


def _strict_json(raw: bytes) -> Any:
    """JSON as JavaScript's ``JSON.parse`` reads it: Python's parser also takes ``NaN`` and
    ``Infinity``, and a ``NaN`` passes every comparison a time check makes."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(raw, parse_constant=refuse)
