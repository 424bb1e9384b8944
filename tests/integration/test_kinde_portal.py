"""The stand-in's self-serve portal over HTTP: the Account API's one-time ``portal_link``, the page
it opens, and a plan chosen there going through the plan-change path (Kinde's workflow)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import KindeStandIn
from local.kinde.portal import Timing, select_plan

DASHBOARD = "http://127.0.0.1:3000"
RETURN_URL = f"{DASHBOARD}/?pageSize=2&from=kinde-portal"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[KindeStandIn]:
    kinde = KindeStandIn(
        copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json", dashboard_urls=[DASHBOARD]
    ).start()
    yield kinde
    kinde.stop()


def portal_link(kinde: KindeStandIn, user: str, **query: str) -> requests.Response:
    return requests.get(
        f"{kinde.url}/account_api/v1/portal_link",
        params={"return_url": RETURN_URL, "subnav": "plan_selection", **query},
        headers={"Authorization": f"Bearer {kinde.mint(user)}", "Origin": DASHBOARD},
        timeout=10,
    )


def open_portal(kinde: KindeStandIn, user: str) -> str:
    """The portal's page URL for ``user`` (its link used)."""
    link = portal_link(kinde, user).json()["url"]
    opened = requests.get(link, allow_redirects=False, timeout=10)
    assert opened.status_code == 303
    return f"{kinde.url}{opened.headers['Location']}"


def choose(kinde: KindeStandIn, page_url: str, origin: str | None = None, **form: str) -> requests.Response:
    headers = {"Origin": origin or kinde.url}
    return requests.post(page_url, data={"when": "now", **form}, headers=headers, timeout=30)


def test_portal_link_is_kindes_shape_and_one_time(standin: KindeStandIn) -> None:
    answer = portal_link(standin, "kp_portal")
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == DASHBOARD
    url = answer.json()["url"]
    assert url.startswith(f"{standin.url}/portal?key=")
    first = requests.get(url, allow_redirects=False, timeout=10)
    assert first.status_code == 303 and first.headers["Location"].startswith("/portal/")
    again = requests.get(url, allow_redirects=False, timeout=10)
    assert again.status_code == 400 and "already used" in again.text
    assert standin.account_api_calls == 1  # the Account API's faults apply to it too


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"return_url": "https://evil.example/"}, "is not on the application's origins"),
        ({"return_url": "/relative"}, "is not on the application's origins"),
        # What Python reads as 127.0.0.1:3000 and a browser as evil.example (an open redirect).
        ({"return_url": "http://evil.example\\@127.0.0.1:3000/"}, "is not on the application's origins"),
        ({"return_url": "http://evil.example\\.127.0.0.1:3000/"}, "is not on the application's origins"),
        ({"return_url": "http://user@127.0.0.1:3000/"}, "is not on the application's origins"),
        ({"return_url": "http://127.0.0.1:3000@evil.example/"}, "is not on the application's origins"),
        ({"return_url": "http://127.0.0.1:3000\t@evil.example/"}, "is not on the application's origins"),
        ({"return_url": "http://127.0.0.1:3001/"}, "is not on the application's origins"),
        ({"return_url": "https://127.0.0.1:3000/"}, "is not on the application's origins"),
        ({"subnav": "billing"}, "is not a portal section"),
    ],
)
def test_portal_link_refuses_what_kinde_would_not_send_back(
    standin: KindeStandIn, query: dict[str, str], message: str
) -> None:
    answer = portal_link(standin, "kp_portal", **query)
    assert answer.status_code == 400
    assert message in answer.json()["errors"][0]["message"]


def test_the_portal_sends_back_to_the_dashboard_only(standin: KindeStandIn) -> None:
    """The page's way back is the return URL, unchanged, once it passed the check."""
    page = requests.get(open_portal(standin, "kp_portal"), timeout=10)
    assert f'id="return" href="{RETURN_URL.replace("&", "&amp;")}"' in page.text


def test_portal_link_needs_the_users_token(standin: KindeStandIn) -> None:
    answer = requests.get(
        f"{standin.url}/account_api/v1/portal_link", params={"return_url": RETURN_URL}, timeout=10
    )
    assert answer.status_code == 401


