"""Idempotency records outlive deploys: one stored by an earlier build of POST /accounts still replays.

``tests/fixtures/idempotency_record.json`` is a record as that build wrote it (captured from the
idempotency table after one keyed add), so its key prefix, its key (from ``[user, Idempotency-Key]``)
and its payload hash (from ``{name, accountNumber}``) are the ones clients' retries will meet.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn
from tests import ROOT
from tests.support import OTHER_USER, USER, AccountsClient

RECORD = ROOT / "tests/fixtures/idempotency_record.json"


@pytest.fixture
def record(accounts: AccountsClient) -> dict[str, Any]:
    """The stored record, back in the table; only its TTL moved (it is a deadline, not an identity)."""
    data: dict[str, Any] = json.loads(RECORD.read_text())
    assert data["user"] == USER  # the record's key hashes this user
    item = {**data["item"], "expiration": {"N": str(int(time.time()) + 3600)}}
    boto3.client("dynamodb").put_item(TableName="IdempotencyTable", Item=item)
    return data


def idempotency_records() -> int:
    return len(boto3.client("dynamodb").scan(TableName="IdempotencyTable")["Items"])


def test_a_stored_record_replays_its_answer(accounts: AccountsClient, record: dict[str, Any]) -> None:
    body, key = record["body"], {"Idempotency-Key": record["idempotencyKey"]}
    replayed = accounts.add(body["name"], body["accountNumber"], headers=key)
    assert (replayed.status, replayed.body) == (201, record["response"])
    assert get_usage_counter().usage_count(USER) == 0  # answered from the record: nothing created
    assert idempotency_records() == 1  # the same record, not a second one


def test_a_stored_record_refuses_another_body(accounts: AccountsClient, record: dict[str, Any]) -> None:
    changed = accounts.add(
        record["body"]["name"], "99-9999", headers={"Idempotency-Key": record["idempotencyKey"]}
    )
    assert (changed.status, changed.error_code) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert get_usage_counter().usage_count(USER) == 0


def test_a_stored_record_is_its_users_only(
    accounts: AccountsClient, kinde: KindeStandIn, record: dict[str, Any]
) -> None:
    kinde.set_plan(OTHER_USER, "pro")
    body, key = record["body"], {"Idempotency-Key": record["idempotencyKey"]}
    theirs = AccountsClient(kinde, OTHER_USER).add(body["name"], body["accountNumber"], headers=key)
    assert theirs.status == 201
    assert theirs.body["id"] != record["response"]["id"]  # created, not replayed
    assert get_usage_counter().usage_count(OTHER_USER) == 1
