"""Print the fuzzers' figures at the end of the run (docs/RELIABILITY.md quotes them)."""

from __future__ import annotations

import pytest

from tests.fuzz.api.harness import EXAMPLES, FIGURES, SEED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    statuses = ", ".join(
        f"{k.split()[1]}: {v}" for k, v in sorted(FIGURES.items()) if k.startswith("status ")
    )
    server_errors = sum(v for k, v in FIGURES.items() if k.startswith("status 5"))
    terminalreporter.write_line(
        f"API fuzzing (seed {SEED if SEED is not None else 'random'}, "
        f"{EXAMPLES} examples per operation and mode): "
        f"{FIGURES['requests']} HTTP requests ({FIGURES['schemathesis requests']} schemathesis, "
        f"{FIGURES['hypothesis requests']} hypothesis), {FIGURES['direct invokes']} direct invokes; "
        f"5xx: {server_errors}; statuses {statuses}"
    )
