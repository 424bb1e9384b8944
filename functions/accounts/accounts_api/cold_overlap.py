"""A cold container's first request: the entitlement read overlaps the JWKS fetch, safely.

Only while no key set was ever loaded (a cold container, which fetches the JWKS anyway): the
entitlement is asked with the caller's own token, by the subject the token claims, while the
JWKS is fetched and the token checked. Its answer is discarded unless the token then verifies as
that subject, and only then cached; a verification failure is raised whatever Kinde answered; the
read is joined before anything is returned. A failed read is the request's answer from Kinde (Kinde
refusing the token is a 401, Kinde unavailable is shown as such), never a reason to ask twice.
Once a key set is loaded nothing overlaps, so a forged token never buys a call to Kinde.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from planguard.auth import Principal, get_verifier, unverified_subject
from planguard.entitlements import Entitlement, KindeAccountApi
from planguard.errors import EntitlementUnavailable, Unauthorized
from planguard.parallel_reads import join, start
from planguard.request_parsing import bearer_token

logger = logging.getLogger(__name__)


Prefetched = Entitlement | EntitlementUnavailable | None
"""What the overlapped read gave: the entitlement, Kinde being unavailable, or None (not read:
the caller reads it as usual)."""


def authenticate_prefetching(
    headers: Mapping[str, str] | None, kinde: KindeAccountApi, feature_key: str, deadline: float | None
) -> tuple[Principal, Prefetched]:
    """The verified caller, and what the entitlement read alongside gave (see ``Prefetched``)."""
    verifier = get_verifier()
    token = bearer_token(headers)
    subject = None if verifier.jwks_loaded() else unverified_subject(token)
    if token is None or subject is None:
        return verifier.verify(token), None
    read = start(kinde.fetch_unstored, token, feature_key, deadline)
    try:
        principal = verifier.verify(token)
    finally:
        join([read])  # a verification failure is raised after the read ended, its answer dropped
    if principal.user_id != subject:  # cannot happen for one token; never use it if it does
        return principal, None
    try:
        entitlement = read.result()
    except Unauthorized:  # Kinde refused the caller's own token: as the usual read answers
        raise
    except EntitlementUnavailable as error:
        logger.info("entitlement read beside the JWKS failed: Kinde unavailable")
        return principal, error
    kinde.remember(principal.user_id, feature_key, entitlement)
    return principal, entitlement


def authenticate_minting(headers: Mapping[str, str] | None, deadline: float | None) -> Principal:
    """Organization mode's cold path: the Management API's M2M token is minted beside the key-set
    fetch, under the rule above (only while no key set was ever loaded; the token is the
    application's, not the caller's, so nothing of the caller's request is used for it)."""
    verifier = get_verifier()
    token = bearer_token(headers)
    if verifier.jwks_loaded() or token is None:
        return verifier.verify(token)
    from planguard.kinde_management import get_management_api  # noqa: PLC0415 - organization mode only

    api = get_management_api()
    if api is None:
        return verifier.verify(token)
    mint = start(api.prepare, deadline)
    try:
        return verifier.verify(token)
    finally:
        join([mint])
