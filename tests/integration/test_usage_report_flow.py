"""Usage reports end to end on ``make dev REPORT_USAGE=1``: the API's writes, the embedded table's
stream, UsageReportFunction, the Kinde stand-in's Management API (what it received).

Adds and deletes in concurrent bursts, with a burst of adds refused at the limit in between (each
a cancelled transaction: moto then replaces the table under the stream's poller), must leave the
last value Kinde recorded equal to the count; ``make report-usage`` sends every count again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.local_stack import DevStack, run_module, start_dev

LIMITS = {"free": {"tracked_accounts": 3}, "pro": {"tracked_accounts": 5}, "big": {"tracked_accounts": 30}}
ALICE, BOB = "kp_report_alice", "kp_report_bob"
SETTLE_SECONDS = 60


@pytest.fixture(scope="module")
def reporting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = start_dev(
        tmp_path_factory.mktemp("report"), REPORT_USAGE="1", PLAN_LIMITS=json.dumps(LIMITS), timeout=90
    )
    yield stack
    assert stack.stop() == 0, stack.stderr


def recorded(stack: DevStack, user: str) -> list[dict[str, Any]]:
    response = requests.get(f"{stack.kinde}/dev/meter_usage", params={"user": user}, timeout=10)
    response.raise_for_status()
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def count_of(stack: DevStack, token: str) -> int:
    response = requests.get(f"{stack.api}/usage", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return int(response.json()["tracked_accounts"]["used"])


def settled(stack: DevStack, user: str, count: int) -> list[dict[str, Any]]:
    """The records once the last one is ``count`` (the stream is polled: it takes a moment)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    records = recorded(stack, user)
    while time.monotonic() < deadline and (not records or int(records[-1]["value"]) != count):
        time.sleep(0.3)
        records = recorded(stack, user)
    return records


def add(stack: DevStack, token: str, n: int) -> requests.Response:
    return stack.add_account(token, f"Account {n}", f"NUM-{n:05d}")


def delete(stack: DevStack, token: str, account_id: str) -> int:
    response = requests.delete(
        f"{stack.api}/accounts/{account_id}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return response.status_code


def test_bursts_of_adds_and_deletes_end_with_kinde_holding_the_count(reporting: DevStack) -> None:
    tokens = {ALICE: reporting.token(ALICE, "big"), BOB: reporting.token(BOB, "big")}
    ids: dict[str, list[str]] = {ALICE: [], BOB: []}
    operations = 0

    def burst_of_adds(user: str, numbers: range) -> list[int]:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda n: add(reporting, tokens[user], n), numbers))
        ids[user] += [a.json()["id"] for a in answers if a.status_code == 201]
        return [a.status_code for a in answers]

    def burst_of_deletes(user: str, how_many: int) -> None:
        gone, ids[user] = ids[user][:how_many], ids[user][how_many:]
        with ThreadPoolExecutor(6) as pool:
            assert set(pool.map(lambda i: delete(reporting, tokens[user], i), gone)) == {204}

    statuses = burst_of_adds(ALICE, range(0, 20))
    burst_of_adds(BOB, range(100, 104))
    burst_of_deletes(ALICE, 8)
    operations += 32
    assert statuses.count(201) == 20
    # A burst at the limit: 12 -> 30, the rest refused (cancelled transactions, on moto a table swap).
    statuses = burst_of_adds(ALICE, range(20, 45))
    assert statuses.count(201) == 18 and statuses.count(403) == 7
    burst_of_deletes(ALICE, 10)
    burst_of_deletes(BOB, 1)
    operations += 36
    assert operations >= 50
    alice_count, bob_count = count_of(reporting, tokens[ALICE]), count_of(reporting, tokens[BOB])
    assert (alice_count, bob_count) == (20, 3)

    alice, bob = settled(reporting, ALICE, alice_count), settled(reporting, BOB, bob_count)
    assert int(alice[-1]["value"]) == alice_count, (alice[-5:], reporting.stderr[-3000:])
    assert int(bob[-1]["value"]) == bob_count, bob[-5:]
    assert {r["type"] for r in alice + bob} == {"absolute"}
    assert {r["featureCode"] for r in alice + bob} == {"tracked_accounts"}
    assert alice[0]["agreementId"] != bob[0]["agreementId"]
    assert 1 <= len(alice) <= operations  # batched per customer: never more reports than changes
    assert "usage stream:" in reporting.stderr  # make dev shows each batch on its console


def test_holds_and_reads_report_nothing(reporting: DevStack) -> None:
    user = "kp_report_quiet"
    token = reporting.token(user, "big")
    assert add(reporting, token, 900).status_code == 201
    before = settled(reporting, user, 1)
    key = reporting.runtime["overrides"]["USAGE_API_KEY"]
    hold = requests.post(
        f"{reporting.api}/api/users/accounts/count/{user}/hold",
        params={"limit": "3", "plan": "free"},
        headers={"x-api-key": key},
        timeout=30,
    )
    assert hold.status_code == 200, hold.text
    requests.get(f"{reporting.api}/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert add(reporting, token, 901).status_code == 201  # a change after the hold: it must come through
    after = settled(reporting, user, 2)
    assert [int(r["value"]) for r in after] == [*(int(r["value"]) for r in before), 2]


def test_report_usage_sends_every_count_again(reporting: DevStack) -> None:
    before = {user: len(recorded(reporting, user)) for user in (ALICE, BOB)}
    done = run_module("local.cli", "report-usage", env=reporting.env, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["complete"] is True and summary["failed"] == 0 and summary["sent"] >= 2
    for user, count in ((ALICE, 20), (BOB, 3)):
        records = recorded(reporting, user)
        assert len(records) == before[user] + 1 and int(records[-1]["value"]) == count
