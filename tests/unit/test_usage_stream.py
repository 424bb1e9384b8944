"""The table's stream as the usage reports see it: the template's filter pattern on real records of
real writes (counter and account items), and the local poller that stands in for Lambda's event
source mapping (moto's traps included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from planguard.accounts_store import AccountRepository
from planguard.keys import USAGE_SK
from planguard.usage_counter import CounterConditionFailed
from usage_report_fn.changes import counter_change

from local.template import load_template
from local.usage_stream import MappingSettings, StreamPoller, enable_stream, lambda_record

USER = "kp_stream"
TABLE = "AccountsTable"


@pytest.fixture
def stream(aws: None) -> Iterator[tuple[AccountRepository, Any, str]]:
    client = boto3.client("dynamodb")
    arn = enable_stream(client, TABLE)
    # Its regional endpoint: botocore sends a call naming a stream ARN to an account-based host
    # (<account>.streams-ddb...), which moto's in-process mock does not answer.
    streams = boto3.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    yield AccountRepository(client, TABLE), streams, arn


def every_record(streams: Any, arn: str) -> list[dict[str, Any]]:
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [lambda_record(record, arn) for record in records]


def make_changes(repo: AccountRepository) -> None:
    """What the API does to one user's items: adds, a refused add, a rename, a hold, deletes."""
    first = repo.create(USER, "Savings", "GB29 NWBK 6016 1331 9268 19", limit=2)
    repo.create(USER, "Current", "DE89 3704 0044 0532 0130 00", limit=2)
    with pytest.raises(CounterConditionFailed):
        repo.create(USER, "Refused", "FR76 3000 6000 0112 3456 7890 189", limit=2)
    repo.update(USER, first.id, "Old savings", None)
    repo.usage.place_hold(USER, 3, "free", 300)
    repo.delete(USER, first.id)
    repo.delete_user(USER)


def test_the_filter_lets_through_counter_records_only(stream: tuple[AccountRepository, Any, str]) -> None:
    repo, streams, arn = stream
    make_changes(repo)
    records = every_record(streams, arn)
    settings = MappingSettings(load_template())
    kinds = {record["dynamodb"]["Keys"]["SK"]["S"].split("#")[0] for record in records}
    assert kinds == {"ACCOUNT", "ACCOUNTNUMBER", "USAGE"}  # every kind of item is in the stream
    for record in records:
        is_counter = record["dynamodb"]["Keys"]["SK"]["S"] == USAGE_SK
        assert settings.lets_through(record) is is_counter, record["dynamodb"]["Keys"]
    counters = [r for r in records if settings.lets_through(r)]
    # Through the filter, the counter's story: 1, 2 (the refused add left nothing), the hold
    # (no change), 1, then the user deleted. (moto writes a new item in two INSERTs, the first
    # without attributes: no change either.)
    changes = [change for r in counters if (change := counter_change(r)) is not None]
    assert [c.after for c in changes if c.changed] == [1, 2, 1, 0]
    assert changes[-1].removed and [r["eventName"] for r in counters].count("REMOVE") == 1


def test_a_record_is_what_lambda_delivers(stream: tuple[AccountRepository, Any, str]) -> None:
    repo, streams, arn = stream
    repo.create(USER, "Savings", "001", limit=None)
    record = every_record(streams, arn)[-1]
    assert record["eventSourceARN"] == arn and record["eventSource"] == "aws:dynamodb"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


