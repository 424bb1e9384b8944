"""Plan Guard's tests. A test's folder says where it runs and is its marker (tests/conftest.py
applies it; tests/unit/test_layout.py keeps it so):

- ``unit``: no server and no network (moto in-process; tests/unit/conftest.py refuses sockets);
- ``integration``: starts servers on 127.0.0.1 (the Kinde stand-in, moto, the gateway, ``make dev``);
- ``fuzz``: generated inputs and injected faults, bounded (``make fuzz`` runs them longer);
- ``browser``: the dashboard in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
TESTS = ROOT / "tests"
KINDS = ("unit", "integration", "fuzz", "browser")


def kind_of(path: Path) -> str | None:
    """The kind of the test file at ``path``: its first folder under tests/, if that is a kind."""
    try:
        folder = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in KINDS else None
