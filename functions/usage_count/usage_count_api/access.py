"""Who may read a usage count: the workflow's API key, or the user's own token; who may hold one.

Kept free of PyJWT and Powertools: the key path is the hot one (every plan change), so the JWT
verifier is imported only when a caller actually presents a token that is not the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from planguard.errors import Unauthorized
from planguard.request_parsing import bearer_token, header

UsageAuth = Literal["api_key", "none"]
Method = Literal["none", "api_key", "token"]


class Denied(Unauthorized):
    """A 401 whose reason goes to the log line, never to the caller."""

    def __init__(self, reason: str, *, token_given: bool = True) -> None:
        super().__init__(token_given=token_given)
        self.detail = reason


def _same_secret(presented: str, expected: str) -> bool:
    """Constant time, and over digests so neither the content nor the key's length leaks."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def _matches_any(presented: Sequence[str], keys: Sequence[str]) -> bool:
    """Every presented value against every key, with no early exit: how long it takes says
    nothing about which key matched, or whether an earlier one did."""
    matched = False
    for value in presented:
        for key in keys:
            matched |= _same_secret(value, key)
    return matched


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def has_credentials(headers: Mapping[str, str]) -> bool:
    """An API key or a bearer token was presented (without either, nothing is read at all)."""
    return bool(header(headers, "x-api-key") or bearer_token(headers))


def authorize_key(headers: Mapping[str, str], expected_keys: Callable[[], Sequence[str]]) -> Method:
    """One of the workflow's API keys and nothing else: a user's own token never places a hold,
    and no key configured refuses everyone, whatever ``USAGE_AUTH`` says."""
    api_key, bearer = header(headers, "x-api-key"), bearer_token(headers)
    presented = [value for value in (api_key, bearer) if value]
    if not presented:
        raise Denied("no credentials", token_given=False)
    keys = expected_keys()
    if _matches_any(presented, keys):
        return "api_key"
    raise Denied("wrong key" if keys else "no key configured")


def authorize(
    kinde_id: str,
    headers: Mapping[str, str],
    *,
    mode: UsageAuth,
    expected_keys: Callable[[], Sequence[str]],
) -> Method:
    """How the caller proved access to ``kinde_id``'s count; raises ``Unauthorized`` otherwise.

    ``expected_keys`` is called only when credentials were presented, so a request without any
    never touches SSM. No key configured means no key can match (fail closed); a user's own
    Kinde token still works, since it does not depend on the key.
    """
    if mode == "none":
        return "none"
    try:
        return authorize_key(headers, expected_keys)
    except Denied:
        bearer = bearer_token(headers)
        if not bearer or not _looks_like_jwt(bearer):
            raise
    from planguard.auth import get_verifier  # noqa: PLC0415 - PyJWT only on the token path

    if get_verifier().verify(bearer).user_id == kinde_id:
        return "token"
    raise Denied("token of another user")
