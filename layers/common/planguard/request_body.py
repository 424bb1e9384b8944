"""A request body's bytes, with no third-party imports: the resolver functions and the usage
count's plain handler decode bodies by the same rule (API Gateway may base64 them)."""

from __future__ import annotations

import base64
import binascii

from planguard.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 16 * 1024


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
