"""The stand-in's OAuth side over HTTP, driven the way Kinde's SPA SDK 4.5.1 drives it: the sign-in
request strips the redirect URI's trailing slash, the token request sends it as configured, and the
answer must carry an id_token with ``sub`` and a refresh token. Then what a real Kinde refuses."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from planguard.settings import DEFAULT_PLAN_LIMITS

from local.kinde import KindeStandIn
from local.kinde.oauth import CLIENT_ID

DASHBOARD = "http://127.0.0.1:3000"  # the page that signs in (a registered origin; nothing listens)
CALLBACK = f"{DASHBOARD}/"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[KindeStandIn]:
    kinde = KindeStandIn(
        copy.deepcopy(DEFAULT_PLAN_LIMITS),
        state_file=tmp_path / "kinde.json",
        dashboard_urls=[DASHBOARD],
        token_seconds=45,
    ).start()
    yield kinde
    kinde.stop()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_hex(26)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def auth_query(challenge: str, **overrides: str) -> dict[str, str]:
    """The SDK's sign-in request (its redirect_uri without the trailing slash)."""
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": DASHBOARD,
        "audience": "",
        "scope": "openid profile email offline",
        "supports_reauth": "true",
        "state": "eyJraW5kZSI6eyJldmVudCI6ImxvZ2luIn19-_",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return {**query, **overrides}


