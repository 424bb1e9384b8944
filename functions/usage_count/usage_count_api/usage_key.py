"""The keys the Kinde workflow may send: ``USAGE_API_KEY``, else an SSM SecureString.

Either holds one key, or several, one per line, the first being the current one: every listed key
is accepted, so a key is rotated without a window (add the new key on the first line, wait out the
cache, switch Kinde to it, remove the old line). Read with a bare botocore client (no boto3, no
Powertools parameters: this is Kinde's plan-change path, where every import is cold-start time)
and cached for at most ``KEY_MAX_AGE_SECONDS``, so a rotated key is picked up without a redeploy.
A parameter that does not exist means "no key configured": every key is refused, and that answer
is cached too, so callers cannot make us hammer SSM.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from planguard.errors import ServiceUnavailable
from planguard.settings import get_settings

KEY_MAX_AGE_SECONDS = 300
MISSING_MAX_AGE_SECONDS = 30

Keys = tuple[str, ...]

# The cache's clock, read at each lookup: tests move it instead of waiting out the cache.
clock: Callable[[], float] = time.monotonic

_lock = threading.Lock()
_cached: dict[str, tuple[float, Keys]] = {}  # parameter name -> (expires at, keys)


@functools.cache
def _ssm() -> Any:
    """Short timeouts: botocore's 60 s default would stall Kinde's workflow."""
    import botocore.session  # noqa: PLC0415 - only when the key lives in SSM
    from botocore.config import Config  # noqa: PLC0415

    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})
    return botocore.session.get_session().create_client("ssm", config=config)


def forget() -> None:
    """Drop the cached keys (tests; what expiry does)."""
    with _lock:
        _cached.clear()
    _ssm.cache_clear()


def lookup_pending() -> bool:
    """Whether the next ``usage_api_keys()`` asks SSM (a cold container, or the cached key expired)."""
    settings = get_settings()
    if settings.usage_api_key is not None or not settings.usage_api_key_param:
        return False
    with _lock:
        hit = _cached.get(settings.usage_api_key_param)
    return hit is None or hit[0] <= clock()


def prepare_lookup() -> None:
    """Build the SSM client now (its service model takes longer to load than a round trip), so a
    read started next runs beside the lookup itself."""
    _ssm()


def parse_keys(raw: str) -> Keys:
    """One key per line, the current one first; surrounding spaces and blank lines dropped."""
    return tuple(key for key in (line.strip() for line in raw.splitlines()) if key)


def usage_api_keys() -> Keys:
    """Every accepted key, the current one first; empty when none is configured (then every key
    is refused)."""
    settings = get_settings()
    if settings.usage_api_key is not None:
        return parse_keys(settings.usage_api_key.get_secret_value())
    name = settings.usage_api_key_param
    if not name:
        return ()
    now = clock()
    with _lock:
        hit = _cached.get(name)
    if hit is not None and hit[0] > now:
        return hit[1]
    keys, max_age = _fetch(name)
    with _lock:
        _cached[name] = (now + max_age, keys)
    return keys


def _fetch(name: str) -> tuple[Keys, float]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        value = _ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return (), MISSING_MAX_AGE_SECONDS
        raise ServiceUnavailable() from None  # throttled or denied: a retry may work
    except BotoCoreError:
        raise ServiceUnavailable() from None
    return (parse_keys(value) if isinstance(value, str) else ()), KEY_MAX_AGE_SECONDS
