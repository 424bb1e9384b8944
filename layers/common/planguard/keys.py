"""The single table's key layout: the only module that spells a partition or sort key.

    account           PK=<customer>  SK=ACCOUNT#<id>
    number guard      PK=<customer>  SK=ACCOUNTNUMBER#<sha256 of the normalised number>
    usage counter     PK=<customer>  SK=USAGE#tracked_accounts
                      count=<int> version=<int>
                      [holdLimit=<int> holdUntil=<epoch s> holdFrom=<epoch s> holdPlan=<str>]
    deletion marker   PK=DELETED#<partition, e.g. USER#<kindeId>>  SK=DELETED
                      deletedUntil=<epoch s> (the table's TTL attribute)

    <customer>        USER#<kindeId>  when Kinde bills users (the default)
                      ORG#<orgCode>   when Kinde bills organizations (shared by their members)

Everything of one customer shares a partition, so its accounts are one Query and its removal is
one Query away. The two kinds never meet: a deployment serves one (``BILLING_CUSTOMER``), and a
switch leaves the other's items unused. A deletion marker lives in a partition of its own, so a
deleted customer's partition is empty once their data is gone while the marker still refuses them.
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from typing import Any

from planguard.dynamodb import s
from planguard.settings import FEATURE_KEY, BillingCustomer

ACCOUNT_PREFIX = "ACCOUNT#"
USER_PREFIX = "USER#"
ORG_PREFIX = "ORG#"
_PARTITION_PREFIX: dict[BillingCustomer, str] = {"user": USER_PREFIX, "organization": ORG_PREFIX}
USAGE_SK = f"USAGE#{FEATURE_KEY}"
# Removed before comparing: invisible format characters (Cf: zero-width space, soft hyphen, bidi
# marks) and every dash (Pd: U+2011 non-breaking hyphen, en dash...) or minus sign.
_DROPPED_CATEGORIES = frozenset({"Cf", "Pd"})
_MINUS = "\u2212"
# Whose partition a key is: a user's (B2C billing) or an organization's (B2B billing).
CustomerKind = BillingCustomer
_CUSTOMER_PREFIXES: dict[str, CustomerKind] = {USER_PREFIX: "user", ORG_PREFIX: "organization"}


def normalise_account_number(number: str) -> str:
    """The form the duplicate guard compares: NFKC (fullwidth digits are digits), case-folded, with
    whitespace, dashes and format characters removed; leading zeros kept. Two numbers a person
    reads as the same must not pass as two accounts."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", number).casefold())
    return "".join(
        char
        for char in folded
        if not char.isspace() and char != _MINUS and unicodedata.category(char) not in _DROPPED_CATEGORIES
    )


def user_pk(user_id: str, kind: BillingCustomer = "user") -> str:
    """The customer's partition: a user's (``USER#``) or an organization's (``ORG#``)."""
    return f"{_PARTITION_PREFIX[kind]}{user_id}"


def customer_of(pk: str) -> tuple[CustomerKind, str] | None:
    """Which customer a partition key belongs to, ``("user", id)`` or ``("organization", code)``;
    None for a key of neither shape."""
    for prefix, kind in _CUSTOMER_PREFIXES.items():
        if pk.startswith(prefix) and len(pk) > len(prefix):
            return kind, pk.removeprefix(prefix)
    return None


def account_sk(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def guard_sk(normalised: str) -> str:
    """Hashed: a 200-character number can case-fold past DynamoDB's 1 KiB sort-key limit."""
    return f"ACCOUNTNUMBER#{hashlib.sha256(normalised.encode()).hexdigest()}"


def account_key(user_id: str, account_id: str, kind: BillingCustomer = "user") -> dict[str, Any]:
    return {"PK": s(user_pk(user_id, kind)), "SK": s(account_sk(account_id))}


def deleted_marker_key(partition: str) -> dict[str, Any]:
    """The marker a deletion in Kinde leaves for ``partition`` (``user_pk(...)``, or an
    organization's): beside it, never in it."""
    return {"PK": s(f"DELETED#{partition}"), "SK": s("DELETED")}


def counter_key(user_id: str, kind: BillingCustomer = "user") -> dict[str, Any]:
    return {"PK": s(user_pk(user_id, kind)), "SK": s(USAGE_SK)}


def user_query(table: str, user_id: str, kind: BillingCustomer = "user") -> dict[str, Any]:
    """Query arguments for every item of a customer."""
    return {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": s(user_pk(user_id, kind))},
    }


def accounts_query(table: str, user_id: str, kind: BillingCustomer = "user") -> dict[str, Any]:
    """Query arguments for a customer's accounts: ``ACCOUNT#`` sort keys, oldest id first."""
    return {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
        "ExpressionAttributeValues": {":pk": s(user_pk(user_id, kind)), ":prefix": s(ACCOUNT_PREFIX)},
    }


def counters_scan(table: str) -> dict[str, Any]:
    """Scan arguments for every customer's usage counter (the whole table is read; the filter
    keeps the counters)."""
    return {
        "TableName": table,
        "FilterExpression": "SK = :usage",
        "ExpressionAttributeValues": {":usage": s(USAGE_SK)},
    }


def iso(moment: datetime) -> str:
    """The timestamp format items and answers carry: UTC, milliseconds, ``Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
