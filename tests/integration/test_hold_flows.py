"""The plan lifecycle's flows over HTTP: a selection never widens a limit.

The local gateway (routes from template.yaml) on 127.0.0.1 serves the functions in this process,
on moto; the Kinde stand-in serves the Account API and plays plan changes over its ``/dev/plan``,
running PlanCheckFunction's direct invoke as Kinde runs the workflow, and applying a change at
once, later, or never. The entitlement cache is the production one (60 s). Time is moved rather
than waited for: our clock (the counter's holds), Kinde's (``subscribed_on``, pending changes) and
each container's (its entitlement cache and re-read budget), together, as one "later".

Each step's ``/usage`` is printed (``pytest -s``) to be read alongside the assertions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from planguard.entitlements import get_account_api
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn
from local.lambda_runtime import LocalContext, plan_selection_event
from tests.support import USER, Clock, api_over_http, clear_caches

BASIC_LIMITS = {
    "free": {"tracked_accounts": 3},
    "basic": {"tracked_accounts": 4},
    "pro": {"tracked_accounts": 5},
}


@dataclass
class Flow:
    api: str
    kinde: KindeStandIn
    token: str
    ours: Clock = field(default_factory=lambda: Clock(time.time))
    container: Clock = field(default_factory=lambda: Clock(time.monotonic))
    log: list[str] = field(default_factory=list)

    def later(self, seconds: float) -> None:
        """Everyone's clock moves on: ours, Kinde's and the container's."""
        self.ours.ahead += seconds
        self.container.ahead += seconds
        self.kinde.clock_offset += seconds
        self.note(f"--- at +{self.ours.ahead:.0f} s")

    def note(self, line: str) -> None:
        self.log.append(line)
        print(line)

    def add(self, n: int) -> requests.Response:
        calls = self.kinde.account_api_calls
        response = requests.post(
            f"{self.api}/accounts",
            headers={"Authorization": f"Bearer {self.token}"},
            json={"name": f"Account {n}", "accountNumber": f"N-{n:04d}"},
            timeout=30,
        )
        body = response.json()
        shown = (
            body["error"]["code"] + " " + json.dumps(body["error"].get("usage"))
            if "error" in body
            else "created"
        )
        self.note(
            f"add #{n}: {response.status_code} {shown} (Kinde calls: {self.kinde.account_api_calls - calls})"
        )
        return response

    def usage(self) -> dict[str, Any]:
        response = requests.get(
            f"{self.api}/usage", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        usage: dict[str, Any] = response.json()["tracked_accounts"]
        self.note(f"/usage: {json.dumps(usage)}")
        return usage

    def select(self, plan: str, **when: Any) -> dict[str, Any]:
        """A plan selection as Kinde makes it: ``applyAfter`` seconds, ``fails``, or at once."""
        answer: dict[str, Any] = requests.post(
            f"{self.kinde.url}/dev/plan", json={"user": USER, "plan": plan, **when}, timeout=30
        ).json()
        hold = answer.get("hold") or {}
        held = json.dumps({k: hold.get(k) for k in ("held", "limit", "count")}) if hold else None
        moved = f"select {answer['from']} -> {plan} {when or ''}: allowed={answer['allowed']}"
        self.note(f"{moved} plan now {answer['plan']} hold={held}")
        return answer

    def hold(self) -> tuple[int | None, int | None, float | None]:
        counter = get_usage_counter().counter(USER)
        return counter.hold_limit, counter.hold_from, counter.hold_ends_at


@pytest.fixture
def flow(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> Iterator[Flow]:
    from plan_check_api.handler import lambda_handler

    def workflow(user: str, current: str | None, requested: str) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(
            plan_selection_event(user, current, requested, kinde.url), LocalContext("PlanCheckFunction")
        )
        return result

    kinde.plan_change_hook = workflow
    kinde.set_plan(USER, "pro")
    with api_over_http() as api:
        running = Flow(api, kinde, kinde.mint(USER))
        get_usage_counter().clock = running.ours
        get_account_api().clock = running.container
        yield running


def fill(flow: Flow, count: int) -> None:
    for n in range(count):
        assert flow.add(n).status_code == 201


def refused_at(response: requests.Response, limit: int, used: int = 3) -> bool:
    error = response.json().get("error", {})
    return response.status_code == 403 and error.get("usage") == {"used": used, "limit": limit}


def test_a_pending_upgrade_never_lifts_the_hold_and_an_applied_one_replaces_it(flow: Flow) -> None:
    """pro with 3 -> free allowed -> refused at 3 -> pro selected, pending -> still refused at 3 ->
    pro applied more than a minute after the hold -> the next add succeeds after one Kinde read."""
    fill(flow, 3)
    assert flow.usage() == {"used": 3, "limit": 5, "limitSource": "cache"}
    down = flow.select("free")
    assert (down["allowed"], down["plan"], down["hold"]["held"], down["hold"]["limit"]) == (
        True,
        "free",
        True,
        3,
    )
    limit, placed_at, _ = flow.hold()
    assert limit == 3 and placed_at is not None
    assert refused_at(flow.add(3), 3)
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}  # the list re-read cached free's 3
    up = flow.select("pro", applyAfter=90)
    assert (up["allowed"], up["plan"], up["hold"]) == (True, "free", None)  # a clear upgrade calls nothing
    flow.later(40)
    calls = flow.kinde.account_api_calls
    assert refused_at(flow.add(3), 3)
    assert flow.kinde.account_api_calls == calls + 1  # the list, read fresh: free, applied with the hold
    assert flow.hold()[0] == 3
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}
    flow.later(51)  # pro applied 90 s after the hold (Kinde's clock)
    assert flow.kinde.plan_of(USER) == "pro"
    calls = flow.kinde.account_api_calls
    assert flow.add(3).status_code == 201
    assert flow.kinde.account_api_calls == calls + 1  # one fresh read: the entitlements list
    limit, since, until = flow.hold()
    assert (limit, since) == (5, flow.kinde.subscribed[USER] // 1)  # replaced, not removed
    assert until == since + 60 + 60  # type: ignore[operator]  # subscribed_on + cache + 60 s
    assert flow.usage() == {"used": 4, "limit": 5, "limitSource": "cache"}
    assert flow.add(4).status_code == 201
    assert refused_at(flow.add(5), 5, used=5)


def test_a_selection_whose_payment_fails_holds_until_the_maximum_then_the_plan_is_back(flow: Flow) -> None:
    """A failed payment looks to us exactly like a downgrade Kinde applies late (Kinde still shows
    pro, nothing applied): held past its end, up to the longest a downgrade may stay pending (or
    until support releases it), then the plan is back."""
    fill(flow, 3)
    down = flow.select("free", fails=True)
    assert (down["allowed"], down["plan"], down["fails"], down["hold"]["limit"]) == (True, "pro", True, 3)
    _, _, until = flow.hold()
    assert refused_at(flow.add(3), 3)
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}  # still pro (5) at Kinde
    flow.later(200)
    assert refused_at(flow.add(3), 3)
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}
    assert until is not None
    flow.later(until - flow.ours() + 1)  # past holdUntil: Kinde still shows pro, nothing applied
    assert refused_at(flow.add(3), 3)  # so the hold is extended, not lapsed
    assert flow.hold()[0] == 3
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}
    flow.later(35 * 86400)  # past DOWNGRADE_HOLD_MAX_SECONDS since the hold was placed
    assert flow.hold() == (None, None, None)
    assert flow.usage() == {"used": 3, "limit": 5, "limitSource": "kinde"}
    assert flow.add(3).status_code == 201
    assert flow.usage() == {"used": 4, "limit": 5, "limitSource": "cache"}


