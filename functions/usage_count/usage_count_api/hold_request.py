"""The downgrade hold's request: ``limit`` and ``plan`` from the query string, a form or JSON.

Kinde's workflow ``fetch`` sends bodies only as ``URLSearchParams``, so the workflow puts the
fields in the query string; a form or JSON body is accepted too, for other callers. Anything
that cannot be a limit is a 400, never a 500: this runs on Kinde's plan-change path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from planguard.errors import BadRequest
from planguard.ids import PLAN_CODE_RULE, is_plan_code
from planguard.request_parsing import body_bytes, is_json, media_type

MAX_LIMIT = 1_000_000
_LIMIT = re.compile(r"[0-9]{1,7}")  # ASCII only: str.isdigit() also takes "²"
BAD_LIMIT = f"'limit' must be a whole number from 0 to {MAX_LIMIT:,}, or empty for an unlimited plan."
BAD_PLAN = f"'plan' must be {PLAN_CODE_RULE}."


@dataclass(frozen=True)
class HoldRequest:
    limit: int | None  # None: an unlimited plan; nothing is written, the active hold is answered
    plan: str | None


def _body_fields(event: dict[str, Any]) -> dict[str, Any]:
    data = body_bytes(event.get("body"), bool(event.get("isBase64Encoded")))
    if not data.strip():
        return {}
    try:
        if is_json(media_type(event.get("headers"))):
            fields = json.loads(data)
        else:
            text = data.decode("utf-8")
            fields = {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The request body is neither a form nor JSON.") from None
    if not isinstance(fields, dict):
        raise BadRequest("The request body must be an object with 'limit' and 'plan'.")
    return fields


def _limit(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LIMIT:
        return value
    if isinstance(value, str) and _LIMIT.fullmatch(value) and int(value) <= MAX_LIMIT:
        return int(value)
    raise BadRequest(BAD_LIMIT)


def parse_hold_request(event: dict[str, Any]) -> HoldRequest:
    """The query string wins; the body is read only when the query string has no ``limit``."""
    query = event.get("queryStringParameters") or {}
    fields: dict[str, Any] = dict(query) if "limit" in query else {**_body_fields(event), **query}
    if "limit" not in fields:
        raise BadRequest(BAD_LIMIT)
    plan = fields.get("plan")
    if plan in (None, ""):
        plan = None
    elif not is_plan_code(plan):
        raise BadRequest(BAD_PLAN)
    return HoldRequest(_limit(fields["limit"]), plan)
