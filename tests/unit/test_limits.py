"""The limit rule, table-driven: which limit binds an add, why one is refused, what ``/usage`` shows,
when a hold may be placed, when a later one lowers or extends it, and when Kinde's plans end it
early; and, on moto, that the store's DynamoDB conditions decide every row of the tables as the
Python rule does."""

from __future__ import annotations

import time
from dataclasses import dataclass

import boto3
import pytest
from planguard.accounts_store import AccountRepository
from planguard.entitlements import Entitlement
from planguard.errors import LimitReached
from planguard.keys import counter_key
from planguard.limit_rule import (
    CLOCK_SKEW_SECONDS,
    Binding,
    Replacement,
    binding,
    excess,
    fits,
    hold_fits,
    hold_step,
    late_hold_until,
    late_step,
    refusal,
    refused_by_hold,
    refuses_without_writing,
    replacement,
    shown_limit,
)
from planguard.usage_counter import HOLD_NAMES, Counter, CounterConditionFailed, hold_condition

UNLIMITED = None


@dataclass(frozen=True)
class Refused:
    code: str
    limit: int | None = None  # the error's usage.limit
    by_hold: bool = False  # refused by the hold alone: Kinde is not asked again


@dataclass(frozen=True)
class Add:
    """One add: the count before it, the entitlement's limit, an active hold, a missing entitlement."""

    case: str
    count: int
    limit: int | None
    hold: int | None
    missing: bool
    refused: Refused | None  # None: the add goes through


FULL = "LIMIT_REACHED"
ADDS = [
    Add("below the limit", 4, 5, None, False, None),
    Add("at the limit", 5, 5, None, False, Refused(FULL, 5)),
    Add("unlimited", 1000, UNLIMITED, None, False, None),
    Add("unlimited, below a hold", 2, UNLIMITED, 3, False, None),
    Add("unlimited, at a hold", 3, UNLIMITED, 3, False, Refused(FULL, 3, by_hold=True)),
    Add("a hold below the limit binds", 3, 5, 3, False, Refused(FULL, 3, by_hold=True)),
    Add("a hold equal to the limit: the hold", 3, 3, 3, False, Refused(FULL, 3, by_hold=True)),
    Add("a hold above the limit never binds", 3, 3, 5, False, Refused(FULL, 3)),
    Add("full hold above the limit: the limit", 5, 3, 5, False, Refused(FULL, 3)),
    Add("below both", 2, 5, 3, False, None),
    Add("missing entitlement, fail closed", 0, 0, None, True, Refused("NO_ENTITLEMENT")),
    Add("missing entitlement taken as unlimited", 7, UNLIMITED, None, True, None),
    Add("missing as unlimited, at a hold", 2, UNLIMITED, 2, True, Refused(FULL, 2, by_hold=True)),
    Add("a zero limit", 0, 0, None, False, Refused(FULL, 0)),
]


@pytest.mark.parametrize("row", ADDS, ids=[row.case for row in ADDS])
def test_add(row: Add) -> None:
    entitlement = Entitlement(row.limit, missing=row.missing)
    counter = Counter(row.count, row.hold)
    assert (fits(row.limit, row.count) and fits(row.hold, row.count)) is (row.refused is None)
    if row.refused is None:
        return
    assert refused_by_hold(entitlement, counter) is row.refused.by_hold
    error = refusal(entitlement, counter)
    assert error.code == row.refused.code
    if isinstance(error, LimitReached):
        assert error.extra["usage"] == {"used": row.count, "limit": row.refused.limit}


@pytest.mark.parametrize(
    ("limit", "refused"), [(0, True), (1, False), (UNLIMITED, False)], ids=["zero", "one", "unlimited"]
)
def test_only_a_zero_limit_refuses_without_writing(limit: int | None, refused: bool) -> None:
    assert refuses_without_writing(Entitlement(limit)) is refused


