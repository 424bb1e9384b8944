"""Our webhook verifier against Kinde's own decoder, over the same signed bodies.

Kinde's ``decodeWebhook`` (npm ``@kinde/webhooks`` 1.0.0, installed in tests/node by ``make test``)
runs in Node against the stand-in's JWKS on 127.0.0.1; ours is the webhook function's answer to
the same body. Ours may refuse more, never accept more: every token Kinde's decoder accepts and
ours refuses is listed in ``STRICTER`` with the check of ours that refused it (a ``kid`` that is not a
string; a body carrying an access token's claims).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import get_default_algorithms

from local.kinde import KindeStandIn, SigningKey, new_rsa_key, webhook_claims
from tests import ROOT
from tests.support import deliver_webhook, webhook_refusals

NODE_DIR = ROOT / "tests" / "node"
DECODER = NODE_DIR / "node_modules" / "@kinde" / "webhooks" / "package.json"

if shutil.which("node") is None or not DECODER.exists():  # one line locally; in CI a failure
    reason = "Kinde's decoder is not installed: make test installs it (tests/node, npm ci)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any] | str, key: SigningKey | None, alg: str) -> str:
    """A JWT signed exactly as given (PyJWT's encoder would refuse some of these headers).
    ``claims`` as a string is sent as it is (JSON that is not JSON, e.g. ``NaN``)."""
    body = claims if isinstance(claims, str) else json.dumps(claims)
    signing_input = f"{_b64(json.dumps({'alg': alg, **header}).encode())}.{_b64(body.encode())}"
    if alg == "none" or key is None:
        signature = b""
    elif alg == "HS256":  # the classic confusion: the public key as an HMAC secret
        public = key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    else:
        signature = get_default_algorithms()[alg].sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class Case:
    """A token: ``claims`` changes the webhook's claims, ``header`` its header (``kid`` by default)."""

    claims: Callable[[int], dict[str, Any]] = lambda now: {}
    header: dict[str, Any] | None = None
    alg: str = "RS256"
    key: str = "set"  # "set": the set's key; "other": an attacker's key
    raw_claims: str | None = None
    tamper: bool = False


CASES: dict[str, Case] = {
    "RS256 with the set's kid (as Kinde signs)": Case(),
    "exp in 1 h, nbf and iat 1 min ago": Case(
        lambda now: {"exp": now + 3600, "nbf": now - 60, "iat": now - 60}
    ),
    "no kid, one key in the set": Case(header={}),
    "expired 1 s ago": Case(lambda now: {"exp": now - 1}),
    "expired 60 s ago": Case(lambda now: {"exp": now - 60}),
    "nbf 60 s ahead": Case(lambda now: {"nbf": now + 60}),
    "iat 1 h ahead": Case(lambda now: {"iat": now + 3600}),
    "iat a string": Case(lambda now: {"iat": str(now)}),
    "iat a boolean": Case(lambda now: {"iat": True}),
    "iat null": Case(lambda now: {"iat": None}),
    "exp a string (1 h ahead)": Case(lambda now: {"exp": str(now + 3600)}),
    "exp a boolean": Case(lambda now: {"exp": True}),
    "nbf a string (1 min ago)": Case(lambda now: {"nbf": str(now - 60)}),
    "RS512 with the set's key": Case(alg="RS512"),
    "PS256 with the set's key": Case(alg="PS256"),
    "another key with the set's kid": Case(key="other"),
    "another key with its own kid": Case(header={"kid": "attacker"}, key="other"),
    "alg none": Case(alg="none", header={}),
    "HS256 keyed with the public key": Case(alg="HS256"),
    "tampered payload": Case(tamper=True),
    "unknown crit header": Case(header={"crit": ["urn:example:x"], "urn:example:x": 1}),
    "kid a number, one key in the set": Case(header={"kid": 7}),
    "exp NaN (not JSON)": Case(raw_claims="NaN"),
    # A user's access token minted with a webhook's claims: the same keys sign both.
    "access token shaped like a webhook (scp, azp)": Case(
        lambda now: {"sub": "kp_parity", "scp": ["openid"], "azp": "client", "exp": now + 3600}
    ),
    "with scp": Case(lambda now: {"scp": ["openid", "profile"]}),
    "with azp": Case(lambda now: {"azp": "plan-guard-dev"}),
    "with gty (machine-to-machine)": Case(lambda now: {"gty": ["client_credentials"]}),
}
# Signed while the set holds two keys (the stand-in rotated): which one is meant is a guess.
TWO_KEY_CASES: dict[str, Case] = {"no kid, two keys in the set": Case(header={})}

# Every token Kinde's decoder accepts and ours refuses, with the check of ours that refused it.
# Deliberate: a body carrying an access token's claims (scp, azp, gty) is a token, not an event;
# Kinde's decoder checks only the signature and times, so it accepts one.
STRICTER = {
    "kid a number, one key in the set": "header",
    "access token shaped like a webhook (scp, azp)": "access-token",
    "with scp": "access-token",
    "with azp": "access-token",
    "with gty (machine-to-machine)": "access-token",
}

# token -> (Kinde's decoder accepts it, our status, our check or why)
EXPECTED: dict[str, tuple[bool, int, str]] = {
    "RS256 with the set's kid (as Kinde signs)": (True, 200, "accepted"),
    "exp in 1 h, nbf and iat 1 min ago": (True, 200, "accepted"),
    "no kid, one key in the set": (True, 200, "accepted"),
    "no kid, two keys in the set": (False, 401, "kid"),
    "expired 1 s ago": (False, 401, "exp"),
    "expired 60 s ago": (False, 401, "exp"),
    "nbf 60 s ahead": (False, 401, "nbf"),
    "iat 1 h ahead": (True, 200, "accepted"),
    "iat a string": (False, 401, "iat"),
    "iat a boolean": (False, 401, "iat"),
    "iat null": (False, 401, "iat"),
    "exp a string (1 h ahead)": (False, 401, "exp"),
    "exp a boolean": (False, 401, "exp"),
    "nbf a string (1 min ago)": (False, 401, "nbf"),
    "RS512 with the set's key": (False, 401, "alg"),
    "PS256 with the set's key": (False, 401, "alg"),
    "another key with the set's kid": (False, 401, "signature"),
    "another key with its own kid": (False, 401, "key"),
    "alg none": (False, 401, "alg"),
    "HS256 keyed with the public key": (False, 401, "alg"),
    "tampered payload": (False, 401, "signature"),
    "unknown crit header": (False, 401, "header"),
    "kid a number, one key in the set": (True, 401, "header"),
    "exp NaN (not JSON)": (False, 400, "not a JWT"),
    "access token shaped like a webhook (scp, azp)": (True, 401, "access-token"),
    "with scp": (True, 401, "access-token"),
    "with azp": (True, 401, "access-token"),
    "with gty (machine-to-machine)": (True, 401, "access-token"),
}


def sign(case: Case, kinde: KindeStandIn, now: int) -> str:
    signer = kinde.keys[0] if case.key == "set" else SigningKey(kinde.keys[0].kid, new_rsa_key())
    claims = {**webhook_claims("user.updated", {"user": {"id": "kp_parity"}}), **case.claims(now)}
    header = {"typ": "JWT", **({"kid": signer.kid} if case.header is None else case.header)}
    if case.raw_claims is not None:
        raw = json.dumps({**claims, "exp": "__EXP__"}).replace('"__EXP__"', case.raw_claims)
        return compact(header, raw, signer, case.alg)
    token = compact(header, claims, signer, case.alg)
    if case.tamper:  # the signature of one event over the claims of another
        forged = compact(header, {**claims, "data": {"user": {"id": "kp_victim"}}}, signer, case.alg)
        head, _, signature = token.split(".")
        token = f"{head}.{forged.split('.')[1]}.{signature}"
    return token


def kinde_decoder(domain: str, tokens: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Kinde's ``decodeWebhook`` over every token, in one Node process."""
    result = subprocess.run(
        ["node", str(NODE_DIR / "decode_webhooks.mjs")],
        input=json.dumps({"domain": domain, "tokens": tokens}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answers: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return answers


def ours(token: str) -> tuple[int, str]:
    """The webhook function's status for ``token``, and the check of ours that refused it."""
    with webhook_refusals() as checks:
        result = deliver_webhook(token, f"msg_{uuid.uuid4().hex}")
    if result.status == 200:
        return 200, "accepted"
    if checks:
        return result.status, checks[-1]
    message = str(result.body["error"]["message"])
    return result.status, "not a JWT" if "must be a JWT" in message else message


def test_ours_accepts_only_what_kindes_decoder_accepts(
    env: pytest.MonkeyPatch,
    aws: None,
    kinde: KindeStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support import clear_caches

    now = int(time.time())
    tokens = {name: sign(case, kinde, now) for name, case in CASES.items()}
    kinde_answers = kinde_decoder(kinde.url, tokens)
    our_answers = {name: ours(token) for name, token in tokens.items()}

    kinde.rotate_key()  # now the set holds two keys
    clear_caches()  # and our verifier fetches it afresh, as a new container would
    two_key_tokens = {name: sign(case, kinde, now) for name, case in TWO_KEY_CASES.items()}
    kinde_answers |= kinde_decoder(kinde.url, two_key_tokens)
    our_answers |= {name: ours(token) for name, token in two_key_tokens.items()}

    table = {name: (kinde_answers[name]["accepted"], *our_answers[name]) for name in [*CASES, *TWO_KEY_CASES]}
    with capsys.disabled():
        print("\n| token | Kinde's decodeWebhook | ours | why (Kinde's message / our check) |")
        print("|---|---|---|---|")
        for name, (accepted, status, check) in table.items():
            message = kinde_answers[name]["message"] or ""
            print(f"| {name} | {'accepts' if accepted else 'refuses'} | {status} | {message} / {check} |")

    assert all(answer["validatorAgrees"] for answer in kinde_answers.values()), kinde_answers
    accepted_by_ours_only = [
        name for name, (kinde_ok, status, _) in table.items() if status == 200 and not kinde_ok
    ]
    assert accepted_by_ours_only == []
    stricter = {
        name: check for name, (kinde_ok, status, check) in table.items() if kinde_ok and status != 200
    }
    assert stricter == STRICTER
    assert table == EXPECTED
