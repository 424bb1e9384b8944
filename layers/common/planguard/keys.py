"""The single table's key layout: the only module that spells a partition or sort key.

    account           PK=<customer>  SK=ACCOUNT#<id>
    number guard      PK=<customer>  SK=ACCOUNTNUMBER#<sha256 of the normalised number>
    usage counter     PK=<customer>  SK=USAGE#tracked_accounts
                      count=<int> version=<int>
                      [holdLimit=<int> holdUntil=<epoch s> holdFrom=<epoch s> holdPlan=<str>]

    <customer>        USER#<kindeId>  when Kinde bills users (the default)
                      ORG#<orgCode>   when Kinde bills organizations (shared by their members)

Everything of one customer shares a partition, so its accounts are one Query and its removal is
one Query away. The two kinds never meet: a deployment serves one (``BILLING_CUSTOMER``), and a
switch leaves the other's items unused.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from planguard.dynamodb import s
from planguard.settings import FEATURE_KEY, BillingCustomer

_PARTITION_PREFIX: dict[BillingCustomer, str] = {"user": "USER#", "organization": "ORG#"}
ACCOUNT_PREFIX = "ACCOUNT#"
USAGE_SK = f"USAGE#{FEATURE_KEY}"
_NORMALISE = re.compile(r"[\s\-]+")


def normalise_account_number(number: str) -> str:
    """Trimmed, case-folded, spaces and hyphens removed; leading zeros kept."""
    return _NORMALISE.sub("", number.strip().casefold())


def user_pk(user_id: str, kind: BillingCustomer = "user") -> str:
    """The customer's partition: a user's (``USER#``) or an organization's (``ORG#``)."""
    return f"{_PARTITION_PREFIX[kind]}{user_id}"


def account_sk(account_id: str) -> str:
    return f"{ACCOUNT_PREFIX}{account_id}"


def guard_sk(normalised: str) -> str:
    """Hashed: a 200-character number can case-fold past DynamoDB's 1 KiB sort-key limit."""
    return f"ACCOUNTNUMBER#{hashlib.sha256(normalised.encode()).hexdigest()}"


def account_key(user_id: str, account_id: str, kind: BillingCustomer = "user") -> dict[str, Any]:
    return {"PK": s(user_pk(user_id, kind)), "SK": s(account_sk(account_id))}


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


def iso(moment: datetime) -> str:
    """The timestamp format items and answers carry: UTC, milliseconds, ``Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