def test_a_later_higher_selection_keeps_the_hold_and_moves_its_end(
    flow: Flow, env: pytest.MonkeyPatch
) -> None:
    env.setenv("PLAN_LIMITS", json.dumps(BASIC_LIMITS))
    clear_caches()
    flow.kinde.plan_limits = json.loads(json.dumps(BASIC_LIMITS))
    get_usage_counter().clock = flow.ours
    get_account_api().clock = flow.container
    fill(flow, 3)
    first = flow.select("free", applyAfter=3600)
    assert (first["allowed"], first["hold"]["limit"], first["plan"]) == (True, 3, "pro")
    limit, since, until = flow.hold()
    flow.later(100)
    second = flow.select("basic", applyAfter=3600)
    assert second["allowed"] is True
    assert (second["hold"]["held"], second["hold"]["limit"]) == (True, 3)  # the lower hold answers
    assert second["usage"] == {"tracked_accounts": {"used": 3, "limit": 4, "excess": 0}}
    limit2, since2, until2 = flow.hold()
    assert limit2 == limit == 3  # the hold stays at 3...
    assert since is not None and since2 is not None
    assert since + 100 <= since2 <= since + 101  # ...and starts afresh with the later selection
    assert until is not None and until2 is not None
    assert until + 100 <= until2 <= until + 101  # its end: the later selection's (whole seconds)
    assert refused_at(flow.add(3), 3)
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}


