"""UsageReportFunction on built events: which counts reach Kinde, which records come back for a
retry, what is skipped, and what a batch costs in Kinde calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from planguard.errors import EntitlementUnavailable
from usage_report_fn import handler
from usage_report_fn.batch import MIN_SECONDS_PER_REPORT, report_batch
from usage_report_fn.changes import Customer, reports
from usage_report_fn.kinde_port import KindeRejected
from usage_report_fn.reporter import Sent, Skipped, UsageReporter, current_agreement
from usage_report_fn.resend import MAX_FAILURES_IN_A_ROW, Resender

from local.lambda_runtime import LocalContext
from tests.support import USER, load_event
from tests.usage_report_support import (
    Agreement,
    FakeManagementApi,
    count_changes,
    counter_image,
    expired,
    later,
    stream_record,
)


def CONTEXT() -> LocalContext:
    return LocalContext("UsageReportFunction", timeout_seconds=60)


ALICE, BOB = f"USER#{USER}", "USER#kp_bob0000000000000000000000000000"
ORG = "ORG#org_acme01"


@pytest.fixture
def kinde() -> FakeManagementApi:
    api = FakeManagementApi()
    api.customer(USER, "cus_alice")
    api.customer("kp_bob0000000000000000000000000000", "cus_bob")
    api.customer("org_acme01", "cus_acme")
    return api


@pytest.fixture
def reporter(kinde: FakeManagementApi) -> UsageReporter:
    return UsageReporter(kinde, "tracked_accounts")


def hold_write(pk: str, count: int, version: int) -> dict[str, Any]:
    """What placing a downgrade hold writes: the hold's attributes, the count as it was."""
    old = counter_image(pk, count, version)
    new = counter_image(pk, count, version, limit=3, until=1795614600, since=1795614300, plan="free")
    return stream_record("MODIFY", old, new)


