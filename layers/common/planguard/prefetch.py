"""A cold container's first request: the entitlement read overlaps the JWKS fetch, safely.

Only while no key set was ever loaded (a cold container, which fetches the JWKS anyway): the
entitlement is asked with the caller's own token, by the subject the token claims, while the
JWKS is fetched and the token checked. Its answer is discarded unless the token then verifies as
that subject, and only then cached; a verification failure is raised whatever Kinde answered; the
read is joined before anything is returned. Once a key set is loaded nothing overlaps, so a
forged token never buys a call to Kinde.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from planguard.auth import Principal, get_verifier, unverified_subject
from planguard.entitlements import Entitlement, KindeAccountApi
from planguard.errors import EntitlementUnavailable, Unauthorized
from planguard.headers import bearer_token
from planguard.together import join, start

logger = logging.getLogger(__name__)


def authenticate_prefetching(
    headers: Mapping[str, str] | None, kinde: KindeAccountApi, feature_key: str, deadline: float | None
) -> tuple[Principal, Entitlement | None]:
    """The verified caller, and their entitlement when it was read alongside (else None: the
    caller reads it as usual)."""
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
    try:
        entitlement = read.result()
    except (EntitlementUnavailable, Unauthorized) as error:
        logger.info("entitlement read beside the JWKS failed (%s); read again", type(error).__name__)
        return principal, None
    if principal.user_id != subject:  # cannot happen for one token; never cache it if it does
        return principal, None
    kinde.remember(principal.user_id, feature_key, entitlement)
    return principal, entitlement
