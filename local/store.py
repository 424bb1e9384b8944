"""Keeps the embedded DynamoDB's data across restarts in one JSON file (``.local/dynamodb.json``).

moto keeps everything in memory, so the local stack snapshots every table: on shutdown, and
every few seconds while the data changes, so even a killed ``make dev`` loses little. Writes are
atomic (temp file + rename): a crash mid-write leaves the previous snapshot, never half a file.
Items are stored in DynamoDB's own typed JSON; binary values as base64.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.config import StartupError

FORMAT_VERSION = 1
Item = dict[str, Any]
Tables = dict[str, list[Item]]


def _encode(value: dict[str, Any]) -> dict[str, Any]:
    """One attribute value, JSON-safe: ``B``/``BS`` bytes become base64 text."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(item).decode() for item in inner]}
    if kind == "M":
        return {"M": {key: _encode(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_encode(item) for item in inner]}
    return {kind: inner}


def _decode(value: dict[str, Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(item) for item in inner]}
    if kind == "M":
        return {"M": {key: _decode(item) for key, item in inner.items()}}
    if kind == "L":
        return {"L": [_decode(item) for item in inner]}
    return {kind: inner}


def dump(client: Any, tables: Iterable[str]) -> Tables:
    """Every item of every table (consistent scans), JSON-safe, in a stable order."""
    snapshot: Tables = {}
    for table in tables:
        items: list[Item] = []
        params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = client.scan(**params)
            items.extend({k: _encode(v) for k, v in item.items()} for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        snapshot[table] = items
    return snapshot


def restore(client: Any, snapshot: Tables, tables: Iterable[str]) -> dict[str, int]:
    """Batch-write a snapshot into (existing, empty) tables; tables no longer in the template are skipped."""
    counts: dict[str, int] = {}
    for table in tables:
        items = snapshot.get(table, [])
        for start in range(0, len(items), 25):
            pending: dict[str, Any] = {
                table: [
                    {"PutRequest": {"Item": {k: _decode(v) for k, v in item.items()}}}
                    for item in items[start : start + 25]
                ]
            }
            for attempt in range(10):
                unprocessed = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                pending = unprocessed
                time.sleep(0.05 * 2**attempt)
            else:
                raise StartupError(f"could not restore {table}: DynamoDB kept items unprocessed")
        counts[table] = len(items)
    return counts


def digest(snapshot: Tables) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()


def save(path: Path, snapshot: Tables) -> None:
    """Atomically replace the file: the old snapshot stays until the new one is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": FORMAT_VERSION, "savedAt": datetime.now(UTC).isoformat(), "tables": snapshot}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def load(path: Path) -> Tables:
    """The saved snapshot ({} when there is none); a damaged file is a clear startup error."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        tables = document["tables"]
        if not isinstance(tables, dict):
            raise TypeError("tables is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise StartupError(f"{path} is damaged ({exc}); move it away to start with empty tables") from None
    return {str(name): list(items) for name, items in tables.items()}


class Persister:
    """Saves the tables every ``interval`` seconds when they changed, and once more on ``stop``."""

    def __init__(self, client: Any, tables: Iterable[str], path: Path, interval: float = 10.0) -> None:
        self._client = client
        self._tables = list(tables)
        self._path = path
        self._interval = interval
        self._last = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="dynamodb-persist", daemon=True)

    def start(self, initial: Tables | None = None) -> Persister:
        """``initial``: what was just restored, so an unchanged store is not rewritten."""
        if initial is not None:
            self._last = digest({table: initial.get(table, []) for table in self._tables})
        self._thread.start()
        return self

    def save_if_changed(self) -> bool:
        with self._lock:
            snapshot = dump(self._client, self._tables)
            current = digest(snapshot)
            if current == self._last:
                return False
            save(self._path, snapshot)
            self._last = current
            return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.save_if_changed()
            except Exception as exc:  # keep serving; the final save on stop will try again
                print(f"warning: could not save {self._path}: {exc}", flush=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.save_if_changed()
