"""One Lambda-like sandbox: a process that imports one handler once, then serves invocations.

Started by ``local.workers`` as ``python -m local.worker CONFIG_JSON`` with the function's own
environment (DESIGN.md §6: settings are read once per process, so functions cannot share one).
Messages are JSON lines: requests on stdin, replies on a private copy of stdout. File descriptor 1
itself is pointed at stderr, so whatever the handler prints or logs reaches the console, never
the protocol pipe.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback
import warnings
from typing import IO, Any

from local.lambda_runtime import LocalContext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error(exc: BaseException) -> dict[str, Any]:
    """Lambda's error shape: errorType, errorMessage, stackTrace."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _send(out: IO[str], message: dict[str, Any]) -> None:
    try:
        line = json.dumps(message, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        line = json.dumps(
            {"ok": False, "error": {"errorType": "Runtime.MarshalError", "errorMessage": str(exc)}}
        )
    out.write(line + "\n")
    out.flush()


def main(argv: list[str]) -> int:
    config: dict[str, Any] = json.loads(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a sandbox ends
    # Powertools warns on every request without custom metrics; CloudWatch would not show it.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    # Lambda's path: the function's code, then its layers, then the runtime (site-packages).
    keep = [p for p in sys.path if p not in ("", ROOT, os.getcwd()) and not p.startswith(ROOT + "/layers")]
    sys.path[:] = [*config["paths"], *keep]
    module_name, _, attribute = config["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except BaseException as exc:  # init failure: report it, as Lambda reports Runtime.ImportModuleError
        _send(out, {"ready": False, "error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}})
        return 1
    _send(out, {"ready": True, "pid": os.getpid()})
    for line in requests:
        request = json.loads(line)
        context = LocalContext(
            config["function"],
            timeout_seconds=config["timeout"],
            memory_limit_in_mb=config["memory"],
            aws_request_id=request["requestId"],
        )
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            _send(out, {"ok": False, "error": _error(exc)})
        else:
            _send(out, {"ok": True, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
