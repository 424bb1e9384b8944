"""What each handled Kinde event does to our data: a deleted user's or organization's items go.

Every handler takes the verified event and answers what it did (logged by the handler); an event
that does not carry what it must is a 400, recorded as nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planguard.accounts_store import get_repository
from planguard.deleted_marker import mark_deleted, marker_until
from planguard.errors import BadRequest
from planguard.ids import is_kinde_id
from planguard.keys import user_pk
from planguard.settings import BillingCustomer, get_settings

from kinde_webhooks_api.events import WebhookEvent


def _remove(event: WebhookEvent, kind: BillingCustomer, customer_id: str) -> int:
    """Every tracked account, guard, counter and hold of the customer goes. First a marker refuses
    the customer's tokens, still valid for a while, so no add lands behind the removal (and none
    after)."""
    repository = get_repository(kind)
    until = marker_until(event.occurred_at, get_settings().token_lifetime_seconds)
    partition = user_pk(customer_id, kind)
    mark_deleted(repository.usage.client, repository.usage.table_name, partition, event.occurred_at, until)
    return repository.delete_user(customer_id)


def user_deleted(event: WebhookEvent) -> dict[str, Any]:
    """The user's items go (in either mode: a user's items stay unused, not gone, in a deployment
    switched to organizations)."""
    user = event.data.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not is_kinde_id(user_id):
        raise BadRequest("user.deleted must carry data.user.id, a Kinde user id.")
    return {"user_id": user_id, "accounts_removed": _remove(event, "user", user_id)}


def organization_deleted(event: WebhookEvent) -> dict[str, Any]:
    """The organization's items go, as a user's on ``user.deleted`` (in either mode)."""
    organization = event.data.get("organization")
    code = organization.get("code") if isinstance(organization, dict) else None
    if not is_kinde_id(code):  # organization codes follow the same rule
        raise BadRequest("organization.deleted must carry data.organization.code, a Kinde organization code.")
    return {"org_code": code, "accounts_removed": _remove(event, "organization", code)}


HANDLERS: dict[str, Callable[[WebhookEvent], dict[str, Any]]] = {
    "user.deleted": user_deleted,
    "organization.deleted": organization_deleted,
}
