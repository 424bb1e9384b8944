"""Parsing what callers send, with no third-party imports (the usage-count path stays light):
headers, a body's bytes (the resolver functions and the usage count's plain handler decode bodies
by the same rule: API Gateway may base64 them), and the ISO-8601 times Kinde sends."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime

from planguard.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 16 * 1024


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's stripped value, names compared case-insensitively; blank counts as absent."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    scheme, _, token = (header(headers, "authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def media_type(headers: Mapping[str, str] | None) -> str:
    """The ``Content-Type``'s media type, lower-cased, without parameters; "" when absent."""
    return (header(headers, "content-type") or "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """400 when the body cannot be decoded, 413 when it is over ``MAX_BODY_BYTES``."""
    raw = body or ""
    try:
        data = base64.b64decode(raw, validate=True) if is_base64 else raw.encode("utf-8")
    except (binascii.Error, ValueError, UnicodeEncodeError):  # ValueError: non-ASCII "base64"
        raise BadRequest("The request body could not be decoded.") from None
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    return data


def epoch_seconds(text: str) -> float | None:
    """An ISO-8601 time as epoch seconds (no offset means UTC), or None when it is not one: the one
    reader of the times Kinde sends (a webhook's ``timestamp``, a plan's ``subscribed_on``)."""
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None
