"""DynamoDB plumbing: the client, the one retry loop, and what a failed call means (retry or 503).

Stores build their requests and read their items; how a call is made, retried and turned into
our errors is decided here once, for every store.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from planguard.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


logger = logging.getLogger(__name__)

CONFLICT_RETRIES = 6
_TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def s(value: str) -> dict[str, str]:
    """A string attribute value."""
    return {"S": value}


class TryAgain(Exception):
    """This attempt lost a race (or was throttled): read again and retry, within the budget."""


def cancellation_codes(error: ClientError) -> list[str]:
    """The per-item reasons of a cancelled transaction, in the order of its items."""
    reasons = error.response.get("CancellationReasons") or []
    return [str(reason.get("Code") or "None") for reason in reasons]


def is_transient(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code", "") in _TRANSIENT


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter


def transient_or_fault(error: ClientError, codes: list[str]) -> NoReturn:
    """Contention and throttling are worth another attempt; anything else is a storage fault."""
    if "TransactionConflict" in codes or "ThrottlingError" in codes or is_transient(error):
        logger.info("write contended or throttled (%s)", codes or error.response.get("Error"))
        raise TryAgain() from None
    logger.error("DynamoDB error: %s %s", error.response.get("Error"), codes)
    raise ServiceUnavailable() from None


def call(method: Any, **kwargs: Any) -> dict[str, Any]:
    """A single-item call; throttling past botocore's retries becomes a 503, not a 500.

    ``TransactionConflictException`` (the item is in another request's transaction right now) is
    contention, not a fault, and botocore does not retry it: retried here, bounded and jittered.
    A failed condition is the caller's to read, so ``ConditionalCheckFailedException`` passes through.
    """
    for attempt in range(CONFLICT_RETRIES):
        try:
            result: dict[str, Any] = method(**kwargs)
            return result
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                raise
            if code == "TransactionConflictException" and attempt < CONFLICT_RETRIES - 1:
                logger.info("single-item call conflicted with a transaction; retrying")
                _backoff(attempt)
                continue
            logger.error("DynamoDB error: %s", error.response.get("Error"))
            raise ServiceUnavailable() from None
        except BotoCoreError as error:
            logger.error("DynamoDB unreachable: %s", error)
            raise ServiceUnavailable() from None
    raise AssertionError("unreachable")  # pragma: no cover


def with_retries[T](attempt: Callable[[], T]) -> T:
    """The one retry loop for writes: bounded, jittered; past the budget a 503 that wrote nothing."""
    for number in range(CONFLICT_RETRIES):
        try:
            return attempt()
        except TryAgain:
            _backoff(number)
    raise ServiceUnavailable()


def transact(client: DynamoDBClient, items: list[dict[str, Any]]) -> None:
    """One ``TransactWriteItems``; a cancellation is raised for the caller to read its reasons.

    A fresh token per logical attempt: botocore's own retries of a lost response reuse it, so
    DynamoDB applies the transaction at most once.
    """
    try:
        client.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)  # type: ignore[arg-type]
    except BotoCoreError as error:
        logger.error("DynamoDB unreachable: %s", error)
        raise ServiceUnavailable() from None


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


def dynamodb_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """A client with botocore's standard retries (throttling) and short timeouts.

    A bare botocore client: boto3 adds nothing a low-level client uses, and its import is cold
    start every container pays (the usage count sits on Kinde's plan-change path).
    """
    # Worst case (1 + 2 s) x 3 attempts stays inside the functions' 15 s timeout, so a stuck
    # DynamoDB ends in our 503 body, not in API Gateway's bare 500.
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=1,
        read_timeout=2,
        tcp_keepalive=True,
    )
    client = _botocore_session().create_client("dynamodb", endpoint_url=endpoint_url, config=config)
    return cast("DynamoDBClient", client)
