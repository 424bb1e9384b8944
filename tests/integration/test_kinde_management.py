"""The Management API client against the Kinde stand-in over HTTP: what it reads, the M2M token it
keeps (one mint for many calls, one re-mint on a refusal), and every way Kinde can fail it, each
answered as the Account API client answers them (``EntitlementUnavailable`` with its Retry-After),
or as ``KindeRejected`` when Kinde understood and said no."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

import boto3
import pytest
from planguard import kinde_http
from planguard.errors import EntitlementUnavailable
from planguard.kinde_management import (
    UNLIMITED_SENTINEL,
    KindeRejected,
    ManagementApi,
    get_management_api,
)

from local.kinde import Fault, KindeStandIn
from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET
from local.kinde.organizations import org_plan_key

USER = "kp_m2m_user"
FEATURE = "tracked_accounts"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(
    kinde: KindeStandIn,
    *,
    secret: str = DEV_M2M_CLIENT_SECRET,
    clock: Callable[[], float] = time.monotonic,
    waits: list[float] | None = None,
    forget: Callable[[], None] = lambda: None,
) -> ManagementApi:
    return ManagementApi(
        kinde.url,
        DEV_M2M_CLIENT_ID,
        lambda: secret,
        forget_secret=forget,
        clock=clock,
        now=lambda: datetime.fromtimestamp(kinde.parts.plans.now(), UTC),  # Kinde's clock, as it runs ahead
        sleep=(waits if waits is not None else []).append,
    )


def customer(kinde: KindeStandIn, api: ManagementApi, user: str = USER, plan: str = "pro") -> str:
    kinde.set_plan(user, plan)
    found = api.user_customer_id(user, None)
    assert found is not None
    return found


def http(kinde: KindeStandIn, method: str, path: str, *, body: bytes | None = None, **headers: str) -> Any:
    request = urllib.request.Request(f"{kinde.url}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


# -- what it reads ------------------------------------------------------------------------------
def test_a_users_customer_entitlement_and_plan(kinde: KindeStandIn) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    found = api.customer_entitlement(customer_id, FEATURE, None)
    assert (found.limit, found.missing) == (5, False)
    [plan] = found.plans
    assert plan.code == "pro"
    assert plan.subscribed_on is not None
    assert abs(plan.subscribed_on.timestamp() - kinde.subscribed[USER]) < 1
    assert api.user_customer_id("kp_never_seen", None) is None  # Kinde has no such user: 404


def test_organizations_the_default_one_and_one_kinde_does_not_know(kinde: KindeStandIn) -> None:
    api = make_client(kinde)
    default = api.organization("org_default", None)
    assert default is not None
    assert (default.is_default, default.billing_customer_id, default.agreements) == (True, None, ())
    kinde.management.add_organization("org_acme")
    kinde.set_plan(org_plan_key("org_acme"), "pro")
    acme = api.organization("org_acme", None)
    assert acme is not None
    assert not acme.is_default
    assert acme.billing_customer_id is not None
    [agreement] = acme.agreements
    assert agreement.plan_code == "pro"
    assert api.customer_entitlement(acme.billing_customer_id, FEATURE, None).limit == 5
    assert [a.id for a in api.agreements(acme.billing_customer_id, FEATURE, None)] == [agreement.agreement_id]
    assert api.organization("org_nobody_knows", None) is None


def test_every_page_of_the_entitlements_is_read_500_at_a_time(kinde: KindeStandIn) -> None:
    kinde.plan_limits["big"] = {**{f"feature_{n:02d}": n for n in range(11)}, FEATURE: 9}
    api = make_client(kinde)
    customer_id = customer(kinde, api, plan="big")
    calls = kinde.management_api_calls
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == 9
    assert kinde.management_api_calls - calls == 1  # 12 entitlements, one page: page_size=500 was sent
    kinde.management.max_page_size = 5  # Kinde answering fewer than asked: has_more, starting_after
    calls = kinde.management_api_calls
    found = api.customer_entitlement(customer_id, FEATURE, None)
    assert (found.limit, [p.code for p in found.plans]) == (9, ["big"])
    assert kinde.management_api_calls - calls == 3


def test_agreements_every_page_only_the_unexpired_one_carrying_the_feature(kinde: KindeStandIn) -> None:
    kinde.plan_limits["starter"] = {"other_feature": 1}
    api = make_client(kinde)
    customer_id = customer(kinde, api, plan="free")
    for n in range(12):  # each plan change makes a new agreement and ends the one before
        kinde.clock_offset += 60
        kinde.set_plan(USER, ["pro", "free", "starter"][n % 3])
        kinde.management.current_agreement(USER)
    kinde.clock_offset += 60
    kinde.set_plan(USER, "pro")
    calls = kinde.management_api_calls
    [current] = api.agreements(customer_id, FEATURE, None)
    assert kinde.management_api_calls - calls == 1  # the stand-in filters by feature: 9 fit one page
    assert (current.plan_code, current.expires_on) == ("pro", None)
    history = kinde.management.history[USER]  # 13 agreements, 9 with the feature, 1 not expired
    assert (
        len(history),
        sum(r.plan != "starter" for r in history),
        sum(r.expires is None for r in history),
    ) == (
        13,
        9,
        1,
    )
    kinde.management.max_page_size = 4
    calls = kinde.management_api_calls
    assert [a.id for a in api.agreements(customer_id, FEATURE, None)] == [current.id]
    assert kinde.management_api_calls - calls == 3  # 9 agreements, 4 a page
    # A plan change: the agreement an earlier read gave is refused, a re-read gives the new one.
    kinde.clock_offset += 60
    kinde.set_plan(USER, "free")
    [after] = api.agreements(customer_id, FEATURE, None)
    assert after.id != current.id and after.plan_code == "free"
    with pytest.raises(KindeRejected) as refused:
        api.meter_usage(current.id, FEATURE, 2, None)
    assert refused.value.status == 400 and "AGREEMENT_EXPIRED" in refused.value.message


def test_meter_usage_is_recorded_as_an_absolute_value(kinde: KindeStandIn) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    [agreement] = api.agreements(customer_id, FEATURE, None)
    api.meter_usage(agreement.id, FEATURE, 4, None)
    api.meter_usage(agreement.id, FEATURE, 3, None)
    status, body = http(kinde, "GET", f"/dev/meter_usage?user={USER}")
    assert status == 200
    assert [(r["agreementId"], r["featureCode"], r["value"], r["type"]) for r in body["records"]] == [
        (agreement.id, FEATURE, 4, "absolute"),
        (agreement.id, FEATURE, 3, "absolute"),
    ]
    assert all(r["at"].endswith("Z") for r in body["records"])
    with pytest.raises(KindeRejected) as refused:
        api.meter_usage(agreement.id, "no_such_feature", 1, None)
    assert refused.value.status == 400


def test_a_missing_feature_is_logged_with_the_codes_kinde_has(
    kinde: KindeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    kinde.plan_limits["starter"] = {"feat_0195a1": 2, "feat_0195a2": 1}
    api = make_client(kinde)
    customer_id = customer(kinde, api, plan="starter")
    with caplog.at_level(logging.ERROR, "planguard.kinde_management"):
        found = api.customer_entitlement(customer_id, FEATURE, None)
    assert (found.limit, found.missing, [p.code for p in found.plans]) == (0, True, ["starter"])
    [record] = [r for r in caplog.records if r.name == "planguard.kinde_management"]
    assert record.levelno == logging.ERROR
    assert "feat_0195a1, feat_0195a2" in record.getMessage()


@pytest.mark.parametrize(
    ("sent", "limit"),
    [
        (None, None),
        (UNLIMITED_SENTINEL, None),
        (UNLIMITED_SENTINEL + 1, None),
        (UNLIMITED_SENTINEL - 1, 2147483646),
    ],
)
def test_no_maximum_is_unlimited_however_kinde_spells_it(
    kinde: KindeStandIn, sent: int | None, limit: int | None
) -> None:
    kinde.plan_limits["max"] = {FEATURE: sent}
    api = make_client(kinde)
    customer_id = customer(kinde, api, plan="max")
    kinde.management.unlimited_as = UNLIMITED_SENTINEL
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == (None if sent is None else limit)
    kinde.management.unlimited_as = None
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == limit


# -- the token --------------------------------------------------------------------------------
def test_100_calls_mint_one_token_until_a_minute_before_it_expires(kinde: KindeStandIn) -> None:
    clock = Clock()
    api = make_client(kinde, clock=clock)
    customer_id = customer(kinde, api)
    for _ in range(100):
        assert api.customer_entitlement(customer_id, FEATURE, None).limit == 5
    assert (api.mints, kinde.management.mints, kinde.m2m_token_calls) == (1, 1, 1)
    clock.now += 3600 - 61  # expires_in 3600: still more than a minute left
    api.user_customer_id(USER, None)
    assert kinde.management.mints == 1
    clock.now += 2
    api.user_customer_id(USER, None)
    assert (api.mints, kinde.management.mints) == (2, 2)


@pytest.mark.parametrize("refusal", ["revoked", "401", "403"])
def test_a_refused_token_is_dropped_and_minted_once_more(kinde: KindeStandIn, refusal: str) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    if refusal == "revoked":
        kinde.management.revoke_tokens()
    else:
        kinde.management_faults[:] = [Fault(int(refusal))]
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == 5
    assert kinde.management.mints == 2
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == 5
    assert kinde.management.mints == 2  # the new token is kept


def test_a_fresh_token_refused_too_is_kindes_answer_not_a_loop(
    kinde: KindeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_client(kinde)
    kinde.set_plan(USER, "pro")
    kinde.management.scopes.discard("read:users")  # the application lacks a scope it needs
    calls = kinde.management_api_calls
    with caplog.at_level(logging.ERROR), pytest.raises(KindeRejected) as refused:
        api.user_customer_id(USER, None)
    assert refused.value.status == 403 and "read:users" in refused.value.message
    assert (kinde.management.mints, kinde.management_api_calls - calls) == (2, 2)
    assert any("refused a freshly minted token" in r.getMessage() for r in caplog.records)


def test_a_wrong_secret_fails_closed_and_the_secret_is_read_again(
    kinde: KindeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    forgotten: list[bool] = []
    secret = "not-the-secret-" + "x" * 20
    api = make_client(kinde, secret=secret, forget=lambda: forgotten.append(True))
    with caplog.at_level(logging.DEBUG), pytest.raises(EntitlementUnavailable):
        api.user_customer_id(USER, None)
    assert forgotten == [True]
    assert kinde.management_api_calls == 0  # nothing was asked without a token
    assert "401 invalid_client" in caplog.text
    assert secret not in caplog.text and DEV_M2M_CLIENT_SECRET not in caplog.text


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        (Fault(503, headers={"Retry-After": "1"}), [1.0]),
        (Fault(429, headers={"RateLimit-Reset": "2"}), [2.0]),
        (Fault(0, delay_seconds=0.5), []),  # slow, within the read timeout
    ],
)
def test_the_token_grant_is_retried_within_bounds(
    kinde: KindeStandIn, fault: Fault, waits: list[float]
) -> None:
    slept: list[float] = []
    api = make_client(kinde, waits=slept)
    kinde.set_plan(USER, "pro")
    kinde.m2m_token_faults[:] = [fault]
    assert api.user_customer_id(USER, None) is not None
    assert slept == waits
    assert kinde.management.mints == 1


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "bearer", "expires_in": 3600},
        {"access_token": "", "expires_in": 3600},
        b"{",
        [],
        {"access_token": "t", "expires_in": "soon"},
    ],
)
def test_a_token_answer_we_cannot_read_fails_closed(kinde: KindeStandIn, body: Any) -> None:
    kinde.m2m_token_faults[:] = [Fault(200, body=body)]
    with pytest.raises(EntitlementUnavailable):
        make_client(kinde).user_customer_id(USER, None)
    assert kinde.management_api_calls == 0


# -- Kinde failing ------------------------------------------------------------------------------
def test_429_honours_ratelimit_reset(kinde: KindeStandIn) -> None:
    slept: list[float] = []
    api = make_client(kinde, waits=slept)
    customer_id = customer(kinde, api)
    kinde.management_faults[:] = [Fault(429, headers={"RateLimit-Reset": "1"})]
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == 5
    assert slept == [1.0]
    kinde.management_faults[:] = [Fault(429, headers={"RateLimit-Reset": "30"})]
    with pytest.raises(EntitlementUnavailable) as unavailable:
        api.customer_entitlement(customer_id, FEATURE, None)
    assert unavailable.value.headers == {"Retry-After": "30"}
    assert slept == [1.0]  # 30 s is past what an invocation waits: fail now, say when to retry


def test_5xx_is_retried_then_unavailable(kinde: KindeStandIn) -> None:
    slept: list[float] = []
    api = make_client(kinde, waits=slept)
    customer_id = customer(kinde, api)
    kinde.management_faults[:] = [Fault(502), Fault(500, headers={"Retry-After": "0"})]
    assert api.customer_entitlement(customer_id, FEATURE, None).limit == 5
    kinde.management_faults[:] = [Fault(503)] * 3
    calls = kinde.management_api_calls
    with pytest.raises(EntitlementUnavailable) as unavailable:
        api.customer_entitlement(customer_id, FEATURE, None)
    assert kinde.management_api_calls - calls == kinde_http.MAX_ATTEMPTS
    assert int(unavailable.value.headers["Retry-After"]) >= 1
    assert all(0 <= wait <= kinde_http.MAX_WAIT_SECONDS for wait in slept)


def test_every_call_is_bounded_by_the_invocations_time_left(
    kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    calls = kinde.management_api_calls
    with pytest.raises(EntitlementUnavailable):  # too little time left to call at all
        api.customer_entitlement(customer_id, FEATURE, time.monotonic() + 1.2)
    assert kinde.management_api_calls == calls
    # Kinde slower than the time left: the call gives up before the invocation ends.
    monkeypatch.setattr(kinde_http, "READ_TIMEOUT_SECONDS", 3.0)
    kinde.management_faults[:] = [Fault(0, delay_seconds=2.5)] * 3
    started = time.monotonic()
    deadline = started + 4.0
    with pytest.raises(EntitlementUnavailable):
        api.customer_entitlement(customer_id, FEATURE, deadline)
    assert time.monotonic() < deadline - kinde_http.SAFETY_MARGIN_SECONDS + 0.3


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"<html>502</html>",
        [],
        {"has_more": True, "entitlements": []},  # more, but not where
        {
            "has_more": False,
            "entitlements": [{"id": "e", "feature_code": FEATURE, "entitlement_limit_max": "5"}],
        },
        {
            "has_more": False,
            "entitlements": [{"id": "e", "feature_code": FEATURE, "entitlement_limit_max": -1}],
        },
        {
            "has_more": False,
            "entitlements": [{"id": "e", "feature_code": FEATURE, "entitlement_limit_max": 2.5}],
        },
        b'{"has_more": false, "entitlements": [{"feature_code": "tracked_accounts", '
        b'"entitlement_limit_max": NaN}]}',
    ],
    ids=["truncated", "html", "array", "more-nowhere", "string-limit", "negative", "fraction", "nan"],
)
def test_an_answer_we_cannot_read_fails_closed(kinde: KindeStandIn, body: Any) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    kinde.management_faults[:] = [Fault(200, body=body)]
    with pytest.raises(EntitlementUnavailable):
        api.customer_entitlement(customer_id, FEATURE, None)


def test_a_page_that_repeats_itself_ends_the_read(kinde: KindeStandIn) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    page = {
        "has_more": True,
        "entitlements": [{"id": "e_1", "feature_code": "x", "entitlement_limit_max": 1}],
    }
    kinde.management_faults[:] = [Fault(200, body=page)] * 2
    with pytest.raises(EntitlementUnavailable):
        api.customer_entitlement(customer_id, FEATURE, None)


def test_a_refusal_is_kindes_answer_with_its_words_not_retried(kinde: KindeStandIn) -> None:
    api = make_client(kinde)
    customer_id = customer(kinde, api)
    refusal = {"errors": [{"code": "CUSTOMER_INVALID", "message": "No such customer\n"}]}
    kinde.management_faults[:] = [Fault(400, body=refusal)]
    calls = kinde.management_api_calls
    with pytest.raises(KindeRejected) as refused:
        api.customer_entitlement(customer_id, FEATURE, None)
    assert (refused.value.status, refused.value.message) == (400, "CUSTOMER_INVALID: No such customer")
    assert kinde.management_api_calls - calls == 1
    kinde.management_faults[:] = [Fault(404, body=b"")]
    with pytest.raises(KindeRejected) as missing:  # a list that is not there is no "None"
        api.customer_entitlement(customer_id, FEATURE, None)
    assert missing.value.status == 404


# -- the stand-in's side ------------------------------------------------------------------------
def test_the_management_api_refuses_a_missing_or_a_users_token(kinde: KindeStandIn) -> None:
    kinde.set_plan(USER, "pro")
    path = f"/api/v1/user?id={USER}&expand=billing"
    assert http(kinde, "GET", path)[0] == 401
    assert http(kinde, "GET", path, Authorization="Bearer not-a-jwt")[0] == 401
    assert http(kinde, "GET", path, Authorization=f"Bearer {kinde.mint(USER)}")[0] == 403
    m2m_lookalike = kinde.mint(None, gty=["client_credentials"])  # signed, but no M2M token it minted
    assert http(kinde, "GET", path, Authorization=f"Bearer {m2m_lookalike}")[0] in (401, 403)


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"client_secret": "wrong"}, 401),
        ({"client_id": "someone-else"}, 401),
        ({"audience": "https://elsewhere.example.com/api"}, 400),
        ({}, 200),
    ],
)
def test_the_client_credentials_grant(kinde: KindeStandIn, form: dict[str, str], status: int) -> None:
    fields = {
        "grant_type": "client_credentials",
        "client_id": DEV_M2M_CLIENT_ID,
        "client_secret": DEV_M2M_CLIENT_SECRET,
        "audience": f"{kinde.url}/api",
        **form,
    }
    body = urlencode(fields).encode()
    got, answer = http(
        kinde, "POST", "/oauth2/token", body=body, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert got == status
    if status == 200:
        assert answer["token_type"] == "bearer" and answer["expires_in"] == 3600
        user_path = "/api/v1/organization?code=org_default"
        assert http(kinde, "GET", user_path, Authorization=f"Bearer {answer['access_token']}")[0] == 200
    else:
        assert "access_token" not in answer and answer["error"]


# -- the container's client ---------------------------------------------------------------------
def test_the_audience_asked_for_is_a_setting(kinde: KindeStandIn) -> None:
    elsewhere = ManagementApi(
        kinde.url, DEV_M2M_CLIENT_ID, lambda: DEV_M2M_CLIENT_SECRET, audience=f"{kinde.url}/api/v1"
    )
    with pytest.raises(EntitlementUnavailable):  # the stand-in, like Kinde, grants one audience
        elsewhere.organization("org_default", None)
    assert make_client(kinde).audience == f"{kinde.url}/api"


def test_no_client_without_an_m2m_configuration(env: pytest.MonkeyPatch) -> None:
    assert get_management_api() is None


def test_the_containers_client_with_the_local_secret(env: pytest.MonkeyPatch, kinde: KindeStandIn) -> None:
    env.setenv("KINDE_M2M_CLIENT_ID", DEV_M2M_CLIENT_ID)
    env.setenv("KINDE_M2M_CLIENT_SECRET", DEV_M2M_CLIENT_SECRET)
    api = get_management_api()
    assert api is not None and api is get_management_api()
    assert DEV_M2M_CLIENT_SECRET not in repr(api)
    kinde.set_plan(USER, "pro")
    assert api.user_customer_id(USER, None) == f"customer_user_{USER}"


def test_the_containers_client_reads_the_secret_from_ssm_once(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    name = "/plan-guard/kinde-m2m-client-secret"
    ssm = boto3.client("ssm")
    env.setenv("KINDE_M2M_CLIENT_ID", DEV_M2M_CLIENT_ID)
    env.setenv("KINDE_M2M_CLIENT_SECRET_PARAM", name)
    api = get_management_api()
    assert api is not None
    with pytest.raises(EntitlementUnavailable):  # the parameter does not exist yet
        api.user_customer_id(USER, None)
    ssm.put_parameter(Name=name, Value=DEV_M2M_CLIENT_SECRET, Type="SecureString")
    kinde.set_plan(USER, "pro")
    assert api.user_customer_id(USER, None) is not None
    ssm.put_parameter(Name=name, Value="rotated-elsewhere", Type="SecureString", Overwrite=True)
    kinde.management.revoke_tokens()  # a re-mint uses the secret read before: no SSM call per mint
    assert api.user_customer_id(USER, None) is not None
    assert kinde.management.mints == 2
