"""Runs ``python -m local.cli dev`` as a user would, on free ports, with its own ``.local`` directory.

The stack is a subprocess (its real entry point, signals and exit code are what is tested); its
output goes to files, never to pipes that could fill up and stall it. Readiness is the runtime
file ``dev.json`` that ``make dev`` publishes once everything is up.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests import ROOT

# Shell settings that would change what the stack does; tests set what they need explicitly.
CLEARED = (
    "PORT",
    "KINDE_PORT",
    "PLAN_LIMITS",
    "KINDE_ISSUER_URL",
    "DYNAMODB_ENDPOINT_URL",
    "USAGE_API_KEY",
    "ENTITLEMENT_CACHE_SECONDS",
    "KINDE_AUDIENCE",
    "PLANGUARD_TEMPLATE",
    "DEV_TOKEN",
    "CORS_ALLOWED_ORIGINS",
    "KINDE_TOKEN_SECONDS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_env(local_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update({"PLANGUARD_LOCAL_DIR": str(local_dir), "PORT": "0", "KINDE_PORT": "0"})
    env.update(extra)
    return env


def run_module(
    module: str, *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class DevStack:
    """A running ``make dev``: its URLs from ``dev.json``, its output files, and a clean stop."""

    proc: subprocess.Popen[bytes]
    local_dir: Path
    env: dict[str, str]
    out: Path
    err: Path
    runtime: dict[str, Any]

    @property
    def api(self) -> str:
        return str(self.runtime["api"])

    @property
    def kinde(self) -> str:
        return str(self.runtime["kinde"])

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    @property
    def stderr(self) -> str:
        return self.err.read_text()

    def token(self, user: str, plan: str | None = None) -> str:
        body: dict[str, Any] = {"user": user}
        if plan:
            body["plan"] = plan
        response = requests.post(f"{self.kinde}/dev/token", json=body, timeout=10)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def add_account(self, token: str, name: str, number: str) -> requests.Response:
        """POST /accounts through the running gateway, as the frontend would."""
        return requests.post(
            f"{self.api}/accounts",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": name, "accountNumber": number},
            timeout=30,
        )

    def plan(self, user: str, plan: str, apply_after: float = 0) -> dict[str, Any]:
        body = {"user": user, "plan": plan, "applyAfter": apply_after}
        response = requests.post(f"{self.kinde}/dev/plan", json=body, timeout=60)
        answer: dict[str, Any] = response.json()
        return answer

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"make dev did not stop on signal {sig}:\n{self.stdout}\n{self.stderr}"
            ) from None


def start_dev(local_dir: Path, *, timeout: float = 60, **extra: str) -> DevStack:
    """Start the stack and wait until it has published ``dev.json`` (or failed)."""
    local_dir.mkdir(parents=True, exist_ok=True)
    env = local_env(local_dir, **extra)
    runtime_file = local_dir / "dev.json"
    runtime_file.unlink(missing_ok=True)
    out, err = local_dir / "dev.stdout", local_dir / "dev.stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "local.cli", "dev"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"make dev exited with {proc.returncode}:\n{out.read_text()}\n{err.read_text()}"
            )
        if runtime_file.exists():
            try:
                runtime = json.loads(runtime_file.read_text())
            except ValueError:
                runtime = None
            if runtime and "Ctrl-C" in out.read_text():
                return DevStack(proc, local_dir, env, out, err, runtime)
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"make dev did not start in {timeout} s:\n{out.read_text()}\n{err.read_text()}")
