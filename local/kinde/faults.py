"""The answers a test queues for the stand-in's Account API, JWKS endpoint, Management API and M2M
token grant, and their call counters."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """One canned answer, consumed in order: exactly this status, these headers and this body
    (bytes are sent as they are, e.g. malformed JSON; anything else as JSON), after ``delay_seconds``.
    Status 0 means only the delay, then the normal answer (a slow Kinde)."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_seconds: float = 0.0


@dataclass
class FaultQueues:
    """What the next calls to each endpoint answer, and how many calls each endpoint has had."""

    account_api: list[Fault] = field(default_factory=list)
    jwks: list[Fault] = field(default_factory=list)
    account_api_calls: int = 0
    jwks_calls: int = 0
    management_api: list[Fault] = field(default_factory=list)
    m2m_token: list[Fault] = field(default_factory=list)  # the client-credentials grant only
    management_api_calls: int = 0
    m2m_token_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def account_api_call(self) -> Fault | None:
        """Count one Account API call; the fault it should answer with, if one is queued."""
        with self._lock:
            self.account_api_calls += 1
            return self.account_api.pop(0) if self.account_api else None

    def management_api_call(self) -> Fault | None:
        """Count one Management API call; the fault it should answer with, if one is queued."""
        with self._lock:
            self.management_api_calls += 1
            return self.management_api.pop(0) if self.management_api else None

    def m2m_token_call(self) -> Fault | None:
        """Count one client-credentials grant; the fault it should answer with, if one is queued."""
        with self._lock:
            self.m2m_token_calls += 1
            return self.m2m_token.pop(0) if self.m2m_token else None

    def jwks_call(self) -> Fault | None:
        """Count one JWKS call; the fault it should answer with, if one is queued."""
        with self._lock:
            self.jwks_calls += 1
            return self.jwks.pop(0) if self.jwks else None
