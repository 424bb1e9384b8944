"""The accounts table's stream, locally: what Lambda's event source mapping does for the usage
reports (``make dev REPORT_USAGE=1``), on moto's DynamoDB Streams.

Polls the stream, turns moto's records into the event Lambda sends (``eventSourceARN`` and an
epoch-seconds creation time, which moto's records lack), keeps the records the template's filter
pattern lets through, and hands each batch to the function; records named in
``batchItemFailures`` (and everything after the first of them) come again, at most the mapping's
``MaximumRetryAttempts`` times. moto's traps, handled here:
- a cancelled transaction (every refused add) replaces the table with a copy: an iterator from
  ``NextShardIterator`` keeps reading the old one and silently misses every later record, so each
  poll asks for a fresh iterator after the last sequence number seen;
- the stream is switched on only after the saved data is restored (restoring emits an INSERT per
  item), so it holds nothing but changes made while ``make dev`` runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
from moto.events.models import EventPattern

from local.dynamodb import LOCAL_AWS_ENV
from local.template import Template

STREAM_FUNCTION = "UsageReportFunction"
RESEND_ACTION = "report-usage"  # the event that re-sends every count (the schedule's Input)
POLL_SECONDS = 0.3
IDLE_POLL_SECONDS = 1.0
RETRY_PAUSE_SECONDS = 1.0

# One batch: the function's answer, ``{"batchItemFailures": [...]}``; raises when it failed.
Deliver = Callable[[list[dict[str, Any]]], dict[str, Any]]


class MappingSettings:
    """The template's event source mapping of the stream: its filter, batch size and retries."""

    def __init__(self, template: Template) -> None:
        mappings = [
            res["Properties"]
            for res in template.of_type("AWS::Lambda::EventSourceMapping").values()
            if res["Properties"]["FunctionName"] == {"Ref": STREAM_FUNCTION}
        ]
        if len(mappings) != 1:
            raise ValueError(f"template.yaml must map the accounts table's stream to {STREAM_FUNCTION} once")
        props = mappings[0]
        self.table = str(props["EventSourceArn"]["Fn::GetAtt"][0])  # locally, tables go by logical id
        self.patterns = [EventPattern.load(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
        self.batch_size = int(props.get("BatchSize", 100))
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))

    def lets_through(self, record: dict[str, Any]) -> bool:
        """Lambda's filtering: a record passes when any of the filters matches it."""
        event: Any = record  # moto types it as an EventBridge event; the matching is the same
        return any(pattern.matches_event(event) for pattern in self.patterns)


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A moto stream record as Lambda's mapping delivers it."""
    body = dict(record["dynamodb"])
    created = body.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        body["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    converted = {**record, "eventVersion": "1.1", "dynamodb": body, "eventSourceARN": stream_arn}
    # As JSON travels: Lambda's event is a JSON document (numbers, no datetimes, no bytes).
    decoded: dict[str, Any] = json.loads(json.dumps(converted, default=str))
    return decoded


def enable_stream(client: Any, table: str) -> str:
    """Switch the table's stream on (new and old images); its ARN."""
    description = client.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )["TableDescription"]
    return str(description["LatestStreamArn"])


class StreamPoller:
    """Reads the stream in order and delivers the filtered batches, on a thread of its own."""

    def __init__(
        self,
        streams: Any,  # a boto3 dynamodbstreams client
        stream_arn: str,
        settings: MappingSettings,
        deliver: Deliver,
        log: Callable[[str], None],
    ) -> None:
        self._streams, self._arn, self._settings = streams, stream_arn, settings
        self._deliver, self._log = deliver, log
        self._after: str | None = None  # the last sequence number dealt with
        self._shard: str | None = None
        self._retries = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="usage-stream", daemon=True)
        self.batches = 0

    def start(self) -> StreamPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll()
            except Exception as exc:  # DynamoDB stopping, a moto hiccup: keep polling
                if self._stopping.is_set():
                    return
                self._log(f"usage stream: poll failed ({type(exc).__name__}: {exc}); polling again")
                busy = False
            self._stopping.wait(POLL_SECONDS if busy else IDLE_POLL_SECONDS)

    def _iterator(self) -> str:
        if self._shard is None:
            description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
            self._shard = str(description["Shards"][0]["ShardId"])
        shard = self._shard
        where: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._after}
            if self._after is not None
            else {"ShardIteratorType": "TRIM_HORIZON"}  # the stream began after the restore
        )
        return str(
            self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard, **where)["ShardIterator"]
        )

    def poll(self) -> bool:
        """One read of the stream and, when records passed the filter, one delivery. True when the
        stream had records."""
        records = self._streams.get_records(ShardIterator=self._iterator(), Limit=self._settings.batch_size)[
            "Records"
        ]
        if not records:
            return False
        converted = [lambda_record(record, self._arn) for record in records]
        batch = [record for record in converted if self._settings.lets_through(record)]
        retry_from = self._deliver_batch(batch) if batch else None
        if retry_from is None:
            self._after, self._retries = str(records[-1]["dynamodb"]["SequenceNumber"]), 0
            return True
        self._retries += 1
        limit = self._settings.max_retries
        if 0 <= limit < self._retries:
            self._log(
                f"usage stream: the batch from {retry_from} failed {self._retries} times: "
                "dropped (in AWS: its metadata goes to the on-failure queue)"
            )
            self._after, self._retries = str(records[-1]["dynamodb"]["SequenceNumber"]), 0
            return True
        sequence_numbers = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
        at = sequence_numbers.index(retry_from) if retry_from in sequence_numbers else 0
        self._after = sequence_numbers[at - 1] if at > 0 else self._after
        self._stopping.wait(RETRY_PAUSE_SECONDS)
        return True

    def _deliver_batch(self, batch: list[dict[str, Any]]) -> str | None:
        """The sequence number to deliver again from, or None when the batch went through."""
        self.batches += 1
        try:
            answer = self._deliver(batch)
        except Exception as exc:
            self._log(f"usage stream: {STREAM_FUNCTION} failed on {len(batch)} record(s): {exc}; retrying")
            return str(batch[0]["dynamodb"]["SequenceNumber"])
        failures = [str(f.get("itemIdentifier")) for f in answer.get("batchItemFailures") or []]
        if not failures:
            return None
        known = {str(record["dynamodb"]["SequenceNumber"]) for record in batch}
        if not set(failures) <= known:  # as Lambda: an identifier it cannot place fails the batch
            self._log(f"usage stream: {STREAM_FUNCTION} named records not in the batch; retrying it whole")
            return str(batch[0]["dynamodb"]["SequenceNumber"])
        first = min(failures, key=int)
        self._log(f"usage stream: {len(failures)} customer(s) failed; delivering again from {first}")
        return first


def stream_client(endpoint_url: str) -> Any:
    env = LOCAL_AWS_ENV
    session = boto3.Session(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"]
    )
    return session.client("dynamodbstreams", endpoint_url=endpoint_url)
