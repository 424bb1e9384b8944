"""The stand-in's organizations: members signed in to one with its claims, organization plans that
change at once, later or never, the default organization, and the dev endpoints that drive them."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import KindeStandIn
from local.kinde.organizations import DEFAULT_ORGANIZATION
from tests.integration.test_kinde_oauth import DASHBOARD, auth_query, code_of, pkce, redeem
from tests.integration.test_kinde_standin import Receiver


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[KindeStandIn]:
    kinde = KindeStandIn(
        copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json", dashboard_urls=[DASHBOARD]
    ).start()
    yield kinde
    kinde.stop()


def claims_of(standin: KindeStandIn, token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        token, standin.keys[-1].private_key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
    )
    return decoded


def dev(standin: KindeStandIn, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{standin.url}{path}", json=body, timeout=10)


def test_a_user_in_no_organization_is_signed_in_to_the_default_one(standin: KindeStandIn) -> None:
    answer = dev(standin, "/dev/token", {"user": "kp_solo"}).json()
    claims = claims_of(standin, answer["access_token"])
    assert (claims["org_code"], claims["org_codes"], claims["permissions"]) == (
        DEFAULT_ORGANIZATION,
        [DEFAULT_ORGANIZATION],
        [],
    )
    assert answer["org"] == DEFAULT_ORGANIZATION and answer["plan"] == "free"  # the user's own plan
    organization = standin.organizations.get(DEFAULT_ORGANIZATION)
    assert organization is not None and organization.is_default


def test_dev_token_signs_a_member_in_to_an_organization_with_its_plan_and_permissions(
    standin: KindeStandIn,
) -> None:
    answer = dev(
        standin,
        "/dev/token",
        {"user": "kp_ann", "org": "org_acme", "plan": "pro", "permissions": ["write:tracked_accounts"]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = claims_of(standin, body["access_token"])
    assert (claims["sub"], claims["org_code"], claims["org_codes"]) == ("kp_ann", "org_acme", ["org_acme"])
    assert claims["permissions"] == ["write:tracked_accounts"] == body["permissions"]
    assert (body["org"], body["plan"]) == ("org_acme", "pro")
    assert standin.org_plan_of("org_acme") == "pro" and standin.plan_of("kp_ann") == "free"  # the org's
    # A second organization: the token names the one asked for, the list names both.
    beta = dev(standin, "/dev/token", {"user": "kp_ann", "org": "org_beta"}).json()
    second = claims_of(standin, beta["access_token"])
    assert (second["org_code"], second["org_codes"], second["permissions"]) == (
        "org_beta",
        ["org_acme", "org_beta"],
        [],
    )
    # Without an org the first one is chosen; permissions kept unless given again.
    first = claims_of(standin, dev(standin, "/dev/token", {"user": "kp_ann"}).json()["access_token"])
    assert (first["org_code"], first["permissions"]) == ("org_acme", ["write:tracked_accounts"])
    revoked = dev(standin, "/dev/token", {"user": "kp_ann", "org": "org_acme", "permissions": []}).json()
    assert claims_of(standin, revoked["access_token"])["permissions"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"user": "kp_a", "org": "org acme"}, "organization code"),
        ({"user": "kp_a", "org": 5}, "organization code"),
        ({"user": "kp_a", "org": "org_a", "permissions": "write"}, "permissions"),
        ({"user": "kp_a", "org": "org_a", "permissions": ["write tracked"]}, "permissions"),
        ({"user": "kp_a", "permissions": ["write:tracked_accounts"]}, "org"),
        ({"user": "kp_a", "org": "org_a", "plan": "gold"}, "Unknown plan"),
    ],
)
def test_dev_token_refuses_what_cannot_be_a_member(
    standin: KindeStandIn, body: dict[str, Any], message: str
) -> None:
    answer = dev(standin, "/dev/token", body)
    assert answer.status_code == 400 and message in answer.json()["errors"][0]["message"]


def test_an_organizations_plan_changes_at_once_later_or_never(standin: KindeStandIn) -> None:
    decided: list[tuple[Any, ...]] = []

    def workflow(*args: Any) -> dict[str, Any]:
        decided.append(args)
        return {"allowed": True}

    standin.plan_change_hook = workflow
    standin.set_org_plan("org_acme", "pro")
    standin.join_organization("kp_ann", "org_acme")
    at_once = dev(standin, "/dev/plan", {"org": "org_acme", "plan": "free"}).json()
    assert (at_once["org"], at_once["user"], at_once["from"], at_once["plan"]) == (
        "org_acme",
        "kp_ann",
        "pro",
        "free",
    )
    assert decided == [("kp_ann", "pro", "free", "org_acme")]  # the member selecting, and the org
    assert standin.plan_of("kp_ann") == "free"  # the member's own plan never moved
    selection = {"org": "org_acme", "user": "kp_bob", "plan": "pro", "applyAfter": 60}
    later = dev(standin, "/dev/plan", selection).json()
    assert (later["plan"], later["user"]) == ("free", "kp_bob") and later["applyAfter"] == 60
    standin.clock_offset += 61
    assert standin.org_plan_of("org_acme") == "pro"
    never = dev(standin, "/dev/plan", {"org": "org_acme", "plan": "free", "fails": True}).json()
    assert (never["fails"], never["plan"]) == (True, "pro")
    assert standin.org_plan_of("org_acme") == "pro"
    # The users' plans and the organization's live side by side: a user's change moves only theirs.
    dev(standin, "/dev/plan", {"user": "kp_ann", "plan": "pro"})
    assert (standin.plan_of("kp_ann"), standin.org_plan_of("org_acme")) == ("pro", "pro")


def test_an_organization_webhook_names_its_code_and_the_organization_is_gone(standin: KindeStandIn) -> None:
    received = Receiver(200, {"received": True})
    standin.api_url = received.server.url
    try:
        standin.join_organization("kp_ann", "org_gone")
        answer = dev(standin, "/dev/webhook", {"type": "organization.deleted", "org": "org_gone"})
        assert answer.status_code == 200 and answer.json()["delivered"], answer.text
        body = received.requests[0][2]
        claims = claims_of(standin, body.decode())
        assert claims["type"] == "organization.deleted"
        assert claims["data"] == {"organization": {"code": "org_gone"}}
        assert standin.organizations.get("org_gone") is None
        assert standin.organizations.codes_of("kp_ann") == [DEFAULT_ORGANIZATION]
    finally:
        received.server.stop()


def test_the_sign_in_page_signs_a_member_in_to_the_organization_typed(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    page = requests.get(f"{standin.url}/oauth2/auth", params=auth_query(challenge), timeout=10)
    assert 'id="org" name="org"' in page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    posted = requests.post(
        f"{standin.url}/oauth2/auth",
        data={**fields, "user": "kp_cara", "org": "org_acme", "plan": "pro"},
        headers={"Origin": standin.url},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 302, posted.text
    tokens = redeem(standin, code_of(posted.headers["Location"]), verifier).json()
    claims = claims_of(standin, tokens["access_token"])
    assert (claims["sub"], claims["org_code"], claims["org_codes"]) == ("kp_cara", "org_acme", ["org_acme"])
    assert standin.org_plan_of("org_acme") == "pro" and standin.plan_of("kp_cara") == "free"
    # A refresh keeps the organization the session signed in to.
    standin.join_organization("kp_cara", "org_aaa")  # now first in the list
    refreshed = requests.post(
        f"{standin.url}/oauth2/token",
        data={
            "client_id": "plan-guard-dev",
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        },
        headers={"Origin": DASHBOARD},
        timeout=10,
    ).json()
    assert claims_of(standin, refreshed["access_token"])["org_code"] == "org_acme"
    bad = requests.post(
        f"{standin.url}/oauth2/auth",
        data={**fields, "user": "kp_cara", "org": "org acme"},
        headers={"Origin": standin.url},
        allow_redirects=False,
        timeout=10,
    )
    assert bad.status_code == 422 and "organization code" in bad.text and 'value="org acme"' in bad.text


def test_organizations_and_their_members_survive_a_restart(standin: KindeStandIn, tmp_path: Path) -> None:
    standin.mint_member("kp_ann", "org_acme", permissions=["write:tracked_accounts"])
    standin.set_org_plan("org_acme", "pro")
    reloaded = KindeStandIn(copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json")
    reloaded._server.server_close()
    assert reloaded.organizations.claims("kp_ann")["permissions"] == ["write:tracked_accounts"]
    assert reloaded.org_plan_of("org_acme") == "pro"
    default = reloaded.organizations.get(DEFAULT_ORGANIZATION)
    assert default is not None and default.is_default