def sign_in(
    kinde: KindeStandIn, challenge: str, user: str = "kp_oauth", plan: str = "pro", **query: str
) -> str:
    """The sign-in page's form, posted from its own origin: where Kinde sends the browser back."""
    page = requests.get(f"{kinde.url}/oauth2/auth", params=auth_query(challenge, **query), timeout=10)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    response = requests.post(
        f"{kinde.url}/oauth2/auth",
        data={**fields, "user": user, "plan": plan},
        headers={"Origin": kinde.url},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def refresh(kinde: KindeStandIn, refresh_token: str) -> requests.Response:
    return token(kinde, grant_type="refresh_token", refresh_token=refresh_token)


def token(kinde: KindeStandIn, **form: str) -> requests.Response:
    """The SDK's token request: form-encoded, cross-origin from the dashboard."""
    return requests.post(
        f"{kinde.url}/oauth2/token",
        data={"client_id": CLIENT_ID, **form},
        headers={"Origin": DASHBOARD},
        timeout=10,
    )


def redeem(kinde: KindeStandIn, code: str, verifier: str, redirect_uri: str = CALLBACK) -> requests.Response:
    return token(
        kinde, grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=redirect_uri
    )


def claims(kinde: KindeStandIn, raw: str, audience: str | None = None) -> dict[str, Any]:
    key = jwt.PyJWKClient(f"{kinde.url}/.well-known/jwks").get_signing_key_from_jwt(raw)
    decoded: dict[str, Any] = jwt.decode(
        raw, key.key, ["RS256"], audience=audience, options={"verify_aud": audience is not None}
    )
    return decoded


def test_the_code_flow_as_the_sdk_runs_it(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    location = sign_in(standin, challenge)
    back = urlsplit(location)
    assert f"{back.scheme}://{back.netloc}" == DASHBOARD
    assert parse_qs(back.query)["state"] == ["eyJraW5kZSI6eyJldmVudCI6ImxvZ2luIn19-_"]  # untouched
    answer = redeem(standin, code_of(location), verifier)  # redirect_uri now with its slash
    assert answer.status_code == 200, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["expires_in"] == 45 and body["token_type"] == "bearer" and body["refresh_token"]
    identity = claims(standin, body["id_token"], audience=CLIENT_ID)
    assert (identity["sub"], identity["nonce"], identity["iss"]) == ("kp_oauth", "n0nce", standin.url)
    access = claims(standin, body["access_token"])
    assert access["sub"] == "kp_oauth" and access["exp"] - access["iat"] == 45
    assert standin.plan_of("kp_oauth") == "pro"  # the plan picked on the sign-in page
    entitlements = requests.get(
        f"{standin.url}/account_api/v1/entitlements",
        headers={"Authorization": f"Bearer {body['access_token']}", "Origin": DASHBOARD},
        timeout=10,
    )
    assert entitlements.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert entitlements.json()["data"]["plans"][0]["key"] == "pro"


def test_a_wrong_code_verifier_is_refused_and_the_code_is_spent(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    code = code_of(sign_in(standin, challenge))
    wrong = redeem(standin, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier does not match the code_challenge.",
    }
    assert redeem(standin, code, verifier).status_code == 400  # a code is tried once


def test_a_replayed_code_is_refused_and_revokes_its_tokens(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    code = code_of(sign_in(standin, challenge))
    first = redeem(standin, code, verifier)
    assert first.status_code == 200
    replay = redeem(standin, code, verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert "already used" in replay.json()["error_description"]
    refresh = token(standin, grant_type="refresh_token", refresh_token=first.json()["refresh_token"])
    assert refresh.status_code == 400  # what the stolen code got is no longer good


def test_an_expired_code_is_refused(standin: KindeStandIn) -> None:
    standin.oauth.code_seconds = 0
    verifier, challenge = pkce()
    answer = redeem(standin, code_of(sign_in(standin, challenge)), verifier)
    assert answer.json()["error_description"] == "The authorization code has expired."


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://evil.example/", "http://127.0.0.1:3000/callback", "http://127.0.0.1:3001/", "", "javascript:x"],
)
def test_a_foreign_redirect_uri_is_refused_on_kindes_own_page(
    standin: KindeStandIn, redirect_uri: str
) -> None:
    response = requests.get(
        f"{standin.url}/oauth2/auth",
        params=auth_query(pkce()[1], redirect_uri=redirect_uri),
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers  # never sent there, not even with an error
    assert "is not a callback URL of this application" in response.text
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_an_unknown_client_is_refused(standin: KindeStandIn) -> None:
    query = auth_query(pkce()[1], client_id="someone-else")
    response = requests.get(f"{standin.url}/oauth2/auth", params=query, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "Unknown client_id" in response.text
    assert token(standin, grant_type="refresh_token", client_id="someone-else").status_code == 401


def test_a_request_without_pkce_goes_back_with_an_error(standin: KindeStandIn) -> None:
    query = auth_query("", code_challenge_method="plain")
    response = requests.get(f"{standin.url}/oauth2/auth", params=query, allow_redirects=False, timeout=10)
    assert response.status_code == 302
    back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert back["error"] == ["invalid_request"]
    assert back["state"] == ["eyJraW5kZSI6eyJldmVudCI6ImxvZ2luIn19-_"]


def test_the_token_request_must_name_the_codes_redirect_uri(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    code = code_of(sign_in(standin, challenge))
    other = redeem(standin, code, verifier, redirect_uri="http://localhost:3000/")  # registered, not this one
    assert other.json()["error_description"] == "redirect_uri is not the one the code was issued for."


def test_refresh_tokens_rotate_and_survive_a_restart(standin: KindeStandIn, tmp_path: Path) -> None:
    verifier, challenge = pkce()
    first = redeem(standin, code_of(sign_in(standin, challenge)), verifier).json()
    second = token(standin, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    assert claims(standin, second.json()["id_token"])["sub"] == "kp_oauth"
    standin.stop()
    again = KindeStandIn(
        copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json", dashboard_urls=[DASHBOARD]
    ).start()
    try:
        third = token(again, grant_type="refresh_token", refresh_token=second.json()["refresh_token"])
        assert third.status_code == 200 and third.json()["expires_in"] == 3600
        assert second.json()["refresh_token"] not in (tmp_path / "kinde.json").read_text()  # kept hashed
        # A spent token is refused (last: presenting it revokes its family, the reuse test's subject).
        assert refresh(again, first["refresh_token"]).status_code == 400
    finally:
        again.stop()


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(standin: KindeStandIn) -> None:
    """Someone else holds a copy of a spent token: the newest one, rotated from it, goes too; another
    sign-in of the same user keeps working."""
    verifier, challenge = pkce()
    first = redeem(standin, code_of(sign_in(standin, challenge)), verifier).json()
    verifier, challenge = pkce()
    other_sign_in = redeem(standin, code_of(sign_in(standin, challenge)), verifier).json()
    second = token(standin, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    third = token(standin, grant_type="refresh_token", refresh_token=second["refresh_token"]).json()
    reuse = token(standin, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    assert "every token of its sign-in is revoked" in reuse.json()["error_description"]
    newest = token(standin, grant_type="refresh_token", refresh_token=third["refresh_token"])
    assert newest.status_code == 400
    assert token(standin, grant_type="refresh_token", refresh_token=other_sign_in["refresh_token"]).ok


def test_the_family_is_remembered_across_a_restart(standin: KindeStandIn, tmp_path: Path) -> None:
    verifier, challenge = pkce()
    first = redeem(standin, code_of(sign_in(standin, challenge)), verifier).json()
    second = token(standin, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    standin.stop()
    again = KindeStandIn(
        copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=tmp_path / "kinde.json", dashboard_urls=[DASHBOARD]
    ).start()
    try:
        assert refresh(again, first["refresh_token"]).status_code == 400
        assert refresh(again, second["refresh_token"]).status_code == 400
    finally:
        again.stop()


def test_a_replayed_code_revokes_the_tokens_rotated_since(standin: KindeStandIn) -> None:
    verifier, challenge = pkce()
    code = code_of(sign_in(standin, challenge))
    first = redeem(standin, code, verifier).json()
    rotated = token(standin, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert redeem(standin, code, verifier).status_code == 400
    assert refresh(standin, rotated["refresh_token"]).status_code == 400


def test_the_state_file_with_the_signing_keys_is_private(tmp_path: Path) -> None:
    state = tmp_path / "kinde.json"
    state.write_text("{}")
    state.chmod(0o644)  # written by an older stand-in
    kinde = KindeStandIn(copy.deepcopy(DEFAULT_PLAN_LIMITS), state_file=state, dashboard_urls=[DASHBOARD])
    try:
        assert (state.stat().st_mode & 0o777) == 0o600
        assert '"pem"' in state.read_text()  # the private key is in it
        kinde.rotate_key()
        assert (state.stat().st_mode & 0o777) == 0o600
        assert not state.with_suffix(".tmp").exists()
    finally:
        kinde.stop()


def test_the_sign_in_form_says_what_is_wrong(standin: KindeStandIn) -> None:
    page = requests.get(f"{standin.url}/oauth2/auth", params=auth_query(pkce()[1]), timeout=10)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    for user, plan, message in (
        ("bad user<script>", "", "A user id is 1 to 100 letters"),
        ("kp_ok", "gold", "Unknown plan &#x27;gold&#x27;"),
    ):
        response = requests.post(
            f"{standin.url}/oauth2/auth",
            data={**fields, "user": user, "plan": plan},
            headers={"Origin": standin.url},
            allow_redirects=False,
            timeout=10,
        )
        assert response.status_code == 422 and message in response.text
        assert "<script>" not in response.text
    standin.set_plan("kp_keep", "pro")
    _, challenge = pkce()
    sign_in(standin, challenge, user="kp_keep", plan="")  # "Keep the user's plan"
    assert standin.plan_of("kp_keep") == "pro"


def test_logout_goes_back_only_to_a_registered_url(standin: KindeStandIn) -> None:
    def logout(**query: str) -> requests.Response:
        return requests.get(f"{standin.url}/logout", params=query, allow_redirects=False, timeout=10)

    assert logout(redirect=CALLBACK).headers["Location"] == CALLBACK
    assert logout(redirect=DASHBOARD).status_code == 302  # the trailing slash normalised
    refused = logout(redirect="https://evil.example/")
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert logout().status_code == 200


def test_cors_only_for_the_dashboard(standin: KindeStandIn) -> None:
    def preflight(origin: str, path: str) -> requests.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        return requests.options(f"{standin.url}{path}", headers=headers, timeout=10)

    allowed = preflight(DASHBOARD, "/account_api/v1/entitlements")
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == DASHBOARD
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert preflight("http://localhost:3000", "/oauth2/token").headers["Access-Control-Allow-Origin"]
    stranger = preflight("https://evil.example", "/account_api/v1/entitlements")
    assert "Access-Control-Allow-Origin" not in stranger.headers
    minted = requests.post(
        f"{standin.url}/oauth2/token",
        data={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert minted.status_code == 403
