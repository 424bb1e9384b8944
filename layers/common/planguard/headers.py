"""Request-header parsing with no third-party imports, so the usage-count path stays light."""

from __future__ import annotations

from collections.abc import Mapping


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
