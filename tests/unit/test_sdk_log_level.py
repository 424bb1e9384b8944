"""The AWS SDK never logs below WARNING in a function, whatever level the root logger is at.

botocore's DEBUG lines carry request parameters, response bodies and signed headers; Lambda's
log-level control (or a developer) may put the root logger at DEBUG.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def sdk_levels() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("botocore", "boto3", "")]
    saved = [(logger, logger.level) for logger in loggers]
    yield
    for logger, level in saved:
        logger.setLevel(level)


@pytest.mark.parametrize(
    ("configured", "floor"),
    [
        ("DEBUG", logging.WARNING),
        ("INFO", logging.WARNING),
        ("WARNING", logging.WARNING),
        ("ERROR", logging.ERROR),
    ],
)
def test_the_sdk_is_held_at_warning_or_the_configured_level(
    sdk_levels: None, monkeypatch: pytest.MonkeyPatch, configured: str, floor: int
) -> None:
    from planguard.json_logs import SDK_LOGGERS, hold_sdk_logs_at_warning

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", configured)
    logging.getLogger().setLevel(logging.DEBUG)
    hold_sdk_logs_at_warning()
    for name in (*SDK_LOGGERS, "botocore.endpoint", "botocore.parsers", "botocore.auth"):
        logger = logging.getLogger(name)
        assert logger.getEffectiveLevel() == floor, name
        assert not logger.isEnabledFor(logging.DEBUG)


def test_importing_the_layer_holds_the_sdk(sdk_levels: None) -> None:
    import planguard

    logging.getLogger("botocore").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.DEBUG)
    assert logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)  # the check can fail
    importlib.reload(planguard)  # what a cold start's first import of the layer runs
    assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
