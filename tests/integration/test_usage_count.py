"""UsageCountFunction: the auth matrix, the count, and what the tutorial's workflow sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from planguard.accounts_store import get_repository
from planguard.usage_counter import get_usage_counter

from local.kinde import KindeStandIn
from tests import ROOT
from tests.support import OTHER_USER, USER, HttpResult, api_over_http, invoke_http, load_event, seed

TEST_KEY = "test-usage-key"  # what the env fixture configures
DEV_KEY = "local-dev-usage-key"  # the documented local key in events/usage_count_with_key.json
PARAM = "/plan-guard/usage-api-key"
ROUTE = "GET /api/users/accounts/count/{kindeId}"
FUNCTION = "UsageCountFunction"


@pytest.fixture
def call(env: pytest.MonkeyPatch, aws: None) -> Iterator[Callable[..., HttpResult]]:
    """Invoke the handler with the sample event, for ``kinde_id`` and exactly ``headers``."""
    from usage_count_api import handler, usage_key

    usage_key.forget()  # the key is cached for minutes: start each test cold

    def invoke(kinde_id: str = USER, headers: dict[str, str] | None = None) -> HttpResult:
        event = load_event("usage_count_no_key.json")
        event["headers"] = {k.lower(): v for k, v in (headers or {}).items()}
        event["pathParameters"] = {"kindeId": kinde_id}
        event["rawPath"] = event["requestContext"]["http"]["path"] = (
            f"/api/users/accounts/count/{quote(kinde_id, safe='')}"
        )
        return invoke_http(handler.lambda_handler, event, FUNCTION)

    yield invoke
    usage_key.forget()


def assert_unauthorized(result: HttpResult) -> None:
    assert result.status == 401, result.body
    assert result.error_code == "UNAUTHORIZED"
    assert set(result.body["error"]) == {"code", "message"} and result.body["error"]["message"]
    assert result.headers["www-authenticate"].startswith("Bearer")
    assert result.headers["cache-control"] == "no-store"


def reset_settings(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> None:
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    from tests.support import clear_caches

    clear_caches()


# -- api_key mode (the default) --------------------------------------------------------------------
def test_the_template_default_is_api_key(call: Callable[..., HttpResult]) -> None:
    assert os.environ["USAGE_AUTH"] == "api_key"


def test_no_credentials_is_401(call: Callable[..., HttpResult]) -> None:
    bare = call()
    assert_unauthorized(bare)
    assert "error=" not in bare.headers["www-authenticate"]  # RFC 6750: no credentials, no error code
    assert 'error="invalid_token"' in call(headers={"x-api-key": "wrong"}).headers["www-authenticate"]
    assert_unauthorized(call(headers={"content-type": "application/json"}))
    assert_unauthorized(call(headers={"authorization": "Bearer "}))
    assert_unauthorized(call(headers={"authorization": f"Basic {TEST_KEY}"}))


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "wrong"},
        {"authorization": "Bearer wrong"},
        {"x-api-key": TEST_KEY + "x"},
        {"x-api-key": TEST_KEY[:-1]},
        {"x-api-key": "clé-ünicode"},
        {"authorization": "Bearer not.a.jwt"},
    ],
)
def test_a_wrong_key_is_401(call: Callable[..., HttpResult], headers: dict[str, str]) -> None:
    assert_unauthorized(call(headers=headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {TEST_KEY}"},
        {"Authorization": f"bearer  {TEST_KEY} "},
        {"x-api-key": TEST_KEY},
        {"X-Api-Key": TEST_KEY},
        {"x-api-key": "wrong", "authorization": f"Bearer {TEST_KEY}"},
    ],
)
def test_the_right_key_gives_the_count(call: Callable[..., HttpResult], headers: dict[str, str]) -> None:
    seed(USER, 2)
    result = call(headers=headers)
    assert result.status == 200, result.body
    assert result.body == {"kindeId": USER, "count": 2}
    assert result.headers["cache-control"] == "no-store"
    assert result.headers["content-type"] == "application/json"


def test_the_sample_event_with_the_local_dev_key(env: pytest.MonkeyPatch, aws: None) -> None:
    from usage_count_api.handler import lambda_handler

    reset_settings(env, USAGE_API_KEY=DEV_KEY)
    seed(USER, 1)
    result = invoke_http(lambda_handler, load_event("usage_count_with_key.json"), FUNCTION)
    assert (result.status, result.body) == (200, {"kindeId": USER, "count": 1})
    assert_unauthorized(invoke_http(lambda_handler, load_event("usage_count_no_key.json"), FUNCTION))


def test_no_key_configured_refuses_every_key(
    call: Callable[..., HttpResult], env: pytest.MonkeyPatch
) -> None:
    reset_settings(env, USAGE_API_KEY=None, USAGE_API_KEY_PARAM=None)
    for headers in ({"x-api-key": TEST_KEY}, {"authorization": f"Bearer {TEST_KEY}"}, {"x-api-key": ""}):
        assert_unauthorized(call(headers=headers))


def test_a_blank_key_counts_as_none(call: Callable[..., HttpResult], env: pytest.MonkeyPatch) -> None:
    reset_settings(env, USAGE_API_KEY="   ")
    assert_unauthorized(call(headers={"x-api-key": "   "}))
    assert_unauthorized(call(headers={"authorization": "Bearer    "}))


# -- the caller's own Kinde token ---------------------------------------------------------------
def test_own_kinde_token_gives_the_count(call: Callable[..., HttpResult], kinde: KindeStandIn) -> None:
    seed(USER, 3)
    result = call(headers={"authorization": f"Bearer {kinde.mint(USER)}"})
    assert (result.status, result.body) == (200, {"kindeId": USER, "count": 3})


def test_own_token_works_without_a_key_configured(
    call: Callable[..., HttpResult], env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    reset_settings(env, USAGE_API_KEY=None)
    result = call(headers={"authorization": f"Bearer {kinde.mint(USER)}"})
    assert (result.status, result.body) == (200, {"kindeId": USER, "count": 0})


def test_another_users_token_is_401(call: Callable[..., HttpResult], kinde: KindeStandIn) -> None:
    seed(USER, 1)
    assert_unauthorized(call(USER, headers={"authorization": f"Bearer {kinde.mint(OTHER_USER)}"}))


@pytest.mark.parametrize("kind", ["expired", "m2m", "foreign issuer"])
def test_invalid_tokens_are_401(call: Callable[..., HttpResult], kinde: KindeStandIn, kind: str) -> None:
    token = {
        "expired": lambda: kinde.mint(USER, ttl_seconds=-120),
        "m2m": lambda: kinde.mint(USER, gty=["client_credentials"]),
        "foreign issuer": lambda: kinde.mint(USER, issuer="https://evil.example.com"),
    }[kind]()
    assert_unauthorized(call(headers={"authorization": f"Bearer {token}"}))


# -- none mode ------------------------------------------------------------------------------------
def test_none_mode_is_open(call: Callable[..., HttpResult], env: pytest.MonkeyPatch) -> None:
    reset_settings(env, USAGE_AUTH="none", USAGE_API_KEY=None)
    seed(USER, 4)
    result = call(headers={})
    assert (result.status, result.body) == (200, {"kindeId": USER, "count": 4})
    assert result.headers["cache-control"] == "no-store"


# -- SSM SecureString (the deployed configuration) --------------------------------------------------
@pytest.fixture
def ssm_key(call: Callable[..., HttpResult], env: pytest.MonkeyPatch) -> Any:
    """USAGE_API_KEY unset, USAGE_API_KEY_PARAM naming a moto SecureString, as the template does."""
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PARAM, Value="ssm-secret-key\n", Type="SecureString")
    reset_settings(env, USAGE_API_KEY=None, USAGE_API_KEY_PARAM=PARAM)
    return ssm


def test_key_from_ssm(call: Callable[..., HttpResult], ssm_key: Any) -> None:
    seed(USER, 2)
    result = call(headers={"x-api-key": "ssm-secret-key"})
    assert (result.status, result.body) == (200, {"kindeId": USER, "count": 2})
    assert call(headers={"authorization": "Bearer ssm-secret-key"}).status == 200
    assert_unauthorized(call(headers={"x-api-key": TEST_KEY}))
    assert_unauthorized(call())


def test_ssm_key_is_cached(call: Callable[..., HttpResult], ssm_key: Any) -> None:
    assert call(headers={"x-api-key": "ssm-secret-key"}).status == 200
    ssm_key.put_parameter(Name=PARAM, Value="rotated", Type="SecureString", Overwrite=True)
    # Within max_age the cached key still answers: one SSM call per container per 5 minutes.
    assert call(headers={"x-api-key": "ssm-secret-key"}).status == 200
    from usage_count_api import usage_key

    usage_key.forget()  # what the cache's expiry does
    assert call(headers={"x-api-key": "rotated"}).status == 200
    assert_unauthorized(call(headers={"x-api-key": "ssm-secret-key"}))


def test_a_missing_parameter_means_no_key_and_is_looked_up_once(
    call: Callable[..., HttpResult], env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key configured refuses every key with 401 (a retry cannot help, so never a 503), and
    the failed lookup is cached, so callers cannot make us hammer SSM."""
    from usage_count_api import usage_key

    reset_settings(env, USAGE_API_KEY=None, USAGE_API_KEY_PARAM="/plan-guard/missing")
    lookups: list[str] = []
    real_fetch = usage_key._fetch

    def counted_fetch(name: str) -> tuple[tuple[str, ...], float]:
        lookups.append(name)
        return real_fetch(name)

    monkeypatch.setattr(usage_key, "_fetch", counted_fetch)
    assert_unauthorized(call())
    assert lookups == []  # no credentials: SSM is never consulted
    for _ in range(5):
        assert_unauthorized(call(headers={"x-api-key": "anything"}))
    assert lookups == ["/plan-guard/missing"]