class Collect:
    def __init__(self, answers: list[dict[str, Any]] | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.answers = answers or []

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(batch)
        return self.answers.pop(0) if self.answers else {"batchItemFailures": []}

    def counts(self) -> list[int]:
        """The counts the batches changed to, in order."""
        changes = [counter_change(record) for batch in self.batches for record in batch]
        return [change.after for change in changes if change is not None and change.changed]


def poller(stream: tuple[AccountRepository, Any, str], deliver: Collect) -> StreamPoller:
    _, streams, arn = stream
    return StreamPoller(streams, arn, MappingSettings(load_template()), deliver, log=lambda _: None)


def drain(p: StreamPoller) -> None:
    while p.poll():
        pass


def test_the_poller_sees_every_change_after_a_refused_add(stream: tuple[AccountRepository, Any, str]) -> None:
    repo, streams, arn = stream
    collect = Collect()
    p = poller(stream, collect)
    repo.create(USER, "One", "001", limit=1)
    drain(p)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    held = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    with pytest.raises(CounterConditionFailed):
        repo.create(USER, "Two", "002", limit=1)  # cancelled: moto puts a copy of the table in place
    second = repo.create(USER, "Two", "002", limit=2)
    repo.delete(USER, second.id)
    drain(p)
    assert collect.counts() == [1, 2, 1]
    # The trap the poller avoids: an iterator taken before the refusal reads the table moto put
    # aside, which holds the refused add's writes and none of the counter's later changes.
    stale = streams.get_records(ShardIterator=held)["Records"]
    assert stale and not [r for r in stale if r["dynamodb"]["Keys"]["SK"]["S"] == USAGE_SK]


def test_failed_records_come_again_from_the_first_failure(stream: tuple[AccountRepository, Any, str]) -> None:
    repo, _, _ = stream
    repo.create(USER, "One", "001", limit=None)
    repo.create("kp_other", "One", "001", limit=None)
    collect = Collect()
    p = poller(stream, collect)
    drain(p)
    (first,) = collect.batches
    others = [i for i, r in enumerate(first) if r["dynamodb"]["Keys"]["PK"]["S"] == "USER#kp_other"]
    assert others and others[0] > 0
    # The second customer failed: only its records (and what follows) come again.
    collect.batches.clear()
    failed = first[others[0]]["dynamodb"]["SequenceNumber"]
    collect.answers = [{"batchItemFailures": [{"itemIdentifier": failed}]}]
    p2 = poller(stream, collect)
    p2.poll()
    p2.poll()
    assert [len(batch) for batch in collect.batches] == [len(first), len(first) - others[0]]
    assert collect.batches[1] == first[others[0] :]
    assert p2.poll() is False


def test_retries_are_bounded_as_the_mapping_says(
    stream: tuple[AccountRepository, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from local import usage_stream

    monkeypatch.setattr(usage_stream, "RETRY_PAUSE_SECONDS", 0.0)
    repo, _, _ = stream
    repo.create(USER, "One", "001", limit=None)

    calls: list[int] = []

    def failing(batch: list[dict[str, Any]]) -> dict[str, Any]:
        calls.append(len(batch))
        raise RuntimeError("Kinde is down")

    _, streams, arn = stream
    p = StreamPoller(streams, arn, MappingSettings(load_template()), failing, log=lambda _: None)
    retries = MappingSettings(load_template()).max_retries
    for _ in range(retries + 3):
        p.poll()
    assert len(calls) == retries + 1  # the first delivery and its retries, then it moves on
    assert p.poll() is False


@pytest.mark.parametrize(
    ("raw", "on"), [("", False), ("0", False), ("false", False), ("1", True), ("true", True), ("TRUE", True)]
)
def test_report_usage_is_a_switch(monkeypatch: pytest.MonkeyPatch, raw: str, on: bool) -> None:
    from local.config import LocalConfig

    monkeypatch.setenv("REPORT_USAGE", raw)
    config = LocalConfig.from_env()
    assert config.report_usage is on
    assert config.template_parameters == {"ReportUsageToKinde": "true" if on else "false"}
    assert load_template().deployed("UsageReportFunction", config.template_parameters) is on


def test_report_usage_refuses_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    from local.config import LocalConfig, StartupError

    monkeypatch.setenv("REPORT_USAGE", "yes please")
    with pytest.raises(StartupError, match="REPORT_USAGE must be true, false, 1 or 0"):
        LocalConfig.from_env()


@pytest.mark.parametrize(
    ("event", "function"),
    [
        ("usage_report_stream.json", "UsageReportFunction"),
        ("usage_report_resend.json", "UsageReportFunction"),
    ],
)
def test_make_invoke_knows_the_usage_events(event: str, function: str) -> None:
    from local.commands.invoke import function_for_event
    from tests.support import load_event

    assert function_for_event(load_template(), load_event(event)) == function
