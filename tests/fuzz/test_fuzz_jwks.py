"""Fuzzing the JWKS endpoint (issue 10, part 3): down, rotating, serving garbage.

Pass: every token is either verified or refused with 401 (never another exception, which the
resolver would turn into a 500); fetch attempts stay bounded per second during an outage whatever
``kid``s are sent; a known key keeps working through an outage; a rotated key is picked up within
the refetch cooldown. Against the stand-in over real HTTP.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import jwt
import pytest
from planguard.auth import JWKS_REFETCH_COOLDOWN_SECONDS, TokenVerifier
from planguard.errors import Unauthorized

from local.kinde import Fault, KindeStandIn, SigningKey, new_rsa_key
from tests.support import USER, AccountsClient

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150")) // 3
FLOOD_SECONDS = float(os.environ.get("FUZZ_FLOOD_SECONDS", "1.5"))
SEED = int(os.environ.get("FUZZ_SEED", "20240610"))
ATTACKER = SigningKey("attacker", new_rsa_key())


def verifier(kinde: KindeStandIn) -> TokenVerifier:
    return TokenVerifier(kinde.url, f"{kinde.url}/.well-known/jwks")


def forged(kinde: KindeStandIn, kid: Any) -> str:
    """A well-formed token under a ``kid`` the JWKS does not have (any JSON value as the kid)."""
    now = int(time.time())
    claims = {"iss": kinde.url, "sub": USER, "iat": now, "exp": now + 600}
    if isinstance(kid, str):
        return jwt.encode(claims, ATTACKER.private_key, algorithm="RS256", headers={"kid": kid})
    token = jwt.encode(claims, ATTACKER.private_key, algorithm="RS256", headers={"kid": "x"})
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}  # PyJWT only signs string kids
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


def outcome(check: TokenVerifier, token: str) -> str:
    """``ok`` or ``401``; anything else escapes and fails the test (it would be a 500)."""
    try:
        check.verify(token)
    except Unauthorized:
        return "401"
    return "ok"


def flood(check: TokenVerifier, tokens: list[str], seconds: float, threads: int = 4) -> Counter[str]:
    """Verify ``tokens`` round-robin from several threads for ``seconds``."""
    results: Counter[str] = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def work(offset: int) -> None:
        n = offset
        while time.monotonic() < stop_at:
            result = outcome(check, tokens[n % len(tokens)])
            with lock:
                results[result] += 1
            n += threads

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def attack_tokens(kinde: KindeStandIn, rng: random.Random, count: int = 40) -> list[str]:
    kids: list[Any] = [uuid.uuid4().hex for _ in range(count // 2)]
    kids += [
        rng.choice(["", " ", "\u202e", "\U0001f600" * 50, "x" * 4000, "null", "../../etc"]) for _ in range(5)
    ]
    kids += [rng.choice([None, 5, [], {}, True]) for _ in range(5)]
    return [forged(kinde, kid) for kid in kids]


def bound(seconds: float) -> int:
    """Fetch attempts allowed in ``seconds``: one per cooldown, plus the first and one in flight."""
    return math.ceil(seconds / JWKS_REFETCH_COOLDOWN_SECONDS) + 2


@pytest.mark.parametrize("down", ["503", "garbage"])
def test_cold_start_during_an_outage_fetches_at_most_once_per_second(kinde: KindeStandIn, down: str) -> None:
    """A cold container while the JWKS is down: every token is a 401 and the endpoint sees at
    most one fetch per cooldown, however many requests and made-up kids arrive."""
    rng = random.Random(SEED)
    answer = Fault(503) if down == "503" else Fault(200, body=b"<html>maintenance</html>")
    kinde.jwks_faults[:] = [answer] * 100_000
    check, calls = verifier(kinde), kinde.jwks_calls
    tokens = [kinde.mint(USER), *attack_tokens(kinde, rng)]
    results = flood(check, tokens, FLOOD_SECONDS)
    fetched = kinde.jwks_calls - calls
    print(f"\nJWKS {down}, cold: {sum(results.values())} verifications, {fetched} fetches, {dict(results)}")
    assert set(results) == {"401"}
    assert fetched <= bound(FLOOD_SECONDS), fetched
    assert sum(results.values()) > 5 * fetched  # the flood really was a flood


@pytest.mark.parametrize("down", ["503", "garbage", "slow"])
def test_warm_container_outage_known_key_works_unknown_kids_bounded(kinde: KindeStandIn, down: str) -> None:
    rng = random.Random(SEED + 1)
    check = verifier(kinde)
    assert outcome(check, kinde.mint(USER)) == "ok"
    time.sleep(JWKS_REFETCH_COOLDOWN_SECONDS)  # past the cooldown of that successful fetch
    answer = {
        "503": Fault(503),
        "garbage": Fault(200, body=b'{"keys": [{"kty": "RSA", "kid": "x", "n": "!!", "e": "AQAB"}]}'),
        "slow": Fault(200, body=b"{}", delay_seconds=0.5),
    }[down]
    kinde.jwks_faults[:] = [answer] * 100_000
    calls = kinde.jwks_calls
    tokens = [kinde.mint(USER) for _ in range(3)] + attack_tokens(kinde, rng)
    results = flood(check, tokens, FLOOD_SECONDS)
    fetched = kinde.jwks_calls - calls
    print(f"\nJWKS {down}, warm: {sum(results.values())} verifications, {fetched} fetches, {dict(results)}")
    assert results["ok"] > 0 and results["401"] > 0
    assert fetched <= bound(FLOOD_SECONDS), fetched
    # After the outage: the known key still verifies, and a rotated key is picked up.
    kinde.jwks_faults.clear()
    rotated = kinde.rotate_key()
    time.sleep(JWKS_REFETCH_COOLDOWN_SECONDS + 0.1)
    assert outcome(check, kinde.mint(USER, key=rotated)) == "ok"


def test_cache_expiry_during_an_outage_keeps_the_last_good_key(
    kinde: KindeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = verifier(kinde)
    assert outcome(check, kinde.mint(USER)) == "ok"
    cache = check._jwks.jwk_set_cache
    assert cache is not None
    expiry_checks: list[bool] = []

    def expired() -> bool:
        expiry_checks.append(True)
        return True  # the 10-minute lifespan is over

    monkeypatch.setattr(cache, "is_expired", expired)
    for answer in (Fault(503), Fault(200, body=b"[]"), Fault(200, body=b"{" * 10)):
        kinde.jwks_faults[:] = [answer] * 1000
        time.sleep(JWKS_REFETCH_COOLDOWN_SECONDS)
        assert outcome(check, kinde.mint(USER)) == "ok"
    assert expiry_checks, "the patched expiry was never consulted"


def test_rotation_is_picked_up_within_the_cooldown(kinde: KindeStandIn) -> None:
    check = verifier(kinde)
    assert outcome(check, kinde.mint(USER)) == "ok"
    rotated = kinde.rotate_key()
    started = time.monotonic()
    while outcome(check, kinde.mint(USER, key=rotated)) != "ok":
        assert time.monotonic() - started < JWKS_REFETCH_COOLDOWN_SECONDS + 0.5
        time.sleep(0.05)
    assert outcome(check, kinde.mint(USER, key=kinde.keys[0])) == "ok"  # the old key still valid


# -- generated garbage ------------------------------------------------------------------------------


def garbage_key(rng: random.Random) -> Any:
    base: dict[str, Any] = {"kty": "RSA", "kid": f"g{rng.randrange(10**6)}", "n": "AQAB", "e": "AQAB"}
    mutation = rng.randrange(10)
    if mutation == 0:
        return rng.choice([None, 5, "key", [], True])
    if mutation == 1:
        base["kty"] = rng.choice(["EC", "oct", "OKP", "", None, 5, "RSA\x00"])
    elif mutation == 2:
        base["n"] = rng.choice(["", "!!", "A" * 10_000, None, 5, "AQAB" * 3])
    elif mutation == 3:
        base["e"] = rng.choice(["", "AAAA", None, [], "////"])
    elif mutation == 4:
        base["alg"] = rng.choice(["none", "HS256", "RS256", 5, None])
    elif mutation == 5:
        base["use"] = rng.choice(["enc", "", None, ["sig"]])
    elif mutation == 6:
        base.update(kty="EC", crv=rng.choice(["P-256", "P-999", None]), x="AA", y="AA")
    elif mutation == 7:
        base.update(kty="oct", k=rng.choice(["", "AA", None]))
    elif mutation == 8:
        base["kid"] = rng.choice([None, 5, [], "", "\u202e"])
    return base


GARBAGE_BYTES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"keys"',
    b"\xff\xfe",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"keys": NaN}',
    b'{"keys": 1e400}',
    b"<html>502</html>",
]


def garbage_answer(rng: random.Random, good: dict[str, Any]) -> tuple[Fault, bool]:
    """A JWKS answer and whether it still carries the good key (then its tokens verify)."""
    kind = rng.randrange(6)
    if kind == 0:
        return Fault(200, body=rng.choice(GARBAGE_BYTES)), False
    if kind == 1:
        return Fault(rng.choice([404, 429, 500, 502, 503, 301]), body=rng.choice([b"", b"{}"])), False
    if kind == 2:
        return Fault(200, body={"keys": rng.choice([None, {}, "x", 5, [], [None], {"a": good}])}), False
    keys = [garbage_key(rng) for _ in range(rng.randrange(1, 5))]
    with_good = kind >= 4
    if with_good:
        keys.insert(rng.randrange(len(keys) + 1), good)
    return Fault(200, body=json.dumps({"keys": keys}).encode()), with_good


def test_fuzz_jwks_answers(kinde: KindeStandIn) -> None:
    """A cold verifier per example, its first JWKS answer generated: valid tokens verify when the
    answer still carries their key among the garbage, every other outcome is a 401."""
    rng = random.Random(SEED)
    good = kinde.keys[-1].public_jwk()
    figures: Counter[str] = Counter()
    for number in range(EXAMPLES):
        fault, with_good = garbage_answer(rng, good)
        kinde.jwks_faults[:] = [fault]
        check = verifier(kinde)
        genuine = rng.random() < 0.7  # else forged: the attacker's key under the good kid or another
        token = kinde.mint(USER) if genuine else forged(kinde, rng.choice([good["kid"], "nope"]))
        result = outcome(check, token)
        want = "ok" if with_good and genuine else "401"
        assert result == want, (number, fault.status, repr(fault.body)[:300], with_good, genuine)
        figures[f"{'carries the key' if with_good else 'garbage'} -> {result}"] += 1
    print(f"\nJWKS answers fuzzed: {EXAMPLES}, seed {SEED}: {dict(figures)}")
    assert figures["carries the key -> ok"] > 0 and figures["garbage -> 401"] > 0


def test_one_malformed_key_does_not_take_the_good_keys_down(kinde: KindeStandIn) -> None:
    """Regression: a JWKS with an ``alg: none`` key or an ``oct`` key without ``k`` made PyJWT
    raise NotImplementedError/KeyError for the whole set: every token refused, or a 500."""
    good = kinde.keys[-1].public_jwk()
    for bad in (
        {"kty": "RSA", "kid": "b", "n": "AQAB", "e": "AQAB", "alg": "none"},
        {"kty": "oct", "kid": "c"},
    ):
        kinde.jwks_faults[:] = [Fault(200, body={"keys": [bad, good]})]
        assert outcome(verifier(kinde), kinde.mint(USER)) == "ok"


def test_api_answers_401_not_500_while_the_jwks_serves_garbage(
    env: pytest.MonkeyPatch, aws: None, kinde: KindeStandIn
) -> None:
    """End to end: the routes answer 401 with the error body, never 500, through a JWKS outage."""
    kinde.set_plan(USER, "pro")
    client = AccountsClient(kinde)
    for body in GARBAGE_BYTES:
        kinde.jwks_faults[:] = [Fault(200, body=body)]
        from planguard import auth

        auth.get_verifier.cache_clear()  # a cold container each time
        result = client.list()
        assert (result.status, result.error_code) == (401, "UNAUTHORIZED"), (body[:40], result)
