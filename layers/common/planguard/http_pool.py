"""One pooled urllib3 manager per container for every call to Kinde (the JWKS and the Account API).

Both live on the issuer's host, so a warm container reuses one kept-alive connection (one TLS
handshake per container, not per request). ``maxsize`` lets a cold start fetch the JWKS and an
entitlement at the same time without a connection being thrown away. No retries or redirects of
its own: the callers own both.
"""

from __future__ import annotations

import functools

import urllib3

MAX_CONNECTIONS_PER_HOST = 4


@functools.cache
def http_pool() -> urllib3.PoolManager:
    return urllib3.PoolManager(maxsize=MAX_CONNECTIONS_PER_HOST, retries=False)