def test_a_denied_change_shows_kindes_message_and_reasons(standin: KindeStandIn) -> None:
    asked: list[tuple[str, str | None, str]] = []

    def deny(user: str, current: str | None, requested: str) -> dict[str, Any]:
        asked.append((user, current, requested))
        reasons = ["Your current usage is 5 <b>", "The free plan allows 3"]
        return {"allowed": False, "message": "Usage exceeds the new plan's limits.", "reasons": reasons}

    standin.plan_change_hook = deny
    standin.set_plan("kp_portal", "pro")
    page_url = open_portal(standin, "kp_portal")
    page = requests.get(page_url, timeout=10).text
    assert re.findall(r'name="plan" value="([^"]+)"', page) == ["free"]  # not the current plan
    assert f'href="{RETURN_URL.replace("&", "&amp;")}"' in page
    shown = choose(standin, page_url, plan="free")
    assert shown.url == page_url  # answered by a redirect to the page: a reload never re-sends it
    assert asked == [("kp_portal", "pro", "free")]
    assert "Plan change denied" in shown.text
    assert '<p class="deny-message">Usage exceeds the new plan&#x27;s limits.</p>' in shown.text
    assert "<li>Your current usage is 5 &lt;b&gt;</li><li>The free plan allows 3</li>" in shown.text
    assert standin.plan_of("kp_portal") == "pro"


def test_an_accepted_change_applies_at_once_or_later(standin: KindeStandIn) -> None:
    standin.set_plan("kp_portal", "pro")
    page_url = open_portal(standin, "kp_portal")
    later = choose(standin, page_url, plan="free", when="later", delay="600")
    assert "Plan change accepted" in later.text and "Until then you stay on pro." in later.text
    assert "A change to free is waiting" in later.text
    assert standin.plan_of("kp_portal") == "pro" and standin.pending["kp_portal"][0] == "free"
    now = choose(standin, page_url, plan="free")
    assert "Plan changed" in now.text and standin.plan_of("kp_portal") == "free"
    assert 'id="current-plan">free<' in now.text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"plan": "free", "when": "later", "delay": "soon"}, "Give the delay in whole seconds"),
        ({"plan": "free", "when": "whenever"}, "Choose when the change applies."),
        ({"plan": "gold"}, "Unknown plan"),
    ],
)
def test_the_portal_form_says_what_is_wrong(
    standin: KindeStandIn, form: dict[str, str], message: str
) -> None:
    page_url = open_portal(standin, "kp_portal")
    assert message in choose(standin, page_url, **form).text
    assert standin.plan_of("kp_portal") == "free"


def test_a_choice_from_another_site_changes_nothing(standin: KindeStandIn) -> None:
    standin.set_plan("kp_portal", "pro")
    page_url = open_portal(standin, "kp_portal")
    refused = choose(standin, page_url, origin="https://evil.example", plan="free")
    assert refused.status_code == 403
    assert standin.plan_of("kp_portal") == "pro"


def test_a_closed_portal_says_so(standin: KindeStandIn) -> None:
    page = requests.get(f"{standin.url}/portal/not-a-session", timeout=10)
    assert page.status_code == 404 and "This portal session has ended" in page.text
    posted = choose(standin, f"{standin.url}/portal/not-a-session", plan="free")
    assert posted.status_code == 404


def test_the_timing_reaches_the_one_plan_change_call() -> None:
    """``select_plan`` passes the portal's choice through: ``applyAfter``, and ``fails`` to a
    plan-change path that takes it."""

    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, dict[str, Any]]] = []

        def request(
            self, user: str, plan: str, apply_after: float = 0, fails: bool = False
        ) -> dict[str, Any]:
            self.calls.append((user, plan, {"apply_after": apply_after, "fails": fails}))
            return {}

    recorder = Recorder()
    for timing in (Timing(), Timing(apply_after=30), Timing(fails=True)):
        select_plan(recorder, "kp_t", "free", timing)  # type: ignore[arg-type]
    assert [call[2] for call in recorder.calls] == [
        {"apply_after": 0, "fails": False},
        {"apply_after": 30, "fails": False},
        {"apply_after": 0, "fails": True},
    ]


def test_the_portal_url_query_is_what_the_sdk_sends(standin: KindeStandIn) -> None:
    """The SDK spells it ``subnav``; Kinde's docs also show ``sub_nav``: both open the section."""
    answer = portal_link(standin, "kp_portal", subnav="", sub_nav="plan_selection")
    assert answer.status_code == 200
    key = parse_qs(urlsplit(answer.json()["url"]).query)["key"][0]
    assert standin.portal.links[key].subnav == "plan_selection"
