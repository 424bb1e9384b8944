"""Ids: our account ids (ULID-style, 26 Crockford base32 characters, time-ordered), Kinde's user ids
and plan codes.

Time-ordered ids make the DynamoDB sort key ``ACCOUNT#<id>`` list accounts oldest first, as the
seed's ``orderBy: createdAt asc`` does, with one Query and no index.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import TypeGuard

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ACCOUNT_ID_PATTERN = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
KINDE_ID_PATTERN = re.compile(r"[A-Za-z0-9_:.\-]{1,128}")
# What a plan code is, for PLAN_LIMITS and for the hold's ``plan``: one rule, so a plan the settings
# accept is never refused on Kinde's plan-change path. The workflow in kinde/ keeps the same pattern
# (tests/fixtures/plan_limits_invalid.json runs both).
PLAN_CODE_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
PLAN_CODE_RULE = "1-128 letters, digits, '_', '.', ':' or '-'"


def new_account_id(now_ms: int | None = None) -> str:
    """48 bits of milliseconds then 80 random bits."""
    timestamp = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = (timestamp << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def is_account_id(value: str) -> bool:
    return ACCOUNT_ID_PATTERN.fullmatch(value) is not None


def is_kinde_id(value: object) -> TypeGuard[str]:
    """Kinde ids are ``kp_…`` (older tenants ``kp:…``): never assume hex, only a safe charset."""
    return isinstance(value, str) and KINDE_ID_PATTERN.fullmatch(value) is not None


def is_plan_code(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and PLAN_CODE_PATTERN.fullmatch(value) is not None
