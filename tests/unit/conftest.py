"""Unit tests use no server and no network: every socket connect, bind and name lookup fails here
(moto runs in-process and needs none)."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import pytest


class NetworkUsed(AssertionError):
    """A unit test reached for the network; it belongs in tests/integration."""


def _refuse(*args: Any, **_kwargs: Any) -> NoReturn:
    raise NetworkUsed(f"unit tests use no network: {args[1:] or args}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
