"""An account as clients see it, a page of them, and the opaque cursor to the next page (pure)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from planguard.errors import BadRequest
from planguard.ids import is_account_id


@dataclass(frozen=True)
class Account:
    """``created_by``/``updated_by``: the members (Kinde user ids) who created it and changed it
    last, recorded when Kinde bills organizations (a user's own accounts have no other author)."""

    id: str
    name: str
    account_number: str
    created_at: str
    updated_at: str
    created_by: str | None = None
    updated_by: str | None = None

    def to_json(self) -> dict[str, str]:
        shown = {
            "id": self.id,
            "name": self.name,
            "accountNumber": self.account_number,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.created_by is not None:
            shown["createdBy"] = self.created_by
        if self.updated_by is not None:
            shown["updatedBy"] = self.updated_by
        return shown

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            data["id"],
            data["name"],
            data["accountNumber"],
            data["createdAt"],
            data["updatedAt"],
            data.get("createdBy"),
            data.get("updatedBy"),
        )


@dataclass(frozen=True)
class Page:
    items: list[Account]
    next_cursor: str | None


class Cursor:
    """Opaque page cursor bound to its user: base64url JSON of a user tag and the last account id."""

    @staticmethod
    def _tag(user_id: str) -> str:
        return hashlib.sha256(user_id.encode()).hexdigest()[:16]

    @classmethod
    def encode(cls, user_id: str, last_id: str) -> str:
        raw = json.dumps({"u": cls._tag(user_id), "a": last_id}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, user_id: str, cursor: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise BadRequest("The cursor is not valid.") from None
        if (
            not isinstance(data, dict)
            or data.get("u") != cls._tag(user_id)
            or not isinstance(data.get("a"), str)
            or not is_account_id(data["a"])
        ):
            raise BadRequest("The cursor is not valid.")
        return str(data["a"])