# -- third pass: an extension starts the hold afresh; a downgrade Kinde applies late -------------------
THREE_PLANS = {
    "starter": {"tracked_accounts": 1},
    "free": {"tracked_accounts": 3},
    "pro": {"tracked_accounts": 5},
}


def with_plans(flow: Flow, env: pytest.MonkeyPatch, limits: dict[str, Any]) -> None:
    env.setenv("PLAN_LIMITS", json.dumps(limits))
    clear_caches()
    flow.kinde.plan_limits = json.loads(json.dumps(limits))
    get_usage_counter().clock = flow.ours
    get_account_api().clock = flow.container


def test_three_plans_an_extended_hold_is_not_replaced_by_a_plan_applied_before_its_selection(
    flow: Flow, env: pytest.MonkeyPatch
) -> None:
    """free with 1 -> starter selected, its payment fails: hold 1 -> a minute later pro, at once ->
    free selected, payment pending: the hold at 1 is extended AND starts afresh -> pro's
    ``subscribed_on`` (before that selection) never replaces it -> free applies: up to 3, not 5."""
    with_plans(flow, env, THREE_PLANS)
    flow.kinde.set_plan(USER, "free")
    fill(flow, 1)
    starter = flow.select("starter", fails=True)
    assert (starter["allowed"], starter["plan"], starter["hold"]["limit"]) == (True, "free", 1)
    first_from = flow.hold()[1]
    flow.later(70)
    up = flow.select("pro")  # a clear upgrade: no hold call, applied at once
    assert (up["plan"], up["hold"]) == ("pro", None)
    flow.later(5)
    down = flow.select("free", applyAfter=120)
    assert (down["allowed"], down["plan"], down["hold"]["held"], down["hold"]["limit"]) == (
        True,
        "pro",
        True,
        1,
    )
    limit, since, _ = flow.hold()
    assert limit == 1 and first_from is not None and since is not None
    assert since >= first_from + 75  # holdFrom moved with the extension
    for n in range(1, 5):  # the red-team's four adds
        assert refused_at(flow.add(n), 1, used=1)
        flow.later(6)  # past the re-read budget: each refusal asks Kinde again
    assert flow.usage() == {"used": 1, "limit": 1, "limitSource": "hold"}
    flow.later(100)  # free applied, 120 s after its selection
    assert flow.kinde.plan_of(USER) == "free"
    assert [flow.add(n).status_code for n in range(1, 4)] == [201, 201, 403]
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}


