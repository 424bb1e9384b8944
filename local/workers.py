"""Functions as warm worker processes, one pool per function, like Lambda's execution environments.

Each worker runs ``local.worker`` with the function's own environment and ``sys.path``, imports
the handler once and is reused while it lives. A pool grows to a few workers under concurrent
requests (Lambda scales out the same way) and replaces a worker that died or timed out. Failures
come back as ``InvokeResult`` errors, so the gateway can answer 502 instead of crashing.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from local.template import ROOT, Template

INIT_TIMEOUT_SECONDS = 30.0
MAX_WORKERS_PER_FUNCTION = 4
LogSink = Callable[[str], None]


def console(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one function: handler, import paths, environment, limits."""

    function: str
    handler: str
    paths: tuple[str, ...]
    env: dict[str, str]
    timeout: int
    memory_mb: int

    @classmethod
    def from_template(cls, template: Template, function: str, env: dict[str, str]) -> WorkerSpec:
        spec = template.functions()[function]
        paths = (str(spec.code_uri), *(str(layer) for layer in spec.layers))
        return cls(function, spec.handler, paths, env, spec.timeout, spec.memory_mb)


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


class WorkerError(RuntimeError):
    def __init__(self, error: dict[str, Any], *, timed_out: bool = False) -> None:
        super().__init__(error.get("errorMessage", "worker failed"))
        self.error = error
        self.timed_out = timed_out


class Worker:
    """One process running one function; invoked by one caller at a time."""

    def __init__(self, spec: WorkerSpec, log: LogSink = console) -> None:
        self.spec = spec
        self._log = log
        config = {
            "function": spec.function,
            "handler": spec.handler,
            "paths": list(spec.paths),
            "timeout": spec.timeout,
            "memory": spec.memory_mb,
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "local.worker", json.dumps(config)],
            cwd=ROOT,
            env=spec.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the workers itself
        )
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout_fd = self._proc.stdout.fileno()
        self._buffer = b""
        threading.Thread(target=self._relay_logs, name=f"{spec.function}-logs", daemon=True).start()
        ready = self._read(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if not ready.get("ready"):
            self.stop()
            raise WorkerError(ready.get("error") or {"errorMessage": "the worker did not start"})

    def _relay_logs(self) -> None:
        """The handler's stdout/stderr, line by line, prefixed with the function name."""
        stream = self._proc.stderr
        assert stream is not None
        for raw in iter(stream.readline, b""):
            self._log(f"[{self.spec.function}] {raw.decode('utf-8', 'replace').rstrip()}")

    def _read(self, deadline: float) -> dict[str, Any]:
        with selectors.DefaultSelector() as selector:
            selector.register(self._stdout_fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise WorkerError(
                        {
                            "errorType": "Sandbox.Timedout",
                            "errorMessage": f"Task timed out after {self.spec.timeout:.2f} seconds",
                        },
                        timed_out=True,
                    )
                chunk = os.read(self._stdout_fd, 1 << 16)
                if not chunk:
                    code = self._proc.wait()
                    raise WorkerError(
                        {
                            "errorType": "Runtime.ExitError",
                            "errorMessage": f"{self.spec.function} exited with code {code}",
                        }
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def invoke(self, event: Any, request_id: str | None = None) -> InvokeResult:
        started = time.monotonic()
        request = {"event": event, "requestId": request_id or str(uuid.uuid4())}
        try:
            self._stdin.write(json.dumps(request).encode() + b"\n")
            self._stdin.flush()
            # The handler sees the template's timeout; the grace covers the process round trip.
            reply = self._read(started + self.spec.timeout + 1.0)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerError({"errorType": "Runtime.ExitError", "errorMessage": str(exc)}) from None
        duration = (time.monotonic() - started) * 1000
        if reply.get("ok"):
            return InvokeResult(True, reply.get("result"), duration_ms=duration)
        return InvokeResult(False, error=reply.get("error") or {}, duration_ms=duration)

    def kill(self) -> None:
        if self.alive:
            self._proc.kill()
        self._proc.wait()

    def stop(self, timeout: float = 3.0) -> None:
        """Close stdin (the worker's loop ends), then kill what did not exit in time."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


class FunctionPool:
    """Warm workers for one function: reuse an idle one, start another up to a maximum."""

    def __init__(self, spec: WorkerSpec, log: LogSink = console, max_workers: int = MAX_WORKERS_PER_FUNCTION):
        self.spec = spec
        self._log = log
        self._max = max_workers
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._starting = 0
        self._cond = threading.Condition()
        self._closed = False

    def warm(self) -> str | None:
        """Start one worker ahead of the first request; the init error's text if it fails."""
        try:
            worker = self._acquire()
        except WorkerError as exc:
            return f"{exc.error.get('errorType')}: {exc.error.get('errorMessage')}"
        self._release(worker)
        return None

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerError({"errorType": "Runtime.Shutdown", "errorMessage": "shutting down"})
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._all.remove(worker)
                if len(self._all) + self._starting < self._max:
                    self._starting += 1
                    break
                self._cond.wait()
        try:
            worker = Worker(self.spec, self._log)  # a cold start, outside the lock
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._starting -= 1
            self._all.append(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        with self._cond:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                if worker in self._all:
                    self._all.remove(worker)
                if self._closed:
                    worker.stop()
            self._cond.notify()

    def invoke(self, event: Any, request_id: str | None = None) -> InvokeResult:
        started = time.monotonic()
        try:
            worker = self._acquire()
        except WorkerError as exc:
            return InvokeResult(False, error=exc.error, duration_ms=(time.monotonic() - started) * 1000)
        try:
            return worker.invoke(event, request_id)
        except WorkerError as exc:
            worker.kill()  # a timed-out or crashed sandbox is never reused
            return InvokeResult(
                False,
                error=exc.error,
                duration_ms=(time.monotonic() - started) * 1000,
                timed_out=exc.timed_out,
            )
        finally:
            self._release(worker)

    def stop(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._idle.clear()
            self._all.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.stop()


class Functions:
    """Every function of the template as a pool: the one place that invokes handlers."""

    def __init__(
        self,
        template: Template,
        environments: Mapping[str, dict[str, str]],
        log: LogSink = console,
    ) -> None:
        self.pools = {
            name: FunctionPool(WorkerSpec.from_template(template, name, env), log)
            for name, env in environments.items()
        }

    def __contains__(self, function: object) -> bool:
        return function in self.pools

    def warm(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """Start one worker per function in parallel; returns the init errors by function."""
        errors: dict[str, str] = {}
        targets = list(names if names is not None else self.pools)

        def start(name: str) -> None:
            error = self.pools[name].warm()
            if error:
                errors[name] = error

        threads = [threading.Thread(target=start, args=(name,)) for name in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return errors

    def invoke(self, function: str, event: Any, request_id: str | None = None) -> InvokeResult:
        pool = self.pools.get(function)
        if pool is None:
            return InvokeResult(
                False, error={"errorType": "ResourceNotFound", "errorMessage": f"no function {function}"}
            )
        return pool.invoke(event, request_id)

    def stop(self) -> None:
        threads = [threading.Thread(target=pool.stop) for pool in self.pools.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
