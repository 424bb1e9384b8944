"""The key the Kinde workflow must send: ``USAGE_API_KEY``, else an SSM SecureString.

Read with a bare botocore client (no boto3, no Powertools parameters: this is Kinde's plan-change
path, where every import is cold-start time) and cached for a few minutes, so a rotated key is
picked up without a redeploy. A parameter that does not exist means "no key configured": every
key is refused, and that answer is cached too, so callers cannot make us hammer SSM.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from planguard.errors import ServiceUnavailable
from planguard.settings import get_settings

KEY_MAX_AGE_SECONDS = 300
MISSING_MAX_AGE_SECONDS = 30

_lock = threading.Lock()
_cached: dict[str, tuple[float, str | None]] = {}  # parameter name -> (expires at, key)


@functools.cache
def _ssm() -> Any:
    """Short timeouts: botocore's 60 s default would stall Kinde's workflow."""
    import botocore.session  # noqa: PLC0415 - only when the key lives in SSM
    from botocore.config import Config  # noqa: PLC0415

    config = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 3})
    return botocore.session.get_session().create_client("ssm", config=config)


def forget() -> None:
    """Drop the cached key (tests; what expiry does)."""
    with _lock:
        _cached.clear()
    _ssm.cache_clear()


def lookup_pending() -> bool:
    """Whether the next ``usage_api_key()`` asks SSM (a cold container, or the cached key expired)."""
    settings = get_settings()
    if settings.usage_api_key is not None or not settings.usage_api_key_param:
        return False
    with _lock:
        hit = _cached.get(settings.usage_api_key_param)
    return hit is None or hit[0] <= time.monotonic()


def prepare_lookup() -> None:
    """Build the SSM client now (its service model takes longer to load than a round trip), so a
    read started next runs beside the lookup itself."""
    _ssm()


def usage_api_key() -> str | None:
    """The expected key, or None when none is configured (then every key is refused)."""
    settings = get_settings()
    if settings.usage_api_key is not None:
        return settings.usage_api_key.get_secret_value().strip() or None
    name = settings.usage_api_key_param
    if not name:
        return None
    now = time.monotonic()
    with _lock:
        hit = _cached.get(name)
    if hit is not None and hit[0] > now:
        return hit[1]
    key, max_age = _fetch(name)
    with _lock:
        _cached[name] = (now + max_age, key)
    return key


def _fetch(name: str) -> tuple[str | None, float]:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        value = _ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None, MISSING_MAX_AGE_SECONDS
        raise ServiceUnavailable() from None  # throttled or denied: a retry may work
    except BotoCoreError:
        raise ServiceUnavailable() from None
    return (value.strip() or None) if isinstance(value, str) else None, KEY_MAX_AGE_SECONDS
