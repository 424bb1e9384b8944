"""Tracked accounts in the single table: CRUD, paging, and removing a whole user.

Create and delete are each one ``TransactWriteItems`` (account, number guard and counter move
together, the limit and any downgrade hold are one condition on the counter), so concurrent
requests can never push the count past a limit or leave it different from the number of accounts.
Every account write moves the user's usage counter (``planguard.usage_counter``), which the store
uses, not is: its part in a transaction comes from there.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from planguard.account import Account, Cursor, Page
from planguard.deleted_marker import condition_check
from planguard.dynamodb import (
    CONFLICT_RETRIES,
    TryAgain,
    call,
    cancellation_codes,
    s,
    transact,
    transient_or_fault,
    with_retries,
)
from planguard.errors import DuplicateAccountNumber, NotFound, ServiceUnavailable, UserDeleted
from planguard.ids import is_account_id, new_account_id
from planguard.keys import (
    USAGE_SK,
    account_key,
    accounts_query,
    guard_sk,
    iso,
    normalise_account_number,
    user_pk,
    user_query,
)
from planguard.settings import BillingCustomer, get_settings
from planguard.usage_counter import COUNTER_ITEM, UsageCounter, get_usage_counter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["Account", "AccountRepository", "Cursor", "Page", "get_repository"]

logger = logging.getLogger(__name__)
_CONDITION_FAILED = ["ConditionalCheckFailed"]
MARKER_ITEM = COUNTER_ITEM + 1  # an add's last item: the deletion marker's condition check


def _account_from_item(item: dict[str, Any]) -> Account:
    return Account(
        id=item["id"]["S"],
        name=item["name"]["S"],
        account_number=item["accountNumber"]["S"],
        created_at=item["createdAt"]["S"],
        updated_at=item["updatedAt"]["S"],
        created_by=item["createdBy"]["S"] if "createdBy" in item else None,
        updated_by=item["updatedBy"]["S"] if "updatedBy" in item else None,
    )


def _now() -> str:
    return iso(datetime.now(UTC))


class AccountRepository:
    """A customer's accounts and their number guards; ``usage``: the usage counter their writes
    move (``clock`` is its clock when the store makes its own). ``kind``: whose accounts, a user's
    or an organization's (their partitions, ``planguard.keys``); the ids passed in are theirs."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        clock: Callable[[], float] = time.time,
        usage: UsageCounter | None = None,
        kind: BillingCustomer = "user",
    ) -> None:
        self._db = client
        self._table = table_name
        self.usage = usage or UsageCounter(client, table_name, clock, kind=kind)
        self.kind: BillingCustomer = self.usage.kind

    # -- reads -------------------------------------------------------------------------------
    def get(self, user_id: str, account_id: str) -> Account:
        if not is_account_id(account_id):
            raise NotFound()
        item = self._get_account_item(user_id, account_id)
        if item is None:
            raise NotFound()
        return _account_from_item(item)

    def list_page(self, user_id: str, limit: int, cursor: str | None = None) -> Page:
        """Oldest first; reads ``limit + 1`` so the last page says so (``next_cursor`` None)."""
        params = {**accounts_query(self._table, user_id, self.kind), "Limit": limit + 1}
        if cursor:
            params["ExclusiveStartKey"] = account_key(user_id, Cursor.decode(user_id, cursor), self.kind)
        items = [_account_from_item(item) for item in call(self._db.query, **params).get("Items", [])]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, Cursor.encode(user_id, items[-1].id))
        return Page(items, None)

    # -- writes ------------------------------------------------------------------------------
    def create(
        self,
        user_id: str,
        name: str,
        account_number: str,
        limit: int | None,
        created_by: str | None = None,
        *,
        issued_at: int | None = None,
    ) -> Account:
        """Account + guard + counter in one transaction; ``limit=None`` means unlimited.
        ``created_by``: the member adding it to an organization's accounts (recorded as the
        account's ``createdBy`` and ``updatedBy``).

        The counter's condition also honours a binding downgrade hold, so a hold binds every add,
        unlimited ones included. Refused: ``CounterConditionFailed`` with the counter as it was;
        ``UserDeleted`` for a token issued at ``issued_at`` (its ``iat``) while Kinde's deletion of
        the user lasts (``planguard.deleted_marker``); None: not a token's add (seeding, tools).
        """
        pk, normalised = user_pk(user_id, self.kind), normalise_account_number(account_number)
        authors = {"createdBy": s(created_by), "updatedBy": s(created_by)} if created_by else {}

        def attempt() -> Account:
            account_id, now = new_account_id(), _now()
            item = {
                **account_key(user_id, account_id, self.kind),
                "id": s(account_id),
                "name": s(name),
                "accountNumber": s(account_number),
                "accountNumberKey": s(normalised),
                "createdAt": s(now),
                "updatedAt": s(now),
                **authors,
            }
            put = {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}
            try:
                items = [
                    {"Put": put},
                    self._put_guard(pk, normalised, account_id),
                    self.usage.increment(user_id, limit),
                ]
                if issued_at is not None:  # refused while Kinde's deletion lasts: no round trip more
                    items.append(condition_check(self._table, pk, int(self.usage.clock()), issued_at))
                transact(self._db, items)
            except ClientError as error:
                codes = cancellation_codes(error)
                if codes[MARKER_ITEM : MARKER_ITEM + 1] == _CONDITION_FAILED:
                    raise UserDeleted() from None
                if codes[COUNTER_ITEM : COUNTER_ITEM + 1] == _CONDITION_FAILED:
                    raise self.usage.refused_add(error, user_id) from None
                if codes[1:2] == _CONDITION_FAILED:
                    raise DuplicateAccountNumber() from None
                transient_or_fault(error, codes)
            return _account_from_item(item)

        return with_retries(attempt)

    def update(
        self,
        user_id: str,
        account_id: str,
        name: str | None,
        account_number: str | None,
        updated_by: str | None = None,
    ) -> Account:
        """Rename and/or renumber; a new number moves its guard in the same transaction.
        ``updated_by``: the member changing an organization's account (its ``updatedBy``)."""
        if not is_account_id(account_id):
            raise NotFound()
        pk = user_pk(user_id, self.kind)

        def attempt() -> Account:
            current = self._get_account_item(user_id, account_id)
            if current is None:
                raise NotFound()
            old_key = current["accountNumberKey"]["S"]
            new_key = normalise_account_number(account_number) if account_number is not None else old_key
            names = {"#n": "name", "#a": "accountNumber", "#k": "accountNumberKey", "#u": "updatedAt"}
            values = {
                ":n": s(name if name is not None else current["name"]["S"]),
                ":a": s(account_number if account_number is not None else current["accountNumber"]["S"]),
                ":k": s(new_key),
                ":u": s(_now()),
                ":old": s(old_key),
            }
            expression = "SET #n = :n, #a = :a, #k = :k, #u = :u"
            if updated_by:
                names["#by"], values[":by"] = "updatedBy", s(updated_by)
                expression += ", #by = :by"
            update: dict[str, Any] = {
                "TableName": self._table,
                "Key": account_key(user_id, account_id, self.kind),
                "UpdateExpression": expression,
                "ConditionExpression": "attribute_exists(PK) AND #k = :old",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
            try:
                if new_key == old_key:
                    return _account_from_item(
                        call(self._db.update_item, **update, ReturnValues="ALL_NEW")["Attributes"]
                    )
                transact(
                    self._db,
                    [
                        {"Update": update},
                        self._delete_guard(pk, old_key, account_id),
                        self._put_guard(pk, new_key, account_id),
                    ],
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    raise TryAgain() from None  # deleted or renumbered meanwhile: read again
                codes = cancellation_codes(error)
                if codes[2:3] == _CONDITION_FAILED:
                    raise DuplicateAccountNumber() from None
                if "ConditionalCheckFailed" in codes:
                    raise TryAgain() from None
                transient_or_fault(error, codes)
            # What the transaction wrote, without reading it back (one call fewer).
            return Account(
                account_id,
                values[":n"]["S"],
                values[":a"]["S"],
                current["createdAt"]["S"],
                values[":u"]["S"],
                current["createdBy"]["S"] if "createdBy" in current else None,
                updated_by or (current["updatedBy"]["S"] if "updatedBy" in current else None),
            )

        return with_retries(attempt)

    def delete(self, user_id: str, account_id: str) -> None:
        """Account, guard and one count go together; a concurrent second delete is a 404."""
        if not is_account_id(account_id):
            raise NotFound()

        def attempt() -> None:
            current = self._get_account_item(user_id, account_id)
            if current is None:
                raise NotFound()
            self._delete_account(user_id, current)

        with_retries(attempt)

    def delete_user(self, user_id: str) -> int:
        """Remove every item of a user (Kinde deleted them); returns how many accounts went.

        Each account goes with its guard and a counter decrement in one transaction, as a DELETE
        does, so an add racing this can never leave the counter wrong; the counter (with any hold)
        goes last, only at zero. Safe to run again after an interruption: it resumes.
        """
        removed = 0
        accounts = {**accounts_query(self._table, user_id, self.kind), "ConsistentRead": True, "Limit": 100}
        everything = {**user_query(self._table, user_id, self.kind), "ConsistentRead": True}
        for _ in range(CONFLICT_RETRIES):
            while items := call(self._db.query, **accounts).get("Items", []):
                for item in items:
                    with contextlib.suppress(NotFound):  # a concurrent delete took it
                        self.delete(user_id, item["id"]["S"])
                        removed += 1
            for item in call(self._db.query, **everything)["Items"]:
                if item["SK"]["S"] != USAGE_SK:  # nothing else should be left; leave nothing
                    call(
                        self._db.delete_item, TableName=self._table, Key={"PK": item["PK"], "SK": item["SK"]}
                    )
            if self.usage.delete_if_zero(user_id):
                return removed
            # an add landed meanwhile, or the counter drifted: recount, go again
            logger.warning("counter of %s not zero after removing its accounts", user_id)
            self.usage.reconcile(user_id)
        raise ServiceUnavailable()

    # -- internals ---------------------------------------------------------------------------
    def _delete_account(self, user_id: str, current: dict[str, Any]) -> None:
        """One attempt at removing an account read as ``current`` with its guard and one count."""
        account_id, key = current["id"]["S"], current["accountNumberKey"]["S"]
        delete = {
            "TableName": self._table,
            "Key": account_key(user_id, account_id, self.kind),
            "ConditionExpression": "attribute_exists(PK) AND #k = :k",
            "ExpressionAttributeNames": {"#k": "accountNumberKey"},
            "ExpressionAttributeValues": {":k": s(key)},
        }
        try:
            transact(
                self._db,
                [
                    {"Delete": delete},
                    self._delete_guard(user_pk(user_id, self.kind), key, account_id),
                    self.usage.decrement(user_id),
                ],
            )
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes[:1] == _CONDITION_FAILED:
                raise TryAgain() from None  # gone or renumbered meanwhile: read again (gone -> 404)
            if codes[COUNTER_ITEM : COUNTER_ITEM + 1] == _CONDITION_FAILED:
                logger.error("usage counter of %s is out of step; run reconcile", user_id)
                raise ServiceUnavailable() from None
            transient_or_fault(error, codes)

    def _put_guard(self, pk: str, number_key: str, account_id: str) -> dict[str, Any]:
        """Claim an account number for ``account_id``; fails if the user already tracks it."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {"PK": s(pk), "SK": s(guard_sk(number_key)), "accountId": s(account_id)},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _delete_guard(self, pk: str, number_key: str, account_id: str) -> dict[str, Any]:
        """Release an account number, only if it is still ``account_id``'s."""
        return {
            "Delete": {
                "TableName": self._table,
                "Key": {"PK": s(pk), "SK": s(guard_sk(number_key))},
                "ConditionExpression": "accountId = :id",
                "ExpressionAttributeValues": {":id": s(account_id)},
            }
        }

    def _get_account_item(self, user_id: str, account_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = call(
            self._db.get_item,
            TableName=self._table,
            Key=account_key(user_id, account_id, self.kind),
            ConsistentRead=True,
        ).get("Item")
        return item


@functools.cache
def get_repository(kind: BillingCustomer | None = None) -> AccountRepository:
    """One store per container and kind of customer (default: ``BILLING_CUSTOMER``'s, the same
    object as asking for that kind), over that kind's usage counter (and its client)."""
    if kind is None:
        return get_repository(get_settings().billing_customer)
    usage = get_usage_counter(kind)
    return AccountRepository(usage.client, usage.table_name, usage=usage)
