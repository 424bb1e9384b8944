"""The cold path's overlap is safe: the entitlement read beside the JWKS fetch follows the rules.

Only while no key set is loaded; cached only once the token verified; a verification failure wins
over Kinde's answer; nothing overlaps once a key set is loaded (a forged token buys no Kinde call).
"""

from __future__ import annotations

import pytest
from accounts_api.cold_overlap import authenticate_prefetching
from planguard.auth import get_verifier
from planguard.entitlements import Entitlement, get_account_api
from planguard.errors import EntitlementUnavailable, Unauthorized
from planguard.settings import FEATURE_KEY

from local.kinde import Fault, KindeStandIn, SigningKey, new_rsa_key

USER = "kp_0f2c4a1b9e8d4c3b9a7e6d5c4b3a2f10"


def _headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _cached() -> object:
    return get_account_api()._cached(USER, FEATURE_KEY)


def test_cold_reads_the_entitlement_beside_the_jwks_and_caches_it(
    env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    kinde.set_plan(USER, "pro")
    jwks_before = kinde.jwks_calls
    principal, entitlement = authenticate_prefetching(
        _headers(kinde.mint(USER)), get_account_api(), FEATURE_KEY, None
    )
    assert principal.user_id == USER
    assert isinstance(entitlement, Entitlement)
    assert (entitlement.limit, entitlement.source) == (5, "kinde")
    assert (kinde.jwks_calls - jwks_before, kinde.account_api_calls) == (1, 1)
    assert _cached() is not None


def test_a_verification_failure_wins_over_kindes_answer_and_nothing_is_cached(
    env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    """Kinde answers this token (it checks only its own signature), our verification does not."""
    kinde.set_plan(USER, "pro")
    wrong_issuer = kinde.mint(USER, issuer="https://someone-else.kinde.com")
    with pytest.raises(Unauthorized):
        authenticate_prefetching(_headers(wrong_issuer), get_account_api(), FEATURE_KEY, None)
    assert kinde.account_api_calls == 1  # started while cold (allowed), joined, its answer dropped
    assert _cached() is None


@pytest.mark.parametrize("forged", ["unknown key", "wrong issuer"])
def test_once_a_jwks_is_loaded_a_forged_token_makes_no_kinde_call(
    env: pytest.MonkeyPatch, kinde: KindeStandIn, forged: str
) -> None:
    kinde.set_plan(USER, "pro")
    get_verifier().verify(kinde.mint("kp_someone_else"))  # the container is warm: a key set loaded
    assert get_verifier().jwks_loaded()
    token = (
        kinde.mint(USER, key=SigningKey("unknown-kid", new_rsa_key()))
        if forged == "unknown key"
        else kinde.mint(USER, issuer="https://someone-else.kinde.com")
    )
    with pytest.raises(Unauthorized):
        authenticate_prefetching(_headers(token), get_account_api(), FEATURE_KEY, None)
    assert kinde.account_api_calls == 0
    assert _cached() is None


def test_warm_a_valid_token_reads_nothing_beside_the_verification(
    env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    get_verifier().verify(kinde.mint("kp_someone_else"))
    principal, entitlement = authenticate_prefetching(
        _headers(kinde.mint(USER)), get_account_api(), FEATURE_KEY, None
    )
    assert (principal.user_id, entitlement, kinde.account_api_calls) == (USER, None, 0)


def test_a_failed_read_beside_the_jwks_is_the_answer_never_a_second_call(
    env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    """Kinde failing the overlapped read is what the request shows (unavailable), not a reason to
    ask again: one Account API call, nothing cached."""
    kinde.faults.append(Fault(200, body=b"{not json"))  # unreadable: no retry helps
    principal, entitlement = authenticate_prefetching(
        _headers(kinde.mint(USER)), get_account_api(), FEATURE_KEY, None
    )
    assert principal.user_id == USER
    assert isinstance(entitlement, EntitlementUnavailable)
    assert kinde.account_api_calls == 1
    assert _cached() is None


def test_kinde_refusing_the_token_beside_the_jwks_is_a_401(
    env: pytest.MonkeyPatch, kinde: KindeStandIn
) -> None:
    kinde.faults.append(Fault(401))
    with pytest.raises(Unauthorized):
        authenticate_prefetching(_headers(kinde.mint(USER)), get_account_api(), FEATURE_KEY, None)
    assert kinde.account_api_calls == 1
    assert _cached() is None
