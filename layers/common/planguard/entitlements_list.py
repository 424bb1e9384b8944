"""Kinde's entitlements list (``GET {issuer}/account_api/v1/entitlements``), one page at a time.

Each page carries ``data.plans[{key, subscribed_on}]`` and ``data.entitlements[...]``, paged by
``metadata.has_more`` / ``next_page_starting_after`` (KINDE.md). Read leniently: a plan whose
``subscribed_on`` cannot be read keeps its key with no time (a hold then simply runs to its end),
and anything that is not the shape above is left out rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Plan = tuple[str, float | None]  # (plan key, subscribed_on in epoch seconds or None)


@dataclass(frozen=True)
class ListPage:
    plans: list[Plan]
    entitlements: list[dict[str, Any]]
    next_cursor: str | None  # None: the last page


def subscribed_at(value: object) -> float | None:
    """``subscribed_on`` (ISO-8601) as epoch seconds; a time without a zone is UTC; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def read_page(payload: dict[str, Any]) -> ListPage:
    """One page of the list: its plans, its entitlements, and where the next page starts.

    Raises ``ValueError`` when the page says there is more but not where: what is missing could be
    the very entitlement asked for, so the list cannot be read as complete.
    """
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    plans: list[Plan] = [
        (plan["key"], subscribed_at(plan.get("subscribed_on")))
        for plan in data.get("plans") or []
        if isinstance(plan, dict) and isinstance(plan.get("key"), str) and plan["key"]
    ]
    entitlements = [item for item in data.get("entitlements") or [] if isinstance(item, dict)]
    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("has_more") is not True:
        return ListPage(plans, entitlements, None)
    cursor = metadata.get("next_page_starting_after")
    if not isinstance(cursor, str) or not cursor:
        raise ValueError("the entitlements list has more pages but no next_page_starting_after")
    return ListPage(plans, entitlements, cursor)


def feature_entitlement(entitlements: list[dict[str, Any]], feature_key: str) -> dict[str, Any] | None:
    """The entitlement for ``feature_key`` (``feature_key``, or the older ``feature_code``)."""
    for entitlement in entitlements:
        if feature_key in (entitlement.get("feature_key"), entitlement.get("feature_code")):
            return entitlement
    return None
