"""Two warm AccountsFunction containers, each with its own entitlement cache, on one DynamoDB and one
Kinde: why an applied plan *replaces* a hold rather than removing it.

Both cache pro's 5; pro -> free is selected (held at 3) and Kinde applies it 90 s later. Container
A, whose cache has expired, reads free's 3 and, refused by the hold, finds the plan applied after
the hold and replaces it with the fresh limit (3). Container B still caches pro's 5: had the hold
been removed, B would add a 4th account; replaced, B stays refused at 3 for as long as its stale
cache lasts, and after it.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from accounts_api.service import AccountsService, NewAccount
from planguard.accounts_store import AccountRepository
from planguard.auth import Principal
from planguard.entitlements import KindeAccountApi
from planguard.errors import LimitReached
from planguard.usage_counter import get_usage_counter

from local.kinde import Fault, KindeStandIn
from local.lambda_runtime import plan_selection_event
from tests.support import USER, Clock, seed


class Container:
    """One warm AccountsFunction: its own store client, Kinde client and cache, its own clock."""

    def __init__(self, name: str, kinde: KindeStandIn, ours: Clock) -> None:
        self.name = name
        self.kinde = kinde
        self.clock = Clock(time.monotonic)
        repository = AccountRepository(boto3.client("dynamodb"), "AccountsTable", clock=ours)
        self.service = AccountsService(
            repository, KindeAccountApi(kinde.url, cache_seconds=60, clock=self.clock)
        )
        self.principal = Principal(user_id=USER, token=kinde.mint(USER), claims={})
        self.adds = 0

    def usage(self) -> dict[str, Any]:
        shown = self.service.usage(self.principal, None)
        print(f"container {self.name} /usage: {shown}")
        return shown

    def add(self) -> dict[str, Any] | None:
        """None when created; else the refusal's usage."""
        self.adds += 1
        calls = self.kinde.account_api_calls
        try:
            self.service.add(self.principal, NewAccount("Account", f"{self.name}-{self.adds}"), None)
        except LimitReached as refused:
            usage: dict[str, Any] = refused.extra["usage"]
            print(f"container {self.name} add: LIMIT_REACHED {usage} (Kinde: {self.kinde_calls(calls)})")
            return usage
        print(f"container {self.name} add: created (Kinde: {self.kinde_calls(calls)})")
        return None

    def kinde_calls(self, before: int) -> int:
        return self.kinde.account_api_calls - before


def test_a_replaced_hold_binds_the_container_whose_cache_is_stale(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    from plan_check_api.selection import check_plan_selection

    ours = Clock(time.time)
    get_usage_counter().clock = ours  # the workflow's hold (PlanCheckFunction) on our clock too
    kinde.plan_change_hook = lambda user, current, requested: check_plan_selection(
        plan_selection_event(user, current, requested, kinde.url)
    )

    def later(seconds: float, *containers: Container) -> None:
        ours.ahead += seconds
        kinde.clock_offset += seconds
        for container in containers:
            container.clock.ahead += seconds
        print(f"--- +{seconds:g} s for us, Kinde and {', '.join(c.name for c in containers)}")

    kinde.set_plan(USER, "pro")
    seed(USER, 3)
    a, b = Container("A", kinde, ours), Container("B", kinde, ours)
    assert a.usage() == {"used": 3, "limit": 5, "limitSource": "kinde"}  # A caches pro's 5
    selected = kinde.request_plan_change(USER, "free", apply_after=90)
    assert (selected["allowed"], selected["plan"], selected["hold"]["limit"]) == (True, "pro", 3)
    hold_from = get_usage_counter().counter(USER).hold_from
    later(40, a, b)
    assert b.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}  # B caches pro's 5 (still pro)
    assert b.service.kinde.entitlement(USER, b.principal.token, "tracked_accounts").limit == 5
    later(51, a, b)  # Kinde applied free 90 s after the hold; A's cache (91 s old) has expired
    assert kinde.plan_of(USER) == "free"

    assert a.add() == {"used": 3, "limit": 3}  # A: free's 3 from Kinde, then the list: replaced
    counter = get_usage_counter().counter(USER)
    assert (counter.hold_limit, counter.hold_from) == (3, int(kinde.subscribed[USER]))
    assert counter.hold_from != hold_from

    assert b.service.kinde.entitlement(USER, b.principal.token, "tracked_accounts").limit == 5  # stale
    kinde.faults.extend([Fault(status=503)] * 3)  # and Kinde failing B's re-read: the refusal stands
    assert b.add() == {"used": 3, "limit": 3}  # the replaced hold binds B's stale 5 (never a 503)
    assert b.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}  # B still caches pro's 5
    later(5, b)
    assert b.add() == {"used": 3, "limit": 3}  # its re-read: free, applied when the hold was replaced
    assert b.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}  # now caching free's 3
    later(130, a, b)  # past the replaced hold's end: free's 3 binds on its own...
    assert a.add() == b.add() == {"used": 3, "limit": 3}
    # ...once an add there has read Kinde: free's limit, at the hold's, so the hold ended.
    assert get_usage_counter().counter(USER).hold_limit is None
    assert get_usage_counter().usage_count(USER) == 3