def test_a_downgrade_kinde_applies_after_the_hold_s_end_never_lets_the_user_pass_its_limit(
    flow: Flow,
) -> None:
    """pro with 3 -> free, applied by Kinde 420 s later (the hold lasts 360 s): past holdUntil the
    add reads Kinde, still pro and nothing applied, so the hold is extended; once free applies it
    replaces the hold; the user never holds more than 3."""
    fill(flow, 3)
    down = flow.select("free", applyAfter=420)
    assert (down["allowed"], down["plan"], down["hold"]["limit"]) == (True, "pro", 3)
    _, since, until = flow.hold()
    assert since is not None and until is not None
    flow.later(until - flow.ours() + 1)  # past holdUntil; Kinde still shows pro
    calls = flow.kinde.account_api_calls
    assert refused_at(flow.add(3), 3)
    assert flow.kinde.account_api_calls == calls + 2  # its cached plan had expired; the list: still pro
    limit, since2, until2 = flow.hold()
    assert (limit, since2) == (3, since)  # extended, from the same selection
    assert until2 is not None and until2 >= flow.ours() + 300 - 1  # by DOWNGRADE_HOLD_SECONDS
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "hold"}
    for _ in range(3):
        flow.later(20)
        assert refused_at(flow.add(3), 3)
    assert flow.kinde.plan_of(USER) == "free"  # applied at +420
    flow.later(6)
    assert refused_at(flow.add(3), 3)
    assert flow.hold()[0] == 3  # replaced by free's own limit, from its subscribed_on
    flow.later(3600)
    assert refused_at(flow.add(3), 3)  # free's limit, as Kinde says
    assert flow.usage()["used"] == 3


def test_a_downgrade_applied_at_once_ends_the_hold_at_its_end(flow: Flow) -> None:
    """Kinde applies the change at once: past holdUntil the add reads Kinde once, whose limit is
    the hold's, and the hold ends there as before."""
    fill(flow, 3)
    down = flow.select("free")
    assert (down["plan"], down["hold"]["limit"]) == ("free", 3)
    assert refused_at(flow.add(3), 3)
    _, _, until = flow.hold()
    assert until is not None
    flow.later(until - flow.ours() + 1)
    assert refused_at(flow.add(3), 3)  # by free's own limit now
    assert flow.hold() == (None, None, None)  # the hold ended: Kinde's limit is at its level
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}
    assert [flow.add(n).status_code for n in (3, 4)] == [403, 403]


def test_a_downgrade_applied_after_the_maximum_leaves_the_user_over_the_limit_and_says_so(
    flow: Flow,
) -> None:
    """Held for the longest a downgrade may stay pending, then no more: the user adds up to pro's 5;
    free applied later leaves them over its 3: they keep their accounts, adds are refused, and
    ``/usage`` says how many to remove."""
    fill(flow, 3)
    down = flow.select("free", applyAfter=36 * 86400)
    assert down["hold"]["limit"] == 3
    flow.later(20 * 86400)
    assert refused_at(flow.add(3), 3)  # still held, 20 days on
    flow.later(15 * 86400 + 1)  # past DOWNGRADE_HOLD_MAX_SECONDS (35 days) since the hold
    assert flow.add(3).status_code == 201
    assert flow.add(4).status_code == 201
    flow.later(86400)  # free applied at last
    assert flow.kinde.plan_of(USER) == "free"
    flow.later(61)  # past the warm entitlement cache
    assert flow.usage() == {"used": 5, "limit": 3, "limitSource": "kinde", "excess": 2}
    refused = flow.add(5)
    assert refused.status_code == 403 and refused.json()["error"]["usage"] == {"used": 5, "limit": 3}
    accounts = requests.get(
        f"{flow.api}/accounts", headers={"Authorization": f"Bearer {flow.token}"}, timeout=30
    ).json()
    assert len(accounts["items"]) == 5 and accounts["usage"]["excess"] == 2
    for account in accounts["items"][:2]:
        requests.delete(
            f"{flow.api}/accounts/{account['id']}",
            headers={"Authorization": f"Bearer {flow.token}"},
            timeout=30,
        ).raise_for_status()
    assert flow.usage() == {"used": 3, "limit": 3, "limitSource": "cache"}
    assert flow.add(5).status_code == 403  # at the limit, not under it


def test_support_ends_a_hold_that_will_never_apply(flow: Flow) -> None:
    """The payment failed: support knows free will never apply, and ends the hold at once."""
    fill(flow, 3)
    flow.select("free", fails=True)
    assert refused_at(flow.add(3), 3)
    assert get_usage_counter().release_hold(USER) == 3
    assert flow.hold() == (None, None, None)
    assert flow.add(3).status_code == 201
    assert get_usage_counter().release_hold(USER) is None  # nothing left to end
