"""The template's functions as warm sandboxes: one process per function, as Lambda isolates them.

Each sandbox (``local.lambda_runtime``) has its function's own environment and ``sys.path``,
imports its handler once and is reused, one call at a time; one that crashed or timed out is
replaced on the next call. Failures come back as ``InvokeResult`` errors (the gateway's 502/504).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local import ROOT
from local.template import FunctionSpec, Template

INIT_TIMEOUT_SECONDS = 30.0
LogSink = Callable[[str], None]


def console(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class InvokeResult:
    """A handler's return value (``ok``) or Lambda's error shape, and how long it took."""

    ok: bool
    payload: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    timed_out: bool = False

    @property
    def error_text(self) -> str:
        return f"{self.error.get('errorType', 'Error')}: {self.error.get('errorMessage', '')}".strip()


class SandboxError(RuntimeError):
    def __init__(self, error_type: str, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.error = {"errorType": error_type, "errorMessage": message}
        self.timed_out = timed_out


class Sandbox:
    """One process running one function's handler; what it prints reaches ``log`` line by line."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], log: LogSink) -> None:
        self.spec = spec
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "local.lambda_runtime", str(spec.code_uri), *map(str, spec.layers)],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches make dev only; it stops the sandboxes itself
        )
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin, stdout, stderr = self._proc.stdin, self._proc.stdout, self._proc.stderr
        self._replies: queue.Queue[bytes] = queue.Queue()  # b"" when the process has exited

        def relay() -> None:
            for raw in iter(stderr.readline, b""):
                log(f"[{spec.logical_id}] {raw.decode('utf-8', 'replace').rstrip()}")

        def replies() -> None:
            for line in iter(stdout.readline, b""):
                self._replies.put(line)
            self._replies.put(b"")

        threading.Thread(target=relay, daemon=True).start()
        threading.Thread(target=replies, daemon=True).start()
        ready = self._read(INIT_TIMEOUT_SECONDS)
        if not ready["ready"]:
            self.stop()
            raise SandboxError(ready["error"]["errorType"], ready["error"]["errorMessage"])

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _read(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=max(timeout, 0))
        except queue.Empty:
            self.kill()
            message = f"Task timed out after {self.spec.timeout:.2f} seconds"
            raise SandboxError("Sandbox.Timedout", message, timed_out=True) from None
        if not line:
            code = self._proc.wait()
            raise SandboxError("Runtime.ExitError", f"{self.spec.logical_id} exited with code {code}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def invoke(self, event: Any) -> InvokeResult:
        """Raises ``SandboxError`` when the process died or timed out (it is not reusable then)."""
        started = time.monotonic()
        try:
            self._stdin.write(json.dumps({"event": event, "requestId": str(uuid.uuid4())}).encode() + b"\n")
            self._stdin.flush()
        except OSError as exc:
            raise SandboxError("Runtime.ExitError", str(exc)) from None
        # The handler sees the template's timeout; the grace covers the process round trip.
        reply = self._read(self.spec.timeout + 1.0)
        duration = (time.monotonic() - started) * 1000
        return InvokeResult(reply["ok"], reply.get("result"), reply.get("error", {}), duration)

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()

    def stop(self) -> None:
        """Close stdin (the sandbox's loop ends), then kill what did not exit in time."""
        self._stdin.close()
        try:
            self._proc.wait(3)
        except subprocess.TimeoutExpired:
            self.kill()


class Functions:
    """The template's functions, each with its one warm sandbox: where handlers are invoked."""

    def __init__(
        self, template: Template, environments: Mapping[str, dict[str, str]], log: LogSink = console
    ) -> None:
        self._specs = {name: template.functions()[name] for name in environments}
        self._envs = environments
        self._log = log
        self._sandboxes: dict[str, Sandbox | None] = dict.fromkeys(environments)
        self._locks = {name: threading.Lock() for name in environments}
        self._closed = False

    def _sandbox(self, function: str) -> Sandbox:
        """The function's live sandbox, started if there is none (a cold start); under its lock."""
        if self._closed:
            raise SandboxError("Runtime.Shutdown", "the local stack is stopping")
        sandbox = self._sandboxes[function]
        if sandbox is None or not sandbox.alive:
            sandbox = self._sandboxes[function] = Sandbox(
                self._specs[function], self._envs[function], self._log
            )
        return sandbox

    def invoke(self, function: str, event: Any) -> InvokeResult:
        started = time.monotonic()
        with self._locks[function]:
            try:
                return self._sandbox(function).invoke(event)
            except SandboxError as exc:
                if (sandbox := self._sandboxes[function]) is not None:
                    sandbox.kill()  # a timed-out or crashed sandbox is never reused
                    self._sandboxes[function] = None
                duration = (time.monotonic() - started) * 1000
                return InvokeResult(False, error=exc.error, duration_ms=duration, timed_out=exc.timed_out)

    def warm(self) -> dict[str, str]:
        """Start every sandbox ahead of the first request, in parallel; the init errors by function."""
        errors: dict[str, str] = {}

        def start(name: str) -> None:
            with self._locks[name]:
                try:
                    self._sandbox(name)
                except SandboxError as exc:
                    errors[name] = f"{exc.error['errorType']}: {exc.error['errorMessage']}"

        with ThreadPoolExecutor(len(self._specs)) as pool:
            pool.map(start, self._specs)
        return errors

    def stop(self) -> None:
        self._closed = True
        for name, lock in self._locks.items():
            with lock:  # lets a running invocation finish
                sandbox, self._sandboxes[name] = self._sandboxes[name], None
            if sandbox is not None:
                sandbox.stop()
