"""The downgrade rule (DESIGN.md §5) beyond the shared table: order, fail-closed reads, limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from planguard.errors import ServiceUnavailable
from planguard.plan_rule import (
    DENY_MESSAGE,
    PlanCheckError,
    PlanDecision,
    UsageUnavailable,
    check_plan_change,
    deny_reasons,
)
from planguard.settings import (
    DEFAULT_PLAN_LIMITS,
    ConfigurationError,
    PlanLimits,
    Settings,
    parse_plan_limits,
)

LIMITS: PlanLimits = {
    "free": {"tracked_accounts": 3},
    "pro": {"tracked_accounts": 5},
    "max": {"tracked_accounts": None},
}


def never_read(user_id: str) -> int:
    raise AssertionError(f"usage of {user_id} must not be read")


def check(
    current: str | None,
    requested: str | None,
    read: Callable[[str], Any] = never_read,
    user: str | None = "kp_a",
) -> PlanDecision:
    return check_plan_change(
        user_id=user, current_plan=current, requested_plan=requested, plan_limits=LIMITS, read_usage=read
    )


def test_seed_messages_word_for_word() -> None:
    assert DENY_MESSAGE == "You need to reduce your usage before moving to this plan:"
    assert deny_reasons(5, 3) == (
        "Your current usage is 5, but the new plan only allows up to 3.",
        "Please reduce your usage to 3 or fewer to continue.",
    )


def test_errors_come_in_the_seed_order() -> None:
    # No user beats everything else, then no requested plan, then an unknown one.
    with pytest.raises(PlanCheckError, match="Missing user id"):
        check("pro", "nope", user=None)
    with pytest.raises(PlanCheckError, match="Missing user id"):
        check("pro", "free", user="")
    with pytest.raises(PlanCheckError, match="Missing requested plan code"):
        check("pro", "")
    with pytest.raises(PlanCheckError, match="Unknown requested plan: nope"):
        check("nope-current", "nope")


@pytest.mark.parametrize(
    ("current", "requested"),
    [("free", "pro"), ("pro", "pro"), ("pro", "max"), ("max", "max"), (None, "free"), ("legacy", "free")],
)
def test_not_a_downgrade_never_reads_usage(current: str | None, requested: str) -> None:
    decision = check(current, requested)
    assert decision.allowed
    assert decision.to_json() == {"allowed": True, "message": None, "reasons": [], "usage": None}


def test_over_the_limit_is_denied_with_excess() -> None:
    decision = check("pro", "free", read=lambda _user: 5)
    assert not decision.allowed
    assert decision.excess == 2
    assert decision.to_json() == {
        "allowed": False,
        "message": DENY_MESSAGE,
        "reasons": list(deny_reasons(5, 3)),
        "usage": {"tracked_accounts": {"used": 5, "limit": 3, "excess": 2}},
    }


def test_leaving_unlimited_reads_usage() -> None:
    assert not check("max", "pro", read=lambda _user: 6).allowed
    assert check("max", "pro", read=lambda _user: 5).allowed


def test_the_user_id_is_what_is_read() -> None:
    reads: list[str] = []

    def read(user: str) -> int:
        reads.append(user)
        return 1

    check("pro", "free", read=read, user="kp_42")
    assert reads == ["kp_42"]


@pytest.mark.parametrize("error", [ServiceUnavailable(), ConnectionError("down"), KeyError("count")])
def test_a_failed_read_fails_closed(error: Exception) -> None:
    def read(_user: str) -> int:
        raise error

    with pytest.raises(UsageUnavailable, match="Cannot check the user limits") as raised:
        check("pro", "free", read=read)
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("bad", [None, "5", 5.0, True, [5]])
def test_anything_but_a_count_fails_closed(bad: object) -> None:
    with pytest.raises(UsageUnavailable, match="not a count"):
        check("pro", "free", read=lambda _user: bad)


# -- PLAN_LIMITS is validated at start, with a message naming the variable -----------------------
@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        "{}",
        '{"free": 3}',
        '{"free": {"other": 3}}',
        '{"free": {"tracked_accounts": -1}}',
        '{"free": {"tracked_accounts": 2.5}}',
        '{"free": {"tracked_accounts": "3"}}',
        '{"free": {"tracked_accounts": true}}',
        '{"": {"tracked_accounts": 3}}',
    ],
)
def test_bad_plan_limits_are_refused_at_start(raw: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_plan_limits(raw)
    env = {"TABLE_NAME": "t", "KINDE_ISSUER_URL": "https://x.kinde.com", "PLAN_LIMITS": raw}
    with pytest.raises(ConfigurationError, match="PLAN_LIMITS"):
        Settings.from_env(env)


def test_plan_limits_default_and_null_is_unlimited() -> None:
    base = {"TABLE_NAME": "t", "KINDE_ISSUER_URL": "https://x.kinde.com"}
    assert Settings.from_env(base).plan_limits == DEFAULT_PLAN_LIMITS
    custom = Settings.from_env({**base, "PLAN_LIMITS": '{"free":{"tracked_accounts":null}}'})
    assert custom.plan_limits == {"free": {"tracked_accounts": None}}
