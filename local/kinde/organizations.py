"""Kinde's organizations as the stand-in plays them: who is a member of which, with which
permissions, and the environment's default organization.

Kinde puts every user it cannot place into the default organization, so every token carries an
``org_code``: a user who joined no organization is signed in to the default one. An organization's
plan lives in the plan store under ``org_plan_key(code)``, beside the users' plans, so it changes
at once, later or never exactly as a user's does. The default organization is never a billing
customer (Kinde bills organizations that subscribed, and Plan Guard refuses the default one).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ORGANIZATION = "org_default"
ORG_CODE = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")
PERMISSION = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")


def org_plan_key(code: str) -> str:
    """Where an organization's plan lives in the plan store ("/" is in no user id)."""
    return f"org/{code}"


def check_org_code(code: object) -> str:
    if not isinstance(code, str) or not ORG_CODE.fullmatch(code):
        raise ValueError(
            "An organization code is 1 to 128 letters, digits, _ : . or - (for example org_acme)."
        )
    return code


def check_permissions(permissions: object) -> list[str]:
    if not isinstance(permissions, list) or not all(
        isinstance(item, str) and PERMISSION.fullmatch(item) for item in permissions
    ):
        raise ValueError('permissions must be a list of permission keys, e.g. ["write:tracked_accounts"]')
    return sorted(set(permissions))


@dataclass
class Organization:
    code: str
    is_default: bool = False
    members: dict[str, list[str]] = field(default_factory=dict)  # user id -> their permissions here


class Organizations:
    """Organizations by code (the default one always among them) and their members."""

    def __init__(
        self, lock: threading.RLock, saved: Callable[[], None], state: dict[str, Any] | None = None
    ) -> None:
        self._lock = lock
        self._saved = saved
        self.organizations: dict[str, Organization] = {
            code: Organization(code, bool(item.get("isDefault")), dict(item.get("members", {})))
            for code, item in (state or {}).get("organizations", {}).items()
        }
        self.organizations.setdefault(DEFAULT_ORGANIZATION, Organization(DEFAULT_ORGANIZATION, True))

    def reset(self) -> None:
        """Only the default organization, with no members."""
        with self._lock:
            self.organizations = {DEFAULT_ORGANIZATION: Organization(DEFAULT_ORGANIZATION, True)}
        self._saved()

    def get(self, code: str) -> Organization | None:
        with self._lock:
            return self.organizations.get(code)

    def add(self, code: str, *, is_default: bool = False) -> Organization:
        """The organization ``code``, created when new (a second default one is allowed: tests
        play an environment whose default is another code)."""
        check_org_code(code)
        with self._lock:
            organization = self.organizations.get(code)
            if organization is None:
                organization = self.organizations[code] = Organization(code, is_default)
                self._saved()
            return organization

    def join(self, user: str, code: str, permissions: Sequence[str] | None = None) -> Organization:
        """``user`` becomes a member of ``code`` (created when new); ``permissions`` replaces theirs
        there when given, else a new member has none and a member keeps theirs."""
        granted = check_permissions(list(permissions)) if permissions is not None else None
        with self._lock:
            organization = self.add(code)
            if granted is not None or user not in organization.members:
                organization.members[user] = granted or []
            self._saved()
            return organization

    def selecting_member(self, code: str) -> str:
        """Who selects an organization's plan when no member is named: its first member."""
        with self._lock:
            organization = self.organizations.get(code)
            members = sorted(organization.members) if organization else []
        return members[0] if members else "kp_org_admin"

    def codes_of(self, user: str) -> list[str]:
        """The organizations ``user`` belongs to: those they joined, else the default one."""
        with self._lock:
            joined = sorted(code for code, item in self.organizations.items() if user in item.members)
        return joined or [DEFAULT_ORGANIZATION]

    def claims(self, user: str, org: str | None = None) -> dict[str, Any]:
        """What Kinde's access token says about organizations: ``org_code`` (``org``, which the user
        joins when it is new to them, else their first organization), ``org_codes`` and the member's
        ``permissions`` in that organization."""
        if org is not None and org not in self.codes_of(user):
            self.join(user, org)
        codes = self.codes_of(user)
        code = org if org is not None else codes[0]
        with self._lock:
            organization = self.organizations.get(code)
            permissions = list(organization.members.get(user, [])) if organization else []
        return {"org_code": code, "org_codes": codes, "permissions": permissions}

    def remove(self, code: str) -> bool:
        """An organization deleted in Kinde (never the default one)."""
        with self._lock:
            organization = self.organizations.get(code)
            if organization is None or organization.is_default:
                return False
            del self.organizations[code]
        self._saved()
        return True

    def to_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "organizations": {
                    code: {"isDefault": item.is_default, "members": dict(item.members)}
                    for code, item in self.organizations.items()
                }
            }