def test_ssm_unreachable_is_503(
    call: Callable[..., HttpResult], env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usage_count_api import usage_key

    reset_settings(env, USAGE_API_KEY=None, USAGE_API_KEY_PARAM=PARAM)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # nothing listens there
    usage_key.forget()
    result = call(headers={"x-api-key": "anything"})
    assert (result.status, result.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert result.headers["retry-after"] == "1"


# -- the id and the count ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kinde_id", ["", "kp 1", "kp/1", "kp_1?x=1", "x" * 129, "kp_✓", "kp_1\n", "kp%5F1", "<script>"]
)
def test_a_malformed_kinde_id_is_400(call: Callable[..., HttpResult], kinde_id: str) -> None:
    from usage_count_api.handler import BAD_KINDE_ID

    result = call(kinde_id, headers={"x-api-key": TEST_KEY})
    assert result.status == 400, result.body
    assert result.error_code == "BAD_REQUEST"
    assert result.body["error"]["message"] == BAD_KINDE_ID  # one fixed text: the id is never echoed


@pytest.mark.parametrize("kinde_id", ["kp_0f2c4a1b9e8d4c3b", "kp:legacy.user-1", "x" * 128, "A"])
def test_every_kinde_id_form_is_accepted(call: Callable[..., HttpResult], kinde_id: str) -> None:
    result = call(kinde_id, headers={"x-api-key": TEST_KEY})
    assert (result.status, result.body) == (200, {"kindeId": kinde_id, "count": 0})


def test_missing_path_parameter_is_400(call: Callable[..., HttpResult]) -> None:
    from usage_count_api.handler import lambda_handler

    event = load_event("usage_count_with_key.json")
    del event["pathParameters"]
    assert invoke_http(lambda_handler, event, FUNCTION).status == 400


def test_unknown_user_counts_zero(call: Callable[..., HttpResult]) -> None:
    result = call("kp_never_seen", headers={"x-api-key": TEST_KEY})
    assert (result.status, result.body) == (200, {"kindeId": "kp_never_seen", "count": 0})


def test_count_follows_creates_and_deletes(call: Callable[..., HttpResult]) -> None:
    repository = get_repository()
    accounts = [repository.create(USER, f"A{n}", f"00{n}", limit=None) for n in range(3)]
    repository.create(OTHER_USER, "Theirs", "999", limit=None)
    assert call(headers={"x-api-key": TEST_KEY}).body == {"kindeId": USER, "count": 3}
    repository.delete(USER, accounts[0].id)
    assert call(headers={"x-api-key": TEST_KEY}).body == {"kindeId": USER, "count": 2}
    assert call(OTHER_USER, headers={"x-api-key": TEST_KEY}).body == {"kindeId": OTHER_USER, "count": 1}


def test_the_count_is_one_get_item(call: Callable[..., HttpResult], monkeypatch: pytest.MonkeyPatch) -> None:
    seed(USER, 2)
    repository = get_repository()
    calls: list[str] = []
    client = repository._db
    for name in ("get_item", "query", "scan", "batch_get_item", "transact_get_items"):
        original = getattr(client, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(client, name, spy)
    assert call(headers={"x-api-key": TEST_KEY}).body["count"] == 2
    assert calls == ["get_item"]


def test_storage_failure_is_503(call: Callable[..., HttpResult], env: pytest.MonkeyPatch) -> None:
    reset_settings(env, TABLE_NAME="NoSuchTable")
    result = call(headers={"x-api-key": TEST_KEY})
    assert result.status == 503, result.body
    assert result.error_code == "SERVICE_UNAVAILABLE"
    assert result.headers["cache-control"] == "no-store"
    assert "Traceback" not in json.dumps(result.body)


def test_an_unexpected_error_is_a_500_body(
    call: Callable[..., HttpResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []

    def boom(user: str) -> int:
        reads.append(user)
        raise RuntimeError("kaboom")

    monkeypatch.setattr(get_usage_counter(), "usage_count", boom)
    result = call(headers={"x-api-key": TEST_KEY})
    assert reads == [USER]
    assert result.status == 500
    assert result.error_code == "INTERNAL_ERROR"
    assert "kaboom" not in json.dumps(result.body)


# -- logging ----------------------------------------------------------------------------------------
def test_one_structured_log_line_per_request_without_secrets(
    call: Callable[..., HttpResult], kinde: KindeStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    token = kinde.mint(USER)
    capsys.readouterr()
    call(headers={"x-api-key": TEST_KEY})
    call(headers={"authorization": f"Bearer {token}"})
    call(headers={"x-api-key": "wrong-key-value"})
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [line["status"] for line in lines] == [200, 200, 401]
    assert [line.get("auth") for line in lines] == ["api_key", "token", None]
    assert lines[2]["code"] == "UNAUTHORIZED" and lines[2]["detail"] == "wrong key"
    assert all(line["kindeId"] == USER and line["message"] == "usage count" for line in lines)
    assert all(line["level"] == "INFO" and "duration_ms" in line for line in lines)
    for secret in (TEST_KEY, token, "wrong-key-value"):
        assert secret not in out


# -- cold start: what importing the handler loads ---------------------------------------------------
def test_import_stays_minimal() -> None:
    heavy = [
        "aws_lambda_powertools.event_handler",
        "requests",
        "jwt",
        "planguard.api",
        "planguard.auth",
        "planguard.entitlements",
    ]
    code = (
        "import json, sys\n"
        "import usage_count_api.handler\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    path = os.pathsep.join(str(ROOT / p) for p in ("layers/common", "functions/usage_count"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == []


# -- what the tutorial's workflow sees, over real HTTP ----------------------------------------------
@pytest.fixture
def usage_url(call: Callable[..., HttpResult]) -> Iterator[str]:
    """The function behind the local gateway on 127.0.0.1: ``USAGE_API_URL`` for the workflow."""
    with api_over_http() as api:
        yield f"{api}/api/users/accounts/count/"


def tutorial_workflow(usage_api_url: str, user_id: str, requested_limit: int) -> tuple[Any, bool]:
    """The seed's workflow, line for line: ``(currentUsage, denied)`` for a downgrade.

    ``fetch(endpoint, {method: "GET", responseFormat: "json", headers: {"Content-Type": ...}})``
    gives only the body; ``currentUsage = res.data?.count``; deny when ``currentUsage > limit``
    (in JavaScript ``undefined > 3`` is false).
    """
    base = usage_api_url[:-1] if usage_api_url.endswith("/") else usage_api_url
    endpoint = f"{base}/{quote(user_id, safe='')}"
    request = urllib.request.Request(endpoint, method="GET", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:  # Kinde's fetch hands over error bodies as data too
        raw = error.read()
    data = json.loads(raw)
    current_usage = data.get("count") if isinstance(data, dict) else None
    denied = isinstance(current_usage, int) and current_usage > requested_limit
    return current_usage, denied


def test_none_mode_serves_the_tutorials_workflow_unchanged(usage_url: str, env: pytest.MonkeyPatch) -> None:
    reset_settings(env, USAGE_AUTH="none", USAGE_API_KEY=None)
    seed(USER, 5)
    assert tutorial_workflow(usage_url, USER, requested_limit=3) == (5, True)
    assert tutorial_workflow(usage_url, OTHER_USER, requested_limit=3) == (0, False)


def test_the_tutorials_workflow_against_api_key_mode_silently_allows(usage_url: str) -> None:
    """Why README warns: the tutorial sends no key, gets a 401 body, reads undefined, allows."""
    seed(USER, 5)
    assert tutorial_workflow(usage_url, USER, requested_limit=3) == (None, False)


# -- the template: route and least privilege ----------------------------------------------------------
def test_template_route_and_least_privilege() -> None:
    from local.template import load_template

    template = load_template()
    routes = {(route.method, route.path, route.function) for route in template.routes()}
    assert ("GET", "/api/users/accounts/count/{kindeId}", FUNCTION) in routes
    assert ("POST", "/api/users/accounts/count/{kindeId}/hold", FUNCTION) in routes
    props = template.resources[FUNCTION]["Properties"]
    assert props["Handler"] == "usage_count_api.handler.lambda_handler"
    assert props["Environment"]["Variables"] == {
        "USAGE_AUTH": {"Ref": "UsageAuth"},
        "USAGE_API_KEY_PARAM": {"Ref": "UsageApiKeyParameterName"},
        "USAGE_API_KEY": "",  # declared empty: only `sam local invoke --env-vars` fills it
    }
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    assert [(s["Effect"], s["Action"]) for s in statements] == [
        ("Allow", ["dynamodb:GetItem", "dynamodb:UpdateItem"]),  # the count; the hold
        ("Allow", ["ssm:GetParameter"]),
    ]
    assert statements[0]["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    parameter_arn = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
    assert statements[1]["Resource"] == {"Fn::Sub": parameter_arn + "${UsageApiKeyParameterName}"}
    assert template.parameter_defaults()["UsageApiKeyParameterName"].startswith("/")
    assert template.parameter_defaults()["UsageAuth"] == "api_key"
    assert f"{FUNCTION}LogGroup" in template.resources
