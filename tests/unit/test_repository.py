"""The single-table repository on moto: transactions, guards, faults, paging, reconcile."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from planguard.accounts_store import AccountRepository, Cursor
from planguard.errors import DuplicateAccountNumber, NotFound, ServiceUnavailable
from planguard.ids import is_account_id, new_account_id
from planguard.keys import normalise_account_number
from planguard.usage_counter import Counter, CounterConditionFailed

USER = "kp_repo"


@pytest.fixture
def repo(aws: None) -> AccountRepository:
    return AccountRepository(boto3.client("dynamodb"), "AccountsTable")


def all_items(user: str = USER) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").query(
        TableName="AccountsTable",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"USER#{user}"}},
    )["Items"]
    return items


def kinds(user: str = USER) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in all_items(user):
        kind = item["SK"]["S"].split("#", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


class FlakyClient:
    """Wraps a client: the first ``failures`` transactions fail with ``error``."""

    def __init__(self, error: ClientError, failures: int) -> None:
        self._client = boto3.client("dynamodb")
        self._error = error
        self.failures = failures
        self.calls = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self._error
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "TransactWriteItems",
    )


def test_account_guard_and_counter_are_written_together(repo: AccountRepository) -> None:
    account = repo.create(USER, "Electricity", "00-12 34", limit=5)
    assert is_account_id(account.id)
    assert kinds() == {"ACCOUNT": 1, "ACCOUNTNUMBER": 1, "USAGE": 1}
    assert repo.usage.usage_count(USER) == 1
    assert repo.get(USER, account.id) == account
    assert account.account_number == "00-12 34"  # kept as entered


def test_usage_count_is_zero_for_unknown_users(repo: AccountRepository) -> None:
    assert repo.usage.usage_count("kp_nobody") == 0


def test_limit_is_a_condition_on_the_counter(repo: AccountRepository) -> None:
    for i in range(2):
        repo.create(USER, f"A{i}", str(i), limit=2)
    with pytest.raises(CounterConditionFailed) as caught:
        repo.create(USER, "A3", "3", limit=2)
    assert caught.value.counter == Counter(2)
    assert kinds() == {"ACCOUNT": 2, "ACCOUNTNUMBER": 2, "USAGE": 1}


def test_unlimited(repo: AccountRepository) -> None:
    for i in range(12):
        repo.create(USER, f"A{i}", str(i), limit=None)
    assert repo.usage.usage_count(USER) == 12


def test_duplicate_number_writes_nothing(repo: AccountRepository) -> None:
    repo.create(USER, "A", "AB-12", limit=5)
    with pytest.raises(DuplicateAccountNumber):
        repo.create(USER, "B", "ab 12", limit=5)
    assert repo.usage.usage_count(USER) == 1
    assert kinds() == {"ACCOUNT": 1, "ACCOUNTNUMBER": 1, "USAGE": 1}


def test_limit_wins_over_duplicate_when_both_fail(repo: AccountRepository) -> None:
    repo.create(USER, "A", "1", limit=1)
    with pytest.raises(CounterConditionFailed):
        repo.create(USER, "B", "1", limit=1)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("001234", "001234"),
        (" 00-12 34 ", "001234"),
        ("AB-cd", "abcd"),
        ("\t12\u00a034", "1234"),
        ("12\u200b34", "1234"),  # zero-width space (format character)
        ("\uff11\uff12\uff13", "123"),  # fullwidth digits (NFKC)
        ("12\u201134", "1234"),  # non-breaking hyphen (NFKC makes it U+2010, a dash)
        ("12\u00ad34", "1234"),  # soft hyphen
        ("12\u221234\u2014", "1234"),  # minus sign, em dash
        ("\uff21\uff42", "ab"),  # fullwidth letters, case-folded
        ("\u00df", "ss"),  # case folding, not lower-casing
        ("12.34/5", "12.34/5"),  # other punctuation is part of the number
    ],
)
def test_normalise_account_number(raw: str, normalised: str) -> None:
    assert normalise_account_number(raw) == normalised


def test_delete_releases_the_guard_and_the_count(repo: AccountRepository) -> None:
    account = repo.create(USER, "A", "1", limit=5)
    repo.delete(USER, account.id)
    assert kinds() == {"USAGE": 1}
    assert repo.usage.usage_count(USER) == 0
    repo.create(USER, "A again", "1", limit=5)
    with pytest.raises(NotFound):
        repo.delete(USER, account.id)


def test_renumber_moves_the_guard(repo: AccountRepository) -> None:
    account = repo.create(USER, "A", "111", limit=5)
    updated = repo.update(USER, account.id, None, "222")
    assert (updated.name, updated.account_number) == ("A", "222")
    guards = [i for i in all_items() if i["SK"]["S"].startswith("ACCOUNTNUMBER#")]
    assert [(g["SK"]["S"], g["accountId"]["S"]) for g in guards] == [
        ("ACCOUNTNUMBER#" + hashlib.sha256(b"222").hexdigest(), account.id)
    ]
    repo.create(USER, "B", "111", limit=5)
    with pytest.raises(DuplicateAccountNumber):
        repo.update(USER, account.id, None, "1-11")
    # same normalised number, different formatting: allowed, no guard move
    assert repo.update(USER, account.id, "A2", "2-22").account_number == "2-22"
    assert repo.usage.usage_count(USER) == 2


def test_transaction_conflicts_are_retried(aws: None) -> None:
    flaky = FlakyClient(cancelled("None", "None", "TransactionConflict"), failures=3)
    repo = AccountRepository(flaky, "AccountsTable")  # type: ignore[arg-type]
    repo.create(USER, "A", "1", limit=5)
    assert flaky.calls == 4
    assert repo.usage.usage_count(USER) == 1


def test_persistent_conflict_is_503_and_writes_nothing(aws: None) -> None:
    flaky = FlakyClient(cancelled("TransactionConflict", "None", "None"), failures=100)
    repo = AccountRepository(flaky, "AccountsTable")  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        repo.create(USER, "A", "1", limit=5)
    assert kinds() == {}


def test_throttling_mid_way_loses_nothing(aws: None) -> None:
    """Every write is one transaction: a fault leaves the count equal to the accounts."""
    plain = AccountRepository(boto3.client("dynamodb"), "AccountsTable")
    first = plain.create(USER, "A", "1", limit=5)
    flaky = FlakyClient(throttled(), failures=100)
    repo = AccountRepository(flaky, "AccountsTable")  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        repo.create(USER, "B", "2", limit=5)
    with pytest.raises(ServiceUnavailable):
        repo.delete(USER, first.id)
    assert plain.usage.usage_count(USER) == 1
    assert kinds() == {"ACCOUNT": 1, "ACCOUNTNUMBER": 1, "USAGE": 1}


def test_reads_map_storage_faults_to_503(aws: None) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(**_: Any) -> Any:
                raise throttled()

            return fail

    repo = AccountRepository(Broken(), "AccountsTable")  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable):
        repo.usage.usage_count(USER)
    with pytest.raises(ServiceUnavailable):
        repo.list_page(USER, 10)


def test_reconcile_repairs_a_drifted_counter(repo: AccountRepository) -> None:
    for i in range(3):
        repo.create(USER, f"A{i}", str(i), limit=5)
    boto3.client("dynamodb").update_item(
        TableName="AccountsTable",
        Key={"PK": {"S": f"USER#{USER}"}, "SK": {"S": "USAGE#tracked_accounts"}},
        UpdateExpression="SET #c = :n",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":n": {"N": "7"}},
    )
    assert repo.usage.reconcile(USER) == (7, 3)
    assert repo.usage.usage_count(USER) == 3


def test_paging_and_cursor(repo: AccountRepository) -> None:
    ids = [repo.create(USER, f"A{i}", str(i), limit=None).id for i in range(5)]
    page = repo.list_page(USER, 2)
    assert [a.id for a in page.items] == ids[:2]
    assert page.next_cursor is not None
    page2 = repo.list_page(USER, 3, page.next_cursor)
    assert [a.id for a in page2.items] == ids[2:]
    assert page2.next_cursor is None
    assert Cursor.decode(USER, page.next_cursor) == ids[1]


def test_ids_are_time_ordered() -> None:
    earlier = new_account_id(now_ms=1_700_000_000_000)
    later = new_account_id(now_ms=1_700_000_000_001)
    assert earlier < later
    assert is_account_id(earlier) and len(earlier) == 26
    assert not is_account_id(earlier.lower())


def test_long_numbers_that_case_fold_longer_still_fit_the_sort_key(repo: AccountRepository) -> None:
    """200 x "ΐ" case-folds to 600 code points, past DynamoDB's 1 KiB key limit unhashed."""
    number = "ΐ" * 200
    account = repo.create(USER, "Greek", number, limit=5)
    assert repo.get(USER, account.id).account_number == number
    with pytest.raises(DuplicateAccountNumber):
        repo.create(USER, "Again", number.lower(), limit=5)


def test_reconcile_starts_over_when_a_write_lands_during_the_recount(
    repo: AccountRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create between reading the counter and writing the recount must not be lost."""
    for i in range(2):
        repo.create(USER, f"A{i}", str(i), limit=None)
    real_query = repo._db.query
    interleaved: list[str] = []

    def query_then_a_concurrent_create(**kwargs: Any) -> Any:
        result = real_query(**kwargs)
        if not interleaved:
            interleaved.append(repo.create(USER, "Late", "late", limit=None).id)
        return result

    monkeypatch.setattr(repo._db, "query", query_then_a_concurrent_create)
    before, actual = repo.usage.reconcile(USER)
    assert len(interleaved) == 1, "the patched query never ran"
    assert (before, actual) == (3, 3)  # the second pass saw the late account
    assert repo.usage.usage_count(USER) == 3 == len(repo.list_page(USER, 10).items)


def test_reconcile_of_a_user_without_a_counter(repo: AccountRepository) -> None:
    assert repo.usage.reconcile("kp_nobody") == (0, 0)
    assert repo.usage.usage_count("kp_nobody") == 0