# -- which changes are reported ---------------------------------------------------------------------
def test_several_changes_of_one_customer_make_one_report_of_the_newest(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    records = count_changes(ALICE, [1, 2, 3, 2, 4])
    result = report_batch(records, reporter, None)
    assert kinde.usage == [("agr_cus_alice", "tracked_accounts", 4)]
    assert [r.value for r, _ in result.sent] == [4]
    assert result.batch_item_failures() == []


def test_customers_are_reported_apart_users_and_organizations(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    records = [*count_changes(ALICE, [1, 2]), *count_changes(ORG, [5]), *count_changes(BOB, [1])]
    report_batch(records, reporter, None)
    assert sorted(kinde.usage) == [
        ("agr_cus_acme", "tracked_accounts", 5),
        ("agr_cus_alice", "tracked_accounts", 2),
        ("agr_cus_bob", "tracked_accounts", 1),
    ]
    assert ("organization", "org_acme01") in kinde.calls  # the org's customer id, from the organization


def test_a_duplicate_batch_is_harmless(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    records = count_changes(ALICE, [1, 2, 3])
    report_batch(records, reporter, None)
    report_batch(records, reporter, None)  # Lambda delivering the batch again
    assert kinde.last_value("agr_cus_alice") == 3
    assert {value for _, _, value in kinde.usage} == {3}  # absolute: the same value, twice


def test_a_hold_write_reports_nothing(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    result = report_batch([hold_write(ALICE, 3, 7)], reporter, None)
    assert kinde.calls == [] and result.sent == [] and result.batch_item_failures() == []


def test_a_counter_created_at_zero_by_the_hold_route_reports_nothing(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    created = counter_image(ALICE, 0, 0, limit=3, until=1795614600, since=1795614300, plan="free")
    report_batch([stream_record("INSERT", None, created)], reporter, None)
    assert kinde.calls == []


def test_a_hold_after_a_change_still_reports_the_change(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    changes = count_changes(ALICE, [1, 2])
    result = report_batch([*changes, hold_write(ALICE, 2, 2)], reporter, None)
    assert kinde.last_value("agr_cus_alice") == 2
    assert result.sent[0][0].retry_from == changes[0]["dynamodb"]["SequenceNumber"]


def test_a_removed_counter_reports_zero_once(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    removed = stream_record("REMOVE", counter_image(ALICE, 3, 5), None)
    assert report_batch([removed], reporter, None).sent
    assert kinde.usage == [("agr_cus_alice", "tracked_accounts", 0)]


def test_a_removal_kinde_cannot_take_is_not_retried(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    kinde.down_for.add("cus_alice")
    removed = stream_record("REMOVE", counter_image(ALICE, 3, 5), None)
    result = report_batch([removed], reporter, None)
    assert result.batch_item_failures() == [] and len(result.dropped) == 1


def test_records_of_other_items_are_ignored() -> None:
    account = {"PK": {"S": ALICE}, "SK": {"S": "ACCOUNT#01J0000000000000000000000"}, "name": {"S": "x"}}
    foreign = counter_image("SOMETHING#else", 3)
    assert reports([stream_record("INSERT", None, account), stream_record("INSERT", None, foreign)]) == []


# -- failures: only the failing customers come back ---------------------------------------------------
@pytest.mark.parametrize("status", [500, 429])
def test_kinde_faults_return_only_the_failing_customers_first_change(
    kinde: FakeManagementApi, reporter: UsageReporter, status: int
) -> None:
    kinde.down_for.add("cus_bob")
    alice, bob = count_changes(ALICE, [1, 2]), count_changes(BOB, [1, 2, 3])
    org = count_changes(ORG, [4])
    records = [alice[0], bob[0], alice[1], bob[1], org[0], bob[2]]
    result = report_batch(records, reporter, None)
    assert result.batch_item_failures() == [{"itemIdentifier": bob[0]["dynamodb"]["SequenceNumber"]}]
    assert kinde.last_value("agr_cus_alice") == 2 and kinde.last_value("agr_cus_acme") == 4


def test_a_fault_reading_the_agreement_fails_the_customer(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    kinde.faults.append(EntitlementUnavailable(5, detail="Management API answered 429"))
    records = count_changes(ALICE, [1])
    result = report_batch(records, reporter, None)
    assert result.batch_item_failures() == [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]


def test_reports_not_started_before_the_deadline_are_left_for_the_retry(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    now = [100.0]
    records = [*count_changes(ALICE, [1]), *count_changes(BOB, [1])]
    result = report_batch(records, reporter, 100.0 + MIN_SECONDS_PER_REPORT - 1, clock=lambda: now[0])
    assert len(result.failed) == 2 and kinde.calls == []


# -- skips: no agreement, no customer, refused -------------------------------------------------------------
def test_no_agreement_is_skipped_not_failed(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    kinde.agreements_of["cus_alice"] = []
    result = report_batch(count_changes(ALICE, [1]), reporter, None)
    assert result.batch_item_failures() == [] and kinde.usage == []
    assert [why for _, why in result.skipped] == ["no agreement carrying tracked_accounts"]


def test_no_billing_customer_is_skipped(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    result = report_batch(count_changes("USER#kp_nobody", [1]), reporter, None)
    assert result.batch_item_failures() == [] and result.skipped
    report_batch(count_changes("USER#kp_nobody", [2]), reporter, None)
    assert kinde.calls_of("user_customer_id") == 2  # a missing id is asked again: a new subscriber is seen


def test_an_expired_agreement_is_not_reported_to(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    kinde.agreements_of["cus_alice"] = [Agreement("agr_old", expires_on=expired())]
    assert isinstance(reporter.report(Customer("user", USER), 1, None), Skipped)
    kinde.agreements_of["cus_alice"].append(Agreement("agr_new", expires_on=later()))
    assert reporter.report(Customer("user", USER), 1, None) == Sent("agr_new")


def test_the_current_agreement_prefers_an_open_ended_one() -> None:
    agreements = [Agreement("a", expires_on=later(5)), Agreement("b"), Agreement("c", expires_on=later(60))]
    now = expired(0)
    chosen = current_agreement(agreements, now)
    assert chosen is not None and chosen.id == "b"


def test_a_refused_report_reads_the_agreement_again_once(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    alice = Customer("user", USER)
    assert reporter.report(alice, 1, None) == Sent("agr_cus_alice")
    kinde.rejected_agreements.add("agr_cus_alice")  # a plan change ended it
    kinde.agreements_of["cus_alice"] = [Agreement("agr_cus_alice_2")]
    assert reporter.report(alice, 2, None) == Sent("agr_cus_alice_2")
    assert kinde.last_value("agr_cus_alice_2") == 2


def test_a_report_refused_again_is_skipped(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    kinde.rejected_agreements.add("agr_cus_alice")
    outcome = reporter.report(Customer("user", USER), 1, None)
    assert isinstance(outcome, Skipped) and "400" in outcome.reason
    assert kinde.calls_of("meter_usage") == 1 and kinde.calls_of("agreements") == 2


def test_a_refused_customer_lookup_is_skipped(kinde: FakeManagementApi, reporter: UsageReporter) -> None:
    kinde.faults.append(KindeRejected(403, "missing scope read:users"))
    result = report_batch(count_changes(ALICE, [1]), reporter, None)
    assert result.batch_item_failures() == [] and "403" in result.skipped[0][1]


# -- what a batch costs ------------------------------------------------------------------------------------
def test_a_hundred_changes_of_one_customer_cost_one_kinde_call_when_warm(
    kinde: FakeManagementApi, reporter: UsageReporter
) -> None:
    report_batch(count_changes(ALICE, [1]), reporter, None)  # warms the customer id and agreement
    kinde.calls.clear()
    report_batch(count_changes(ALICE, list(range(2, 102))), reporter, None)
    assert kinde.calls == [("meter_usage", "agr_cus_alice")]
    assert kinde.last_value("agr_cus_alice") == 101


def test_the_agreement_is_kept_briefly(kinde: FakeManagementApi) -> None:
    now = [0.0]
    reporter = UsageReporter(kinde, "tracked_accounts", clock=lambda: now[0], agreement_seconds=60)
    alice = Customer("user", USER)
    reporter.report(alice, 1, None)
    now[0] = 59
    reporter.report(alice, 2, None)
    assert kinde.calls_of("agreements") == 1
    now[0] = 61
    reporter.report(alice, 3, None)
    assert kinde.calls_of("agreements") == 2 and kinde.calls_of("user_customer_id") == 1


# -- the handler -----------------------------------------------------------------------------------------
@pytest.fixture
def with_kinde(monkeypatch: pytest.MonkeyPatch, kinde: FakeManagementApi) -> Iterator[FakeManagementApi]:
    monkeypatch.setenv("TABLE_NAME", "AccountsTable")
    monkeypatch.setenv("KINDE_ISSUER_URL", "https://example.kinde.com")
    from planguard.settings import get_settings

    get_settings.cache_clear()
    handler.reporter.cache_clear()
    handler.resender.cache_clear()
    monkeypatch.setattr(handler, "get_management_api", lambda: kinde)
    yield kinde
    handler.reporter.cache_clear()
    handler.resender.cache_clear()
    get_settings.cache_clear()


def emitted_metrics(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("{") and "_aws" in line:
            doc = json.loads(line)
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[metric["Name"]] = sum(doc[metric["Name"]])
    return found


def test_the_sample_event_reports_the_newest_count(
    with_kinde: FakeManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = handler.lambda_handler(load_event("usage_report_stream.json"), CONTEXT())
    assert answer == {"batchItemFailures": []}
    assert with_kinde.usage == [("agr_cus_alice", "tracked_accounts", 3)]
    assert emitted_metrics(capsys.readouterr().out) == {"UsageReportsSent": 1}


def test_the_handler_answers_failures_and_counts_skips(
    with_kinde: FakeManagementApi, capsys: pytest.CaptureFixture[str]
) -> None:
    with_kinde.down_for.add("cus_bob")
    with_kinde.agreements_of["cus_acme"] = []
    bob = count_changes(BOB, [1])
    event = {"Records": [*count_changes(ALICE, [1]), *bob, *count_changes(ORG, [1])]}
    answer = handler.lambda_handler(event, CONTEXT())
    assert answer == {"batchItemFailures": [{"itemIdentifier": bob[0]["dynamodb"]["SequenceNumber"]}]}
    assert emitted_metrics(capsys.readouterr().out) == {
        "UsageReportsSent": 1,
        "UsageReportsSkipped": 1,
        "UsageReportsFailed": 1,
    }


def test_without_an_m2m_client_the_batch_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    handler.reporter.cache_clear()
    monkeypatch.setattr(handler, "get_management_api", lambda: None)
    with pytest.raises(Exception, match="KINDE_M2M_CLIENT_ID"):
        handler.lambda_handler(load_event("usage_report_stream.json"), CONTEXT())
    handler.reporter.cache_clear()


def test_an_unknown_event_is_an_error(with_kinde: FakeManagementApi) -> None:
    with pytest.raises(ValueError, match="report-usage"):
        handler.lambda_handler({"hello": 1}, CONTEXT())


# -- re-sending every count -------------------------------------------------------------------------------
@pytest.fixture
def table(aws: None) -> Any:
    return boto3.client("dynamodb")


def put_counters(db: Any, counts: dict[str, int]) -> None:
    for pk, count in counts.items():
        db.put_item(TableName="AccountsTable", Item=counter_image(pk, count))
        db.put_item(
            TableName="AccountsTable",
            Item={"PK": {"S": pk}, "SK": {"S": "ACCOUNT#01J00000000000000000000000"}, "name": {"S": "x"}},
        )


def test_every_count_is_sent_again_paged_and_paced(
    table: Any, kinde: FakeManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usage_report_fn import resend

    monkeypatch.setattr(resend, "PAGE_SIZE", 3)  # several pages
    customers = {f"USER#kp_{n:032d}": n for n in range(7)}
    for n in range(7):
        kinde.customer(f"kp_{n:032d}", f"cus_{n}")
    put_counters(table, {**customers, ALICE: 2, ORG: 9})
    pauses: list[float] = []
    result = Resender(
        table, "AccountsTable", UsageReporter(kinde, "tracked_accounts"), sleep=pauses.append
    ).run(None)
    assert result.answer() == {"sent": 9, "skipped": 0, "failed": 0, "complete": True, "startAfter": None}
    assert len(pauses) == 9
    assert kinde.last_value("agr_cus_acme") == 9 and kinde.last_value("agr_cus_alice") == 2
    assert {kinde.last_value(f"agr_cus_{n}") for n in range(7)} == set(range(7))


def test_a_resend_stops_when_kinde_keeps_failing_and_resumes(table: Any, kinde: FakeManagementApi) -> None:
    customers = {f"USER#kp_{n:032d}": n + 1 for n in range(6)}
    for n in range(6):
        kinde.customer(f"kp_{n:032d}", f"cus_{n}")
    put_counters(table, customers)
    resender = Resender(
        table, "AccountsTable", UsageReporter(kinde, "tracked_accounts"), sleep=lambda _: None
    )
    kinde.faults[:] = [EntitlementUnavailable(detail="down")] * MAX_FAILURES_IN_A_ROW
    first = resender.run(None)
    assert first.failed == MAX_FAILURES_IN_A_ROW and first.sent == 0 and not first.complete
    assert first.resume_from is None  # nothing done: from the start again
    second = resender.run(None, first.resume_from)
    assert second.answer()["complete"] and second.sent == 6
    assert {kinde.last_value(f"agr_cus_{n}") for n in range(6)} == set(range(1, 7))


def test_a_resend_resumes_after_the_last_customer_done(table: Any, kinde: FakeManagementApi) -> None:
    customers = {f"USER#kp_{n:032d}": n + 1 for n in range(6)}
    for n in range(6):
        kinde.customer(f"kp_{n:032d}", f"cus_{n}")
    put_counters(table, customers)
    resender = Resender(
        table, "AccountsTable", UsageReporter(kinde, "tracked_accounts"), sleep=lambda _: None
    )
    # Two customers go through (three calls each, cold), then Kinde fails.
    kinde.faults[:] = [None] * 6 + [EntitlementUnavailable(detail="down")] * MAX_FAILURES_IN_A_ROW
    first = resender.run(None)
    assert (first.sent, first.failed, first.complete) == (2, MAX_FAILURES_IN_A_ROW, False)
    second = resender.run(None, first.resume_from)
    assert (second.sent, second.complete) == (4, True)
    assert {kinde.last_value(f"agr_cus_{n}") for n in range(6)} == set(range(1, 7))


def test_a_resend_stops_before_the_invocation_ends(table: Any, kinde: FakeManagementApi) -> None:
    put_counters(table, {ALICE: 1, BOB: 2})
    resender = Resender(table, "AccountsTable", UsageReporter(kinde, "tracked_accounts"), clock=lambda: 0.0)
    result = resender.run(deadline=5.0)
    assert result.answer() == {"sent": 0, "skipped": 0, "failed": 0, "complete": False, "startAfter": None}
    assert kinde.calls == []


def test_a_count_that_changes_during_its_resend_is_sent_again(table: Any, kinde: FakeManagementApi) -> None:
    put_counters(table, {ALICE: 2})
    real = kinde.meter_usage

    def meanwhile_an_add(agreement_id: str, feature_code: str, value: int, deadline: float | None) -> None:
        real(agreement_id, feature_code, value, deadline)
        if value == 2:  # the stream's report of 3 already went out; ours of 2 landed after it
            table.put_item(TableName="AccountsTable", Item=counter_image(ALICE, 3, 2))

    kinde.meter_usage = meanwhile_an_add  # type: ignore[method-assign]
    Resender(table, "AccountsTable", UsageReporter(kinde, "tracked_accounts"), sleep=lambda _: None).run(None)
    assert kinde.last_value("agr_cus_alice") == 3


def test_the_resend_event_runs_the_resend(
    with_kinde: FakeManagementApi, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usage_report_fn import resend

    monkeypatch.setattr(resend, "PACE_SECONDS", 0.0)
    put_counters(table, {ALICE: 4})
    answer = handler.lambda_handler(
        load_event("usage_report_resend.json"), LocalContext("UsageReportFunction", 900)
    )
    assert answer == {"sent": 1, "skipped": 0, "failed": 0, "complete": True, "startAfter": None}
    assert with_kinde.last_value("agr_cus_alice") == 4


@pytest.mark.parametrize(
    ("pk", "owner"),
    [
        (f"USER#{USER}", ("user", USER)),
        ("ORG#org_acme01", ("organization", "org_acme01")),
        ("USER#", None),
        ("ORG#", None),
        ("ACCOUNT#x", None),
        ("user#kp_x", None),
    ],
)
def test_whose_partition_a_key_is(pk: str, owner: tuple[str, str] | None) -> None:
    from planguard.keys import customer_of

    assert customer_of(pk) == owner
