"""Adds made once per (user, Idempotency-Key): Powertools' records in the idempotency table.

Records outlive deploys, so what names and checks a record never changes: the key prefix, the key
(``[user, key]``, so two users' keys never collide) and the hashed payload (``body``, i.e.
``{name, accountNumber}``, so a reused key with another body is refused). A change to any of them
would make a client's retry after a deploy create a second account.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools import Logger
from planguard.dynamodb import dynamodb_client
from planguard.errors import IdempotencyInProgress, IdempotencyKeyReused, ServiceUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

TTL_SECONDS = 24 * 3600
Guarded = Callable[..., dict[str, Any]]


def key_prefix() -> str:
    """Powertools names records after the decorated function's module and qualified name. The
    first records were written by a function nested in the handler; this prefix keeps their keys
    valid wherever the decorated function lives now (a replay after a deploy still matches)."""
    function_name = os.getenv("AWS_LAMBDA_FUNCTION_NAME", "test-func")
    return f"{function_name}.accounts_api.handler._idempotent_create.<locals>.create"


def request_data(user_id: str, key: str, name: str, account_number: str) -> dict[str, Any]:
    """What Powertools hashes: the record's key from ``[user, key]``, the payload check from ``body``."""
    return {"user": user_id, "key": key, "body": {"name": name, "accountNumber": account_number}}


@dataclass(frozen=True)
class _TimeLeft:
    """The one thing Powertools reads of a Lambda context, from the request's deadline: a record
    left in progress by a request that died expires with its invocation, not after the TTL."""

    deadline: float  # time.monotonic() when the invocation ends

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class IdempotencyTable:
    """Runs one function at most once per record. The table's client and Powertools' idempotency
    (which imports boto3) are built on the first request with a key and kept: a request without
    one never pays for them, and nothing is bound at import time."""

    def __init__(self, table_name: str, endpoint_url: str | None) -> None:
        self._table_name = table_name
        self._endpoint_url = endpoint_url
        self._config: IdempotencyConfig | None = None
        self._guarded: Guarded | None = None

    def run_once(
        self, function: Guarded, *, request: dict[str, Any], deadline: float | None, **kwargs: Any
    ) -> dict[str, Any]:
        """``function(request=..., deadline=..., **kwargs)``, or the answer its first run stored.

        ``function`` is the same on every call (the one it guards is wrapped on the first). A key
        reused with another body is 422, one still running is 409, the table failing is 503 with
        nothing created.
        """
        from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        guarded = self._guard(function)
        if deadline is not None and self._config is not None:
            self._config.register_lambda_context(cast("LambdaContext", _TimeLeft(deadline)))
        try:
            return guarded(request=request, deadline=deadline, **kwargs)
        except IdempotencyValidationError:
            raise IdempotencyKeyReused() from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyInProgress() from None
        except IdempotencyPersistenceLayerError:  # its table throttled or unreachable: nothing created
            logger.exception("idempotency store unavailable")
            raise ServiceUnavailable() from None

    def _guard(self, function: Guarded) -> Guarded:
        if self._guarded is None:
            from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            self._config = IdempotencyConfig(
                event_key_jmespath="[user, key]",
                payload_validation_jmespath="body",
                expires_after_seconds=TTL_SECONDS,
            )
            persistence = DynamoDBPersistenceLayer(
                table_name=self._table_name, boto3_client=dynamodb_client(self._endpoint_url)
            )
            self._guarded = idempotent_function(
                data_keyword_argument="request",
                config=self._config,
                persistence_store=persistence,
                key_prefix=key_prefix(),
            )(function)
        return self._guarded
