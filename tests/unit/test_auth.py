"""JWT matrix (docs/KINDE.md "Access tokens"): only a valid RS256 user token from the issuer passes."""

from __future__ import annotations

import base64
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import jwt
import planguard.auth
import pytest
import urllib3
from cryptography.hazmat.primitives import serialization
from planguard.auth import TokenVerifier
from planguard.errors import Unauthorized
from planguard.request_parsing import bearer_token

from local.kinde import SigningKey, new_rsa_key
from local.kinde.keys import KeyRing

ISSUER = "https://planguard.kinde.com"
USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"


class Issuer(KeyRing):
    """Kinde's signing side without a server: the stand-in's key ring (keys, JWKS, tokens shaped
    like Kinde's) for this issuer, kept in memory."""

    def __init__(self) -> None:
        super().__init__(threading.RLock(), lambda: None)
        self.issuer = ISSUER
        self.rotate()

    def rotate_key(self) -> SigningKey:
        """A new key published beside the old ones, as Kinde rotates."""
        return self.rotate()


@pytest.fixture
def kinde() -> Issuer:
    return Issuer()


class JwksFetches:
    def __init__(self, kinde: Issuer) -> None:
        self.kinde = kinde
        self.count = 0

    def request(self, method: str, url: str, **_: Any) -> Any:
        """Stands in for the container's urllib3 pool: PyJWKClient's caching and cooldown still run."""
        assert (method, url) == ("GET", f"{ISSUER}/.well-known/jwks")
        self.count += 1
        return SimpleNamespace(status=200, data=json.dumps(self.kinde.jwks()).encode())


@pytest.fixture
def fetches(kinde: Issuer, monkeypatch: pytest.MonkeyPatch) -> JwksFetches:
    counter = JwksFetches(kinde)
    monkeypatch.setattr(planguard.auth, "http_pool", lambda: counter)
    return counter


def verifier(audience: str | None = None, cooldown: float = 0.0) -> TokenVerifier:
    return TokenVerifier(ISSUER, f"{ISSUER}/.well-known/jwks", audience, refetch_cooldown_seconds=cooldown)


def mint(kinde: Issuer, user: str | None = USER, **claims: Any) -> str:
    return kinde.mint(user, **claims)


def test_valid_token_gives_the_user(kinde: Issuer, fetches: JwksFetches) -> None:
    principal = verifier().verify(mint(kinde))
    assert principal.user_id == USER
    assert fetches.count == 1


def test_issuer_with_trailing_slash_matches(kinde: Issuer, fetches: JwksFetches) -> None:
    assert verifier().verify(mint(kinde, issuer=ISSUER + "/")).user_id == USER
    assert TokenVerifier(ISSUER + "/", f"{ISSUER}/.well-known/jwks").issuer == ISSUER


def test_jwks_is_cached_across_calls(kinde: Issuer, fetches: JwksFetches) -> None:
    check = verifier()
    for _ in range(5):
        check.verify(mint(kinde))
    assert fetches.count == 1


def _sign_with_new_key(kinde: Issuer, **claims: Any) -> str:
    stranger = SigningKey("unknown-kid", new_rsa_key())
    return mint(kinde, key=stranger, **claims)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda k: mint(k, ttl_seconds=-120), id="expired"),
        pytest.param(lambda k: mint(k, nbf=int(time.time()) + 600), id="not-yet-valid"),
        pytest.param(lambda k: mint(k, issuer="https://evil.kinde.com"), id="wrong-issuer"),
        pytest.param(lambda k: mint(k, issuer=ISSUER + "//"), id="issuer-two-slashes"),
        pytest.param(lambda k: mint(k, gty=["client_credentials"]), id="m2m-token"),
        pytest.param(lambda k: mint(k, None), id="missing-sub"),
        pytest.param(lambda k: mint(k, sub=""), id="empty-sub"),
        pytest.param(lambda k: mint(k, sub="kp_" + "a" * 2045), id="sub-of-2-KiB"),
        pytest.param(lambda k: mint(k, sub="kp_" + "a" * 126), id="sub-of-129-characters"),
        pytest.param(lambda k: mint(k, sub="kp alice"), id="sub-with-a-space"),
        pytest.param(lambda k: mint(k, sub="kp_alice\u200b"), id="sub-with-a-zero-width-space"),
        pytest.param(lambda k: mint(k, sub=7), id="sub-a-number"),
        pytest.param(_sign_with_new_key, id="unknown-kid"),
        pytest.param(lambda k: "garbage", id="garbage"),
        pytest.param(lambda k: "a.b.c", id="three-garbage-parts"),
        pytest.param(lambda k: "", id="empty"),
    ],
)
def test_refused_tokens(make_token: Any, kinde: Issuer, fetches: JwksFetches) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier().verify(make_token(kinde))
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("user", ["kp:0f2c4a1b", "kp_a.b-c", "x" * 128])
def test_every_kinde_id_shape_is_a_user(user: str, kinde: Issuer, fetches: JwksFetches) -> None:
    assert verifier().verify(mint(kinde, user)).user_id == user


