"""Rotating the usage key without a window: several keys, one per line, all accepted.

The SSM parameter is moto's; the key cache's clock is moved instead of waiting out five minutes.
Each step is the rotation procedure of docs/OPERATIONS.md; the workflow's calls go through the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from local.template import load_template
from tests.support import USER, HttpResult, clear_caches, hold_event, invoke_http, load_event

PARAM = "/plan-guard/usage-api-key"
OLD, NEW = "old-key-7c1d9a52e0b4", "new-key-3f8e61b2d7a9"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, aws: None) -> Iterator[tuple[Any, Clock]]:
    """The functions' environment from the template, the key in an SSM SecureString (as deployed),
    and the key cache on a clock the test moves."""
    from usage_count_api import usage_key

    template = load_template()
    names = {name: name for name in template.table_definitions()}
    for function in template.functions():
        parameters = {"KindeIssuerUrl": "https://example.kinde.com"}
        for key, value in template.resolve_environment(function, parameters, names).items():
            if not key.startswith("POWERTOOLS_"):
                monkeypatch.setenv(key, value)
    monkeypatch.delenv("USAGE_API_KEY", raising=False)
    monkeypatch.setenv("USAGE_API_KEY_PARAM", PARAM)
    clock = Clock()
    monkeypatch.setattr(usage_key, "clock", clock)
    clear_caches()
    usage_key.forget()
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PARAM, Value=OLD, Type="SecureString")
    yield ssm, clock
    usage_key.forget()
    clear_caches()


def count_with(key: str) -> HttpResult:
    from usage_count_api.handler import lambda_handler

    event = load_event("usage_count_no_key.json")
    event["headers"] = {"x-api-key": key}
    event["pathParameters"] = {"kindeId": USER}
    return invoke_http(lambda_handler, event, "UsageCountFunction")


def hold_with(key: str) -> HttpResult:
    from usage_count_api.handler import lambda_handler

    return invoke_http(lambda_handler, hold_event(USER, {"limit": "3", "plan": "free"}, key=key))


def accepted(call: Callable[[str], HttpResult], key: str) -> bool:
    result = call(key)
    assert result.status in (200, 401), result.body
    return result.status == 200


def put(ssm: Any, value: str) -> None:
    ssm.put_parameter(Name=PARAM, Value=value, Type="SecureString", Overwrite=True)


@pytest.mark.parametrize("call", [count_with, hold_with], ids=["count", "hold"])
def test_rotation_old_and_new_both_work_then_the_old_is_refused(
    deployed: tuple[Any, Clock], call: Callable[[str], HttpResult]
) -> None:
    from usage_count_api.usage_key import KEY_MAX_AGE_SECONDS

    ssm, clock = deployed
    assert KEY_MAX_AGE_SECONDS <= 300
    assert accepted(call, OLD) and not accepted(call, NEW)

    # 1. The new key goes on the first line; the old one stays below it.
    put(ssm, f"{NEW}\n{OLD}\n")
    assert accepted(call, OLD)  # nothing breaks while containers still hold the old list
    clock.now += KEY_MAX_AGE_SECONDS  # 2. wait out the cache
    # 3. Kinde switches to the new key: both work, so no call fails whichever one Kinde sends.
    assert accepted(call, NEW) and accepted(call, OLD)

    # 4. The old line goes; once the cache has expired the old key is refused.
    put(ssm, f"{NEW}\n")
    assert accepted(call, OLD)  # cached: the list is re-read at most every KEY_MAX_AGE_SECONDS
    clock.now += KEY_MAX_AGE_SECONDS
    assert accepted(call, NEW) and not accepted(call, OLD)


def test_the_parameter_is_read_once_per_cache_period(
    deployed: tuple[Any, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    from usage_count_api import usage_key

    _, clock = deployed
    reads: list[str] = []
    real_fetch = usage_key._fetch

    def counted(name: str) -> tuple[tuple[str, ...], float]:
        reads.append(name)
        return real_fetch(name)

    monkeypatch.setattr(usage_key, "_fetch", counted)
    for _ in range(3):
        assert accepted(count_with, OLD)
    clock.now += usage_key.KEY_MAX_AGE_SECONDS - 1
    assert accepted(count_with, OLD)
    assert reads == [PARAM]
    clock.now += 1
    assert accepted(count_with, OLD)
    assert reads == [PARAM, PARAM]


def test_usage_api_key_takes_the_same_form(
    deployed: tuple[Any, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack's ``USAGE_API_KEY`` (and ``sam local --env-vars``): one key per line too."""
    monkeypatch.setenv("USAGE_API_KEY", f"  {NEW}  \n\n{OLD}\r\n")
    clear_caches()
    assert accepted(count_with, NEW) and accepted(count_with, OLD)
    assert not accepted(count_with, f"{NEW}\n{OLD}") and not accepted(count_with, "")
    assert not accepted(count_with, "old-key")  # a prefix of a key is not the key


def test_parse_keys_keeps_the_current_key_first() -> None:
    from usage_count_api.usage_key import parse_keys

    assert parse_keys(f"{NEW}\n{OLD}") == (NEW, OLD)
    assert parse_keys(f"\n  {NEW}\t\r\n   \n{OLD}\n") == (NEW, OLD)
    assert parse_keys("") == () and parse_keys(" \n \n") == ()


def test_every_key_is_compared_with_no_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever key matches (or none), every presented value meets every key: the time taken
    does not tell which line of the parameter a guess matched."""
    from usage_count_api import access

    compared: list[tuple[str, str]] = []
    real = access._same_secret

    def spy(presented: str, expected: str) -> bool:
        compared.append((presented, expected))
        return real(presented, expected)

    monkeypatch.setattr(access, "_same_secret", spy)
    keys = ("k-current", "k-previous", "k-older")
    for headers, method in (
        ({"x-api-key": "k-current", "authorization": "Bearer nope"}, "api_key"),
        ({"x-api-key": "nope", "authorization": "Bearer k-older"}, "api_key"),
        ({"x-api-key": "nope", "authorization": "Bearer nope either"}, None),
    ):
        compared.clear()
        if method is None:
            with pytest.raises(access.Denied):
                access.authorize_key(headers, lambda: keys)
        else:
            assert access.authorize_key(headers, lambda: keys) == method
        assert len(compared) == 6, compared
        assert {expected for _, expected in compared} == set(keys)


def test_no_key_configured_still_refuses_everything(
    deployed: tuple[Any, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    ssm, clock = deployed
    put(ssm, " \n\n ")
    clock.now += 300
    assert not accepted(count_with, OLD) and not accepted(count_with, " ")