@pytest.mark.parametrize(
    ("entitlement", "hold", "source", "shown"),
    [
        (5, None, "kinde", (5, "kinde")),
        (5, 3, "cache", (3, "hold")),
        (5, 5, "kinde", (5, "kinde")),  # a tie is named after the plan
        (3, 5, "cache", (3, "cache")),
        (UNLIMITED, 3, "kinde", (3, "hold")),
        (UNLIMITED, None, "kinde", (None, "kinde")),
    ],
)
def test_usage_shows_the_binding_limit(
    entitlement: int | None, hold: int | None, source: str, shown: tuple[int | None, str]
) -> None:
    assert shown_limit(entitlement, source, hold) == shown


def test_on_a_tie_both_limits_bind() -> None:
    assert binding(3, 3) == Binding(3, by_entitlement=True, by_hold=True)
    assert binding(UNLIMITED, UNLIMITED).limit is None


HOLDS = [(None, 0, True), (0, 0, True), (1, 0, False), (3, 3, True), (4, 3, False), (2, 5, True)]


@pytest.mark.parametrize(("count", "limit", "held"), HOLDS)
def test_a_hold_is_placed_only_within_it(count: int | None, limit: int, held: bool) -> None:
    assert hold_fits(limit, count or 0) is held


# A hold request at ``limit`` on a counter of ``count`` with an active hold (None: none).
STEPS = [
    (2, None, 3, "place"),
    (3, None, 3, "place"),
    (4, None, 3, "refuse"),
    (2, 5, 3, "place"),  # lowers an active, higher hold
    (3, 3, 3, "place"),  # the same limit: placed again (a new start and end)
    (2, 3, 5, "extend"),  # never raises it: the lower hold stays, at most lasting longer
    (3, 3, 4, "extend"),
    (3, 3, 2, "refuse"),  # more accounts than asked: refused whatever the hold
    (0, 0, 0, "place"),
]


@pytest.mark.parametrize(("count", "active", "limit", "step"), STEPS)
def test_a_later_hold_only_lowers(count: int, active: int | None, limit: int, step: str) -> None:
    assert hold_step(Counter(count, active), limit) == step


@pytest.mark.parametrize(("count", "active", "limit", "step"), STEPS)
def test_the_placing_condition_decides_as_the_rule(
    repo: AccountRepository, count: int, active: int | None, limit: int, step: str
) -> None:
    """The placing write alone, on moto: it succeeds exactly when the rule says ``place``."""
    put_counter("kp_row", count, active)
    condition, values = hold_condition(limit, int(time.time()))
    client = boto3.client("dynamodb")
    try:
        client.update_item(
            TableName="AccountsTable",
            Key=counter_key("kp_row"),
            UpdateExpression="SET #c = if_not_exists(#c, :limit), #hl = :limit",
            ConditionExpression=condition,
            ExpressionAttributeNames={k: HOLD_NAMES[k] for k in ("#c", "#hl", "#hu", "#hf")},
            ExpressionAttributeValues=values,
        )
        placed = True
    except client.exceptions.ConditionalCheckFailedException:
        placed = False
    assert placed is (step == "place")


def test_an_expired_hold_is_no_hold_to_the_placing_condition(repo: AccountRepository) -> None:
    put_counter("kp_row", 2, hold=1, hold_until=time.time() - 1)
    assert hold_step(repo.usage.counter("kp_row"), 3) == "place"
    assert repo.usage.place_hold("kp_row", 3, "free", 300).limit == 3


T0 = 1_800_000_000  # when the hold was placed (epoch seconds)
LATE = T0 + CLOCK_SKEW_SECONDS + 1


