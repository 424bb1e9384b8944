"""Organization mode end to end: members of one organization share its accounts, count, hold and
limit (read through the Management API), over HTTP.

The local gateway (routes from template.yaml) serves the functions in this process on moto; the
Kinde stand-in signs members in to organizations, serves the Management API, and plays the
organization's plan changes over ``request_plan_change``, running PlanCheckFunction's direct
invoke as Kinde runs the workflow, applying a change at once, later, or never. The entitlement
cache is the production one (60 s). Time is moved rather than waited for: ours (the counter's
holds), Kinde's (``subscribed_on``, pending changes) and the container's (its entitlement cache and
re-read budget), together, as one "later".
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from planguard.accounts_store import get_repository
from planguard.auth import Principal
from planguard.errors import ApiError
from planguard.organizations import get_organization_entitlements
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn
from local.kinde.organizations import DEFAULT_ORGANIZATION
from local.lambda_runtime import LocalContext, plan_selection_event
from tests.support import Clock, api_over_http, organization_mode

ORG, OTHER_ORG = "org_acme", "org_beta"
ANN, BOB, CARA = "kp_ann", "kp_bob", "kp_cara"
WRITE = "write:tracked_accounts"


@dataclass
class Org:
    api: str
    kinde: KindeStandIn
    ours: Clock = field(default_factory=lambda: Clock(time.time))
    container: Clock = field(default_factory=lambda: Clock(time.monotonic))
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, user: str, org: str = ORG, permissions: list[str] | None = None) -> str:
        if (user, org) not in self.tokens or permissions is not None:
            self.tokens[user, org] = self.kinde.mint_member(user, org, permissions=permissions)
        return self.tokens[user, org]

    def call(self, method: str, path: str, token: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.api}{path}", headers={"Authorization": f"Bearer {token}"}, json=body, timeout=30
        )

    def add(self, user: str, n: int, org: str = ORG) -> requests.Response:
        body = {"name": f"Account {n}", "accountNumber": f"N-{n:04d}"}
        return self.call("POST", "/accounts", self.token(user, org), body)

    def items(self, user: str, org: str = ORG) -> list[dict[str, Any]]:
        response = self.call("GET", "/accounts", self.token(user, org))
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def usage(self, user: str, org: str = ORG) -> dict[str, Any]:
        response = self.call("GET", "/usage", self.token(user, org))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def select(self, plan: str, apply_after: float = 0, fails: bool = False) -> dict[str, Any]:
        """The organization's plan selection, as Kinde makes it (by a member)."""
        return self.kinde.request_plan_change(ANN, plan, apply_after, fails, org=ORG)

    def later(self, seconds: float) -> None:
        self.ours.ahead += seconds
        self.container.ahead += seconds
        self.kinde.clock_offset += seconds

    def hold(self) -> tuple[int | None, int | None]:
        counter = get_repository("organization").usage.counter(ORG)
        return counter.hold_limit, counter.hold_from


@pytest.fixture
def org(env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn) -> Iterator[Org]:
    organization_mode(env)
    from plan_check_api.handler import lambda_handler

    def workflow(user: str, current: str | None, requested: str, org: str | None = None) -> dict[str, Any]:
        event = plan_selection_event(user, current, requested, kinde.url, org or "org_dev")
        result: dict[str, Any] = lambda_handler(event, LocalContext("PlanCheckFunction"))
        return result

    kinde.plan_change_hook = workflow
    kinde.set_org_plan(ORG, "pro")
    with api_over_http() as api:
        running = Org(api, kinde)
        get_usage_counter().clock = running.ours
        get_organization_entitlements().clock = running.container
        yield running


def refused_at(response: requests.Response, used: int, limit: int) -> bool:
    error = response.json().get("error", {})
    return (
        response.status_code == 403
        and error.get("code") == "LIMIT_REACHED"
        and error.get("usage") == {"used": used, "limit": limit}
    )


def test_the_seed_scenario_for_one_organization_with_two_members(org: Org) -> None:
    """pro, 5 adds across both members, the 6th refused, the downgrade denied, delete 2, the
    downgrade accepted, the next add refused at 3."""
    for n in range(5):
        added = org.add(ANN if n % 2 == 0 else BOB, n)
        assert added.status_code == 201, added.text
    assert refused_at(org.add(ANN, 5), 5, 5)
    shared = org.items(BOB)
    assert [item["name"] for item in shared] == [f"Account {n}" for n in range(5)]  # the same list
    assert [item["createdBy"] for item in shared] == [ANN, BOB, ANN, BOB, ANN]
    view = org.usage(ANN)
    assert view == {
        "tracked_accounts": {"used": 5, "limit": 5, "limitSource": "cache"},
        "organization": {"code": ORG},
        "plan": "pro",
        "canWrite": True,
    }
    denied = org.select("free")
    assert (denied["allowed"], denied["plan"]) == (False, "pro")
    assert denied["reasons"][0] == "Your current usage is 5, but the new plan only allows up to 3."
    for item in shared[:2]:  # Bob removes what Ann added
        assert org.call("DELETE", f"/accounts/{item['id']}", org.token(BOB)).status_code == 204
    renamed = org.call("PATCH", f"/accounts/{shared[2]['id']}", org.token(BOB), {"name": "Renamed"})
    assert (renamed.json()["createdBy"], renamed.json()["updatedBy"]) == (ANN, BOB)
    allowed = org.select("free")
    assert (allowed["allowed"], allowed["plan"], allowed["hold"]["held"]) == (True, "free", True)
    assert allowed["hold"]["orgCode"] == ORG and org.hold()[0] == 3
    assert refused_at(org.add(BOB, 6), 3, 3)
    org.later(61)  # the plan shown comes with the cached limit: past the cache, Kinde's free
    assert org.usage(BOB)["plan"] == "free"


