"""``make dev`` refuses to start with one clear line (exit 1, no traceback) when it cannot work."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.local_stack import free_port, local_env, run_module


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def refuses(tmp_path: Path, **env: str) -> str:
    result = run_module("local.cli", "dev", env=local_env(tmp_path, **env), timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "dev.json").exists()
    return lines[0]


def test_api_port_in_use(tmp_path: Path, busy_port: int) -> None:
    message = refuses(tmp_path, PORT=str(busy_port))
    assert f"port {busy_port} on 127.0.0.1 is in use" in message
    assert "PORT" in message


def test_stand_in_port_in_use(tmp_path: Path, busy_port: int) -> None:
    message = refuses(tmp_path, KINDE_PORT=str(busy_port))
    assert f"port {busy_port} on 127.0.0.1 is in use" in message
    assert "KINDE_PORT" in message


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ('{"free":', "PLAN_LIMITS is not valid JSON"),
        (
            '{"free":{"tracked_accounts":-1}}',
            'PLAN_LIMITS["free"]["tracked_accounts"] must be a whole number',
        ),
        ('{"free":{}}', 'PLAN_LIMITS["free"] must be an object with a "tracked_accounts" key'),
        ('{"pro plan":{"tracked_accounts":5}}', "PLAN_LIMITS plan codes must be non-empty strings of"),
    ],
)
def test_bad_plan_limits(tmp_path: Path, limits: str, expected: str) -> None:
    assert expected in refuses(tmp_path, PLAN_LIMITS=limits)


def test_unreachable_kinde_issuer(tmp_path: Path) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"
    message = refuses(tmp_path, KINDE_ISSUER_URL=issuer)
    assert f"KINDE_ISSUER_URL {issuer} is not reachable" in message


def test_missing_template(tmp_path: Path) -> None:
    message = refuses(tmp_path, PLANGUARD_TEMPLATE=str(tmp_path / "template.yaml"))
    assert "template.yaml not found" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "\u00b2"),  # "²": str.isdigit() says yes, int() raises
        ("KINDE_PORT", "\u0663"),  # "٣": int() would read 3
        ("KINDE_ISSUER_URL", "kinde.com"),
        ("PLANGUARD_SAVE_INTERVAL", "soon"),
        ("PLANGUARD_SAVE_INTERVAL", "0"),
    ],
)
def test_bad_values(tmp_path: Path, name: str, value: str) -> None:
    assert f"{name} must be" in refuses(tmp_path, **{name: value})


def test_damaged_data_file(tmp_path: Path) -> None:
    (tmp_path / "dynamodb.json").write_text("{not json")
    assert "dynamodb.json is damaged" in refuses(tmp_path)


def test_an_event_that_is_not_an_object_is_one_line(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("[1, 2]")
    result = run_module("local.cli", "invoke", str(event), env=local_env(tmp_path), timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {event} must hold one JSON object, the event"


@pytest.mark.parametrize("seconds", ["10", "abc", "-60", "4.5"])
def test_bad_token_seconds(tmp_path: Path, seconds: str) -> None:
    """Kinde's SDK refreshes a token 10 s before its end: a shorter life would refresh forever."""
    message = refuses(tmp_path, KINDE_TOKEN_SECONDS=seconds)
    assert f"KINDE_TOKEN_SECONDS must be a whole number of seconds above 10, got {seconds!r}" in message