@pytest.mark.parametrize(
    ("hold_from", "plans", "fresh", "expected"),
    [
        (T0, [("pro", LATE)], 5, Replacement(5, "pro", LATE, LATE + 60 + CLOCK_SKEW_SECONDS)),
        (T0, [("pro", LATE + 0.5)], None, Replacement(None, "pro", LATE, LATE + 1 + 60 + CLOCK_SKEW_SECONDS)),
        (T0, [("free", T0 + 2)], 3, None),  # applied with the hold (at once): no news
        (T0, [("pro", T0 + CLOCK_SKEW_SECONDS)], 5, None),  # within the margin for clock skew
        (T0, [("free", T0 - 3600)], 3, None),  # applied long before
        (T0, [("pro", None)], 5, None),  # no usable subscribed_on: the hold runs to its end
        (T0, [], 5, None),
        (None, [("pro", LATE)], 5, None),  # a hold from before holdFrom was recorded
        (T0, [("free", T0 + 1), ("pro", LATE + 9)], 5, Replacement(5, "pro", LATE + 9, LATE + 69 + 60)),
    ],
)
def test_only_a_plan_applied_after_the_hold_ends_it_early(
    hold_from: int | None,
    plans: list[tuple[str, float | None]],
    fresh: int | None,
    expected: Replacement | None,
) -> None:
    assert replacement(hold_from, plans, fresh, cache_seconds=60) == expected


# -- the same table, decided by DynamoDB's conditions (moto) ----------------------------------------
@pytest.fixture
def repo(aws: None) -> AccountRepository:
    return AccountRepository(boto3.client("dynamodb"), "AccountsTable")


def put_counter(
    user: str, count: int | None, hold: int | None = None, hold_until: float | None = None
) -> None:
    if count is None:
        return  # a new user: no counter item at all
    item = {**counter_key(user), "count": {"N": str(count)}, "version": {"N": "1"}}
    if hold is not None:
        until = time.time() + 300 if hold_until is None else hold_until
        item |= {"holdLimit": {"N": str(hold)}, "holdUntil": {"N": str(int(until))}}
    boto3.client("dynamodb").put_item(TableName="AccountsTable", Item=item)


@pytest.mark.parametrize("row", [row for row in ADDS if row.limit != 0], ids=lambda row: row.case)
def test_the_add_condition_decides_as_the_rule(repo: AccountRepository, row: Add) -> None:
    put_counter("kp_row", row.count, row.hold)
    try:
        repo.create("kp_row", "A", "1", row.limit)
    except CounterConditionFailed as refused:
        assert row.refused is not None
        assert refused.counter == Counter(row.count, row.hold, refused.counter.hold_until)
    else:
        assert row.refused is None


def test_an_expired_hold_binds_nothing(repo: AccountRepository) -> None:
    put_counter("kp_row", 3, hold=1, hold_until=time.time() - 1)
    repo.create("kp_row", "A", "1", 5)
    assert repo.usage.counter("kp_row") == Counter(4)


def test_why_a_zero_limit_never_writes(repo: AccountRepository) -> None:
    """The condition alone would let a new user's first add through (no counter, nothing to fail)."""
    repo.create("kp_new", "A", "1", 0)
    assert repo.usage.usage_count("kp_new") == 1


@pytest.mark.parametrize(("count", "limit", "held"), HOLDS)
def test_the_hold_condition_decides_as_the_rule(
    repo: AccountRepository, count: int | None, limit: int, held: bool
) -> None:
    put_counter("kp_row", count)
    result = repo.usage.place_hold("kp_row", limit, "small", 300)
    assert (result.held, result.count) == (held, count or 0)
    assert repo.usage.counter("kp_row").hold_limit == (limit if held else None)


# -- third pass: a hold past its end, a downgrade Kinde applies late ------------------------------
MAX = 35 * 86400


def put_held(user: str, count: int, hold: int, *, until: float, since: float) -> None:
    item = {
        **counter_key(user),
        "count": {"N": str(count)},
        "version": {"N": "1"},
        "holdLimit": {"N": str(hold)},
        "holdUntil": {"N": str(int(until))},
        "holdFrom": {"N": str(int(since))},
        "holdPlan": {"S": "free"},
    }
    boto3.client("dynamodb").put_item(TableName="AccountsTable", Item=item)