def test_unverified_subject_is_only_a_kinde_id(kinde: Issuer) -> None:
    """The prefetch starts a read for the claimed ``sub``: never for one no key could be built of."""
    assert planguard.auth.unverified_subject(mint(kinde)) == USER
    assert planguard.auth.unverified_subject(mint(kinde, sub="kp_" + "a" * 2045)) is None


def test_small_clock_skew_is_tolerated(kinde: Issuer, fetches: JwksFetches) -> None:
    assert verifier().verify(mint(kinde, ttl_seconds=-5)).user_id == USER


def test_alg_none_is_refused(kinde: Issuer, fetches: JwksFetches) -> None:
    claims = jwt.decode(mint(kinde), options={"verify_signature": False})
    header = {"alg": "none", "typ": "JWT", "kid": kinde.keys[0].kid}
    token = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in (header, claims)
    )
    with pytest.raises(Unauthorized):
        verifier().verify(token + ".")


def test_hs256_signed_with_the_public_key_is_refused(kinde: Issuer, fetches: JwksFetches) -> None:
    claims = jwt.decode(mint(kinde), options={"verify_signature": False})
    public_pem = (
        kinde.keys[0]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", "kid": kinde.keys[0].kid}
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in (header, claims)
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
    with pytest.raises(Unauthorized):
        verifier().verify(token)


def test_tampered_payload_is_refused(kinde: Issuer, fetches: JwksFetches) -> None:
    header, payload, signature = mint(kinde).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "kp_someone_else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(Unauthorized):
        verifier().verify(f"{header}.{forged}.{signature}")


def test_audience_checked_when_configured(kinde: Issuer, fetches: JwksFetches) -> None:
    assert verifier("https://api.planguard.dev").verify(mint(kinde, aud=["https://api.planguard.dev"]))
    with pytest.raises(Unauthorized):
        verifier("https://api.planguard.dev").verify(mint(kinde, aud=["https://other.example"]))
    with pytest.raises(Unauthorized):
        verifier("https://api.planguard.dev").verify(mint(kinde))  # no aud at all


def test_token_for_another_application_refused_when_no_audience_configured(
    kinde: Issuer, fetches: JwksFetches
) -> None:
    """With KINDE_AUDIENCE unset, any non-empty aud is another application's token."""
    for audience in (["https://api.planguard.dev"], "https://other.example", ["", "x"]):
        with pytest.raises(Unauthorized):
            verifier().verify(mint(kinde, aud=audience))
    empties: tuple[list[str], str] = ([], "")
    for empty in empties:  # an empty aud names no application
        assert verifier().verify(mint(kinde, aud=empty)).user_id == USER
    assert verifier().verify(mint(kinde)).user_id == USER


def test_rotated_key_is_picked_up_with_one_refetch(kinde: Issuer, fetches: JwksFetches) -> None:
    check = verifier()
    check.verify(mint(kinde))
    assert fetches.count == 1
    rotated = kinde.rotate_key()
    assert check.verify(mint(kinde, key=rotated)).user_id == USER
    assert fetches.count == 2
    check.verify(mint(kinde, key=rotated))
    assert fetches.count == 2  # the new key is cached now


def test_unknown_kids_cannot_hammer_the_jwks(kinde: Issuer, fetches: JwksFetches) -> None:
    check = verifier(cooldown=60)
    check.verify(mint(kinde))
    for _ in range(10):
        with pytest.raises(Unauthorized):
            check.verify(_sign_with_new_key(kinde))
    assert fetches.count == 1  # the cooldown holds refetches back


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"authorization": "Bearer abc"}, "abc"),
        ({"Authorization": "bearer  abc "}, "abc"),
        ({"authorization": "Basic abc"}, None),
        ({"authorization": "Bearer "}, None),
        ({}, None),
        (None, None),
    ],
)
def test_bearer_token_parsing(headers: dict[str, str] | None, token: str | None) -> None:
    assert bearer_token(headers) == token


def test_jwks_outage_after_expiry_keeps_the_last_good_key(
    kinde: Issuer, fetches: JwksFetches, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = verifier()
    check.verify(mint(kinde))
    cache = check._jwks.jwk_set_cache
    assert cache is not None
    patched: list[str] = []

    def expired() -> bool:
        patched.append("is_expired")
        return True  # the 10-minute lifespan is over

    class KindeDown:
        def request(self, *_: Any, **__: Any) -> Any:
            patched.append("jwks fetch")
            raise urllib3.exceptions.ProtocolError("connection refused")

    monkeypatch.setattr(cache, "is_expired", expired)
    monkeypatch.setattr(planguard.auth, "http_pool", KindeDown)
    assert check.verify(mint(kinde)).user_id == USER  # a known kid still verifies
    with pytest.raises(Unauthorized):
        check.verify(_sign_with_new_key(kinde))  # an unknown kid cannot be checked: refused
    assert {"is_expired", "jwks fetch"} <= set(patched), patched  # both patches were in the path
