"""Shared by the API fuzzers: the stack under test, credentials, the pass criteria, the figures.

``make test`` runs a bounded version (a fixed seed, ``FUZZ_EXAMPLES`` examples per operation and
mode, 15 by default); ``make fuzz`` a longer one (300, a random seed unless ``FUZZ_SEED`` is set).
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed

from local.kinde import KindeStandIn, SigningKey, new_rsa_key
from tests.support import api_over_http, seed

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
_SEED = os.environ.get("FUZZ_SEED", "20261110")
SEED: int | None = None if _SEED == "random" else int(_SEED)
USAGE_KEY = "test-usage-key"

PRO, FREE, FULL = "kp_fuzz_pro", "kp_fuzz_free", "kp_fuzz_full"  # FULL: at its free limit

# Figures for docs/RELIABILITY.md, printed at the end of the session.
FIGURES: collections.Counter[str] = collections.Counter()


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def seeded[F: Callable[..., Any]](test: F) -> F:
    return hypothesis_seed(SEED)(test) if SEED is not None else test


@dataclass
class Stack:
    """The local gateway over moto and the Kinde stand-in, with users in known states."""

    url: str
    kinde: KindeStandIn
    tokens: dict[str, str] = field(default_factory=dict)  # credential name -> Authorization value
    account_ids: list[str] = field(default_factory=list)  # PRO's accounts
    session: requests.Session = field(default_factory=requests.Session)

    def valid(self) -> dict[str, str]:
        return {k: v for k, v in self.tokens.items() if k.startswith("user:")}

    def broken(self) -> dict[str, str]:
        return {k: v for k, v in self.tokens.items() if k.startswith("broken:")}


def credentials(kinde: KindeStandIn) -> dict[str, str]:
    """Authorization header values: three users' tokens, and tokens that must all be refused."""
    forger = SigningKey(kinde.keys[0].kid, new_rsa_key())  # a known kid, the wrong key
    stranger = SigningKey("kid-nobody-published", new_rsa_key())
    return {
        f"user:{PRO}": f"Bearer {kinde.mint(PRO)}",
        f"user:{FREE}": f"Bearer {kinde.mint(FREE)}",
        f"user:{FULL}": f"Bearer {kinde.mint(FULL)}",
        "usage-key:bearer": f"Bearer {USAGE_KEY}",
        "broken:expired": f"Bearer {kinde.mint(PRO, ttl_seconds=-3600)}",
        "broken:forged": f"Bearer {kinde.mint(PRO, key=forger)}",
        "broken:unknown-kid": f"Bearer {kinde.mint(PRO, key=stranger)}",
        "broken:other-issuer": f"Bearer {kinde.mint(PRO, issuer='https://evil.example.com')}",
        "broken:other-audience": f"Bearer {kinde.mint(PRO, aud=['another-application'])}",
        "broken:m2m": f"Bearer {kinde.mint(PRO, gty=['client_credentials'])}",
        "broken:no-sub": f"Bearer {kinde.mint(None)}",
        "broken:garbage": "Bearer not.a.jwt",
        "broken:basic": "Basic dXNlcjpwYXNz",
        "broken:wrong-key": "Bearer wrong-usage-key",
    }


@contextmanager
def running_stack(kinde: KindeStandIn) -> Iterator[Stack]:
    """Needs the ``env`` and ``aws`` fixtures active. PRO has 3 accounts, FULL its 3 of free."""
    from planguard.accounts_store import get_repository

    kinde.set_plan(PRO, "pro")
    kinde.set_plan(FREE, "free")
    kinde.set_plan(FULL, "free")
    seed(PRO, 3)
    seed(FULL, 3)
    ids = [account.id for account in get_repository().list_page(PRO, 10).items]
    with api_over_http() as url:
        yield Stack(url, kinde, credentials(kinde), ids)


def _header(response: Any, name: str) -> str:
    """A header of a requests or schemathesis response (whose headers are lists)."""
    for key, value in response.headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return ""


def assert_sound(response: Any, *, faults: bool = False) -> None:
    """The pass criteria: no 5xx (a 503 only under an injected fault), every 4xx the error body."""
    status = response.status_code
    FIGURES["requests"] += 1
    FIGURES[f"status {status}"] += 1
    context = (
        f"{response.request.method} {str(response.request.url)[:300]} -> {status} {response.text[:500]!r}"
    )
    if faults and status == 503:
        return
    assert status < 500, f"server error: {context}"
    if status >= 400:
        assert _header(response, "content-type").startswith("application/json"), context
        body = json.loads(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), context
        error: dict[str, Any] = body["error"]
        assert isinstance(error.get("code"), str) and error["code"], context
        assert isinstance(error.get("message"), str) and error["message"], context
        if status == 401:
            assert _header(response, "www-authenticate").startswith("Bearer"), context
