"""The downgrade rule beyond the shared table: order, fail-closed reads and holds, limits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from planguard.errors import ServiceUnavailable
from planguard.plan_rule import (
    DENY_MESSAGE,
    PlanCheckError,
    PlanDecision,
    check_plan_change,
    deny_reasons,
)
from planguard.settings import (
    DEFAULT_PLAN_LIMITS,
    PlanLimits,
    Settings,
)
from planguard.usage_counter import HoldResult

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
def test_a_failed_read_fails_closed_with_its_own_error(error: Exception) -> None:
    def read(_user: str) -> int:
        raise error

    with pytest.raises(type(error)) as raised:
        check("pro", "free", read=read)
    assert raised.value is error


@pytest.mark.parametrize("bad", [None, "5", 5.0, True, [5], -1])
def test_anything_but_a_count_fails_closed(bad: object) -> None:
    with pytest.raises(PlanCheckError, match=r"^Cannot check the user limits: .* not a count$"):
        check("pro", "free", read=lambda _user: bad)


def test_exactly_one_way_to_learn_usage() -> None:
    with pytest.raises(TypeError, match="exactly one"):
        check_plan_change(user_id="kp_a", current_plan="pro", requested_plan="free", plan_limits=LIMITS)
    with pytest.raises(TypeError, match="exactly one"):
        check_plan_change(
            user_id="kp_a",
            current_plan="pro",
            requested_plan="free",
            plan_limits=LIMITS,
            read_usage=never_read,
            place_hold=Holds(held(0)),
        )


# -- place_hold: the hold is placed on every judged change; for a downgrade it is the read ----------
class Holds:
    """A fake ``place_hold``: answers ``answer`` (or raises it), recording each call."""

    def __init__(self, answer: HoldResult | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, int | None, str]] = []

    def __call__(self, user_id: str, limit: int | None, plan: str) -> HoldResult:
        self.calls.append((user_id, limit, plan))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def held(count: int, limit: int | None = 3, *, ok: bool = True) -> HoldResult:
    return HoldResult("kp_a", count, ok, limit, "2030-01-01T00:05:00Z" if ok else None)


def check_hold(
    current: str | None, requested: str | None, holds: Holds, user: str | None = "kp_a"
) -> PlanDecision:
    return check_plan_change(
        user_id=user, current_plan=current, requested_plan=requested, plan_limits=LIMITS, place_hold=holds
    )


def test_a_held_downgrade_is_allowed_and_carries_the_hold() -> None:
    holds = Holds(held(3))
    decision = check_hold("pro", "free", holds)
    assert holds.calls == [("kp_a", 3, "free")]
    assert decision.hold == held(3)
    assert decision.to_json() == {
        "allowed": True,
        "message": None,
        "reasons": [],
        "usage": {"tracked_accounts": {"used": 3, "limit": 3, "excess": 0}},
    }


def test_a_downgrade_not_held_is_denied_with_the_count() -> None:
    holds = Holds(held(6, ok=False))
    decision = check_hold("pro", "free", holds)
    assert decision.hold == held(6, ok=False)
    assert decision.to_json() == {
        "allowed": False,
        "message": DENY_MESSAGE,
        "reasons": list(deny_reasons(6, 3)),
        "usage": {"tracked_accounts": {"used": 6, "limit": 3, "excess": 3}},
    }


@pytest.mark.parametrize("error", [ServiceUnavailable(), ConnectionError("down"), NotImplementedError()])
def test_a_failed_hold_on_a_downgrade_fails_closed(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        check_hold("pro", "free", Holds(error))
    assert raised.value is error


@pytest.mark.parametrize(
    "answer",
    [
        HoldResult("kp_a", -1, True, 3, None),
        HoldResult("kp_a", True, True, 3, None),
        HoldResult("kp_a", "2", True, 3, None),  # type: ignore[arg-type]
        HoldResult("kp_a", 2, "yes", 3, None),  # type: ignore[arg-type]
    ],
)
def test_a_hold_answer_that_is_not_a_count_fails_closed(answer: HoldResult) -> None:
    with pytest.raises(PlanCheckError, match="Cannot check the user limits"):
        check_hold("pro", "free", Holds(answer))


@pytest.mark.parametrize(
    ("current", "requested", "limit"),
    [
        ("pro", "pro", 5),
        ("max", "max", None),
        (None, "free", 3),
        ("legacy", "free", 3),
        ("legacy", "max", None),
    ],
)
def test_a_lateral_move_or_an_unknown_current_plan_is_held_best_effort(
    current: str | None, requested: str, limit: int | None
) -> None:
    holds = Holds(held(9, limit, ok=limit is None or limit >= 9))
    decision = check_hold(current, requested, holds)
    assert holds.calls == [("kp_a", limit, requested)]
    assert decision.hold is holds.answer
    # Even a hold that was not held (a legacy plan over the new limit) does not block.
    assert decision.to_json() == {"allowed": True, "message": None, "reasons": [], "usage": None}


@pytest.mark.parametrize(("current", "requested"), [("free", "pro"), ("pro", "max"), ("free", "max")])
def test_a_clear_upgrade_places_and_lifts_nothing(current: str, requested: str) -> None:
    """Kinde fires the selection before payment: an upgrade that is never paid must not have lifted
    a lower hold, so a clear upgrade calls nothing at all."""
    holds = Holds(AssertionError("a clear upgrade must not call the hold"))
    decision = check_hold(current, requested, holds)
    assert holds.calls == []
    assert decision == PlanDecision(allowed=True)


@pytest.mark.parametrize("error", [ServiceUnavailable(), ConnectionError("down"), NotImplementedError()])
@pytest.mark.parametrize(("current", "requested"), [("pro", "pro"), ("legacy", "free")])
def test_a_failed_best_effort_hold_never_blocks(
    error: Exception, current: str, requested: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="planguard.plan_rule"):
        decision = check_hold(current, requested, Holds(error))
    assert decision == PlanDecision(allowed=True)
    assert decision.hold is None
    assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [error]


def test_a_downgrade_held_by_a_lower_active_hold_is_allowed_with_the_requested_limit() -> None:
    """pro -> free held at 3, then pro -> basic (4): the hold stays at 3 and answers so; the
    downgrade to basic is judged against basic's limit."""
    limits: PlanLimits = {**LIMITS, "basic": {"tracked_accounts": 4}}
    holds = Holds(HoldResult("kp_a", 3, True, 3, "2030-01-01T00:05:00Z"))
    decision = check_plan_change(
        user_id="kp_a", current_plan="pro", requested_plan="basic", plan_limits=limits, place_hold=holds
    )
    assert holds.calls == [("kp_a", 4, "basic")]
    assert decision.to_json()["usage"] == {"tracked_accounts": {"used": 3, "limit": 4, "excess": 0}}
    assert decision.allowed and decision.hold is holds.answer


def test_no_hold_before_the_checks_pass() -> None:
    holds = Holds(held(0))
    with pytest.raises(PlanCheckError, match="Missing user id"):
        check_hold("pro", "free", holds, user=None)
    with pytest.raises(PlanCheckError, match="Missing requested plan code"):
        check_hold("pro", None, holds)
    with pytest.raises(PlanCheckError, match="Unknown requested plan"):
        check_hold("pro", "nope", holds)
    assert holds.calls == []


# -- PLAN_LIMITS: bad values are the shared table (tests/unit/test_plan_limits_table.py) ---------
def test_plan_limits_default_and_null_is_unlimited() -> None:
    base = {"TABLE_NAME": "t", "KINDE_ISSUER_URL": "https://x.kinde.com"}
    assert Settings.from_env(base).plan_limits == DEFAULT_PLAN_LIMITS
    custom = Settings.from_env({**base, "PLAN_LIMITS": '{"free":{"tracked_accounts":null}}'})
    assert custom.plan_limits == {"free": {"tracked_accounts": None}}