NOW = 1_800_000_000
# (hold's end, hold's start, binds) at NOW, with the longest a downgrade may stay pending MAX.
LAPSES = [
    (NOW + 10, NOW - 100, True),  # before its end
    (NOW - 10, NOW - 400, True),  # past its end, Kinde not asked yet: still a hold
    (NOW - 10, NOW - MAX + 5, True),
    (NOW - 10, NOW - MAX, False),  # as old as the maximum: no more
    (NOW + 10, NOW - MAX - 5, True),  # an extension never lasts past the maximum, but one that does binds
]


@pytest.mark.parametrize(("until", "since", "binds"), LAPSES)
def test_a_hold_past_its_end_binds_until_the_maximum(until: int, since: int, binds: bool) -> None:
    item = {
        "count": {"N": "3"},
        "holdLimit": {"N": "3"},
        "holdUntil": {"N": str(until)},
        "holdFrom": {"N": str(since)},
    }
    counter = Counter.from_item(item, NOW, NOW - MAX)
    assert (counter.hold_limit == 3) is binds
    assert counter.hold_lapsed is (binds and until <= NOW)
    assert Counter.from_item(item, NOW).hold_limit == (3 if until > NOW else None)  # no maximum given


@pytest.mark.parametrize(("until", "since", "binds"), LAPSES)
def test_the_add_condition_binds_a_lapsed_hold_as_the_rule(
    repo: AccountRepository, until: int, since: int, binds: bool
) -> None:
    offset = time.time() - NOW  # the table's rows, moved to now
    put_held("kp_row", 3, 3, until=until + offset, since=since + offset)
    repo.usage.hold_max_seconds = MAX
    try:
        repo.create("kp_row", "A", "1", 5)
        added = True
    except CounterConditionFailed as refused:
        added = False
        assert refused.counter.hold_limit == 3
    assert added is not binds


@pytest.mark.parametrize(
    ("hold", "fresh", "step"),
    [(3, 5, "extend"), (3, None, "extend"), (3, 3, "end"), (3, 1, "end"), (3, 0, "end"), (1, 3, "extend")],
)
def test_past_its_end_a_hold_ends_only_when_kinde_s_limit_is_at_or_below_it(
    hold: int, fresh: int | None, step: str
) -> None:
    assert late_step(hold, fresh) == step


def test_an_extension_past_the_end_stops_at_the_maximum() -> None:
    assert late_hold_until(NOW + 0.5, NOW - 1000, 300, MAX) == NOW + 301
    assert late_hold_until(NOW, NOW - MAX + 100, 300, MAX) == NOW + 100


@pytest.mark.parametrize(
    ("used", "limit", "over"), [(5, 3, 2), (3, 3, 0), (1, 3, 0), (9, None, 0), (1, 0, 1)]
)
def test_over_the_limit_says_how_many_to_remove(used: int, limit: int | None, over: int) -> None:
    assert excess(used, limit) == over


def test_a_lapsed_hold_is_a_hold_to_the_placing_write(repo: AccountRepository) -> None:
    """A higher request keeps it (extended, from now); a lower one replaces it."""
    now = time.time()
    put_held("kp_row", 1, 1, until=now - 5, since=now - 600)
    higher = repo.usage.place_hold("kp_row", 3, "free", 300)
    assert (higher.held, higher.limit) == (True, 1)
    counter = repo.usage.counter("kp_row")
    assert (counter.hold_limit, counter.hold_lapsed) == (1, False)
    assert counter.hold_from is not None and counter.hold_from >= int(now)
    put_held("kp_row", 1, 2, until=now - 5, since=now - 600)
    assert repo.usage.place_hold("kp_row", 1, "tiny", 300).limit == 1


def test_release_hold_ends_any_hold(repo: AccountRepository) -> None:
    now = time.time()
    put_held("kp_row", 2, 2, until=now + 300, since=now)
    assert repo.usage.release_hold("kp_row") == 2
    assert repo.usage.counter("kp_row") == Counter(2)
    assert repo.usage.release_hold("kp_row") is None