def test_another_organizations_member_sees_nothing(org: Org) -> None:
    assert org.add(ANN, 1).status_code == 201
    account = org.items(ANN)[0]
    assert org.items(CARA, OTHER_ORG) == []
    assert org.usage(CARA, OTHER_ORG)["tracked_accounts"]["used"] == 0
    outsider = org.token(CARA, OTHER_ORG)
    for method in ("GET", "PATCH", "DELETE"):
        answer = org.call(method, f"/accounts/{account['id']}", outsider, {"name": "x"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (404, "NOT_FOUND"), method
    assert len(org.items(ANN)) == 1
    # A member of both sees each organization's own list, by the organization signed in to.
    assert org.items(ANN, OTHER_ORG) == [] and len(org.items(ANN)) == 1


def test_the_default_organization_and_a_token_without_one_are_refused(
    org: Org, env: pytest.MonkeyPatch
) -> None:
    in_default = org.kinde.mint_member("kp_dan", DEFAULT_ORGANIZATION)
    no_org = org.kinde.mint("kp_dan")  # no org_code claim at all
    for token in (in_default, no_org):
        for method, path in (("GET", "/accounts"), ("POST", "/accounts"), ("GET", "/usage")):
            answer = org.call(method, path, token, {"name": "A", "accountNumber": "1"})
            assert (answer.status_code, answer.json()["error"]["code"]) == (403, "NO_ORGANIZATION")
        plan_check = org.call("GET", "/plan-check?plan=free", token)
        assert plan_check.json()["error"]["code"] == "NO_ORGANIZATION"
    organization_mode(env, EXCLUDED_ORG_CODES=f"org_staff,{ORG}")
    answer = org.call("GET", "/accounts", org.token(ANN))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "NO_ORGANIZATION")
    assert org.call("GET", "/accounts", org.token(CARA, OTHER_ORG)).status_code == 200


def test_writing_needs_the_permission_when_one_is_configured(org: Org, env: pytest.MonkeyPatch) -> None:
    organization_mode(env, ACCOUNTS_WRITE_PERMISSION=WRITE)
    get_organization_entitlements().clock = org.container
    writer, reader = org.token(ANN, permissions=[WRITE]), org.token(BOB, permissions=["read:reports"])
    created = org.call("POST", "/accounts", writer, {"name": "A", "accountNumber": "1"})
    assert created.status_code == 201
    account_id = created.json()["id"]
    for method, path, body in (
        ("POST", "/accounts", {"name": "B", "accountNumber": "2"}),
        ("PATCH", f"/accounts/{account_id}", {"name": "B"}),
        ("DELETE", f"/accounts/{account_id}", None),
    ):
        answer = org.call(method, path, reader, body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (403, "FORBIDDEN"), method
    assert len(org.items(BOB)) == 1  # reading needs membership only
    assert org.usage(BOB)["canWrite"] is False and org.usage(ANN)["canWrite"] is True
    assert org.call("GET", "/plan-check?plan=free", reader).status_code == 200


def test_the_workflows_routes_serve_the_organizations_count_and_hold(org: Org) -> None:
    for n in range(2):
        assert org.add(ANN, n).status_code == 201
    key = {"x-api-key": "test-usage-key"}
    count = requests.get(f"{org.api}/api/organizations/accounts/count/{ORG}", headers=key, timeout=30)
    assert count.json() == {"orgCode": ORG, "count": 2}
    unknown = requests.get(f"{org.api}/api/organizations/accounts/count/org_none", headers=key, timeout=30)
    assert unknown.json() == {"orgCode": "org_none", "count": 0}
    held = requests.post(
        f"{org.api}/api/organizations/accounts/count/{ORG}/hold?limit=3&plan=free", headers=key, timeout=30
    ).json()
    assert (held["orgCode"], held["count"], held["held"], held["limit"]) == (ORG, 2, True, 3)
    # A member's own token never reads the organization's count; the users' routes are 404 here.
    member = {"Authorization": f"Bearer {org.token(ANN)}"}
    refused = requests.get(f"{org.api}/api/organizations/accounts/count/{ORG}", headers=member, timeout=30)
    assert refused.status_code == 401
    users = requests.get(f"{org.api}/api/users/accounts/count/{ANN}", headers=key, timeout=30)
    assert (users.status_code, users.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_a_pending_upgrade_never_lifts_the_hold_and_an_applied_one_replaces_it(org: Org) -> None:
    for n in range(3):
        assert org.add(ANN, n).status_code == 201
    assert org.select("free")["hold"]["limit"] == 3
    assert refused_at(org.add(BOB, 3), 3, 3)
    up = org.select("pro", apply_after=90)
    assert (up["allowed"], up["plan"], up["hold"]) == (True, "free", None)  # a clear upgrade calls nothing
    org.later(40)
    calls = org.kinde.management_api_calls
    assert refused_at(org.add(BOB, 3), 3, 3)  # pro not applied yet
    assert org.kinde.management_api_calls - calls >= 1  # Kinde asked, fresh
    assert org.hold()[0] == 3
    org.later(51)  # pro applied 90 s after the hold, on Kinde's clock
    assert org.kinde.org_plan_of(ORG) == "pro"
    assert org.add(BOB, 3).status_code == 201  # the hold replaced by pro's limit
    assert org.hold()[0] == 5
    assert org.add(ANN, 4).status_code == 201
    assert refused_at(org.add(ANN, 5), 5, 5)


def test_a_selection_whose_payment_fails_holds_until_the_maximum_then_the_plan_is_back(org: Org) -> None:
    """As for a user: Kinde still shows pro and nothing applied, so the hold is extended past its
    end, up to the longest a downgrade may stay pending; then the organization's plan is back."""
    for n in range(3):
        assert org.add(ANN, n).status_code == 201
    down = org.select("free", fails=True)
    assert (down["allowed"], down["plan"], down["fails"], down["hold"]["limit"]) == (True, "pro", True, 3)
    assert refused_at(org.add(BOB, 3), 3, 3)
    assert org.usage(BOB)["tracked_accounts"] == {"used": 3, "limit": 3, "limitSource": "hold"}
    counter = get_repository("organization").usage.counter(ORG)
    assert counter.hold_ends_at is not None
    org.later(counter.hold_ends_at - org.ours() + 1)  # past holdUntil: still pro at Kinde
    assert refused_at(org.add(BOB, 3), 3, 3)  # extended, not lapsed
    assert org.hold()[0] == 3
    org.later(35 * 86400)  # past DOWNGRADE_HOLD_MAX_SECONDS since the hold was placed
    added = org.add(BOB, 3)
    assert added.status_code == 201, added.text
    assert org.usage(ANN)["tracked_accounts"]["limit"] == 5


def test_forty_concurrent_adds_by_eight_members_at_limit_five_leave_five(
    env: pytest.MonkeyPatch, kinde: KindeStandIn, endpoint: str
) -> None:
    """Through the whole add (the organization's limit from the Management API, the counter's
    conditional write) against a single-threaded moto server, whose requests interleave."""
    env.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
    organization_mode(env)
    code = f"org_race_{time.time_ns()}"
    kinde.set_org_plan(code, "pro")
    from accounts_api.service import NewAccount, service

    members = [f"kp_member_{i}" for i in range(8)]
    claims = {"org_code": code, "permissions": []}
    principals = [Principal(user, kinde.mint_member(user, code), claims) for user in members]
    start = threading.Barrier(40)

    def add(i: int) -> str:
        start.wait()
        try:
            service().add(principals[i % 8], NewAccount(f"Account {i}", f"R-{i:03d}"), None)
        except ApiError as error:
            return error.code
        return "created"

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = Counter(pool.map(add, range(40)))
    assert results == {"created": 5, "LIMIT_REACHED": 35}
    store = get_repository()
    assert store.usage.usage_count(code) == 5
    accounts = store.list_page(code, 100).items
    assert len(accounts) == 5 and {account.created_by for account in accounts} <= set(members)


def test_organization_deleted_removes_every_item_of_the_organization(org: Org) -> None:
    for n in range(3):
        assert org.add(ANN, n).status_code == 201
    assert org.add(CARA, 1, OTHER_ORG).status_code == 201
    org.kinde.api_url = org.api
    answer = requests.post(
        f"{org.kinde.url}/dev/webhook", json={"type": "organization.deleted", "org": ORG}, timeout=30
    ).json()
    assert answer["delivered"] and answer["response"] == {"received": True}, answer
    store = get_repository("organization")
    assert store.list_page(ORG, 100).items == [] and store.usage.usage_count(ORG) == 0
    items = store._db.query(
        TableName="AccountsTable",
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORG#{ORG}"}},
    )["Items"]
    assert items == []
    assert len(store.list_page(OTHER_ORG, 100).items) == 1  # another organization keeps its own
