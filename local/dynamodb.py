"""Embedded DynamoDB: moto's server, single-threaded, on 127.0.0.1, its data kept in one JSON file.

Why single-threaded: moto's ``transact_write_items`` snapshots whole tables and restores them on
any cancellation, without a lock, so on a threaded server two concurrent transactions can erase
each other's committed writes. One request at a time makes every request atomic, as DynamoDB's
are, while separate requests still interleave, so a count-then-put race in our code still shows.

moto keeps everything in memory, so ``Persister`` saves every table to ``.local/dynamodb.json``
every few seconds while the data changes, and on stop. Writes are atomic (temp file + rename).
Items are stored in DynamoDB's own typed JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from local.template import Template, load_template

# Fixed fake credentials: moto keeps data per access key and region, so every local process
# (make dev, its sandboxes, the CLI) must use the same ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
Tables = dict[str, list[dict[str, Any]]]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class SingleThreadedMotoServer(ThreadedMotoServer):
    def __init__(self, port: int = 0, ip_address: str = "127.0.0.1") -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._ip_address, self._port, app, threaded=False, request_handler=_QuietHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint_url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


def local_client(endpoint_url: str) -> Any:
    """A DynamoDB client with the local stack's fixed fake credentials."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=LOCAL_AWS_ENV["AWS_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=LOCAL_AWS_ENV["AWS_SESSION_TOKEN"],
        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 3}),
    )


def create_tables(
    endpoint_url: str | None, template: Template | None = None, *, client: Any = None
) -> list[str]:
    """Create every table of the template that does not exist yet (named by logical id)."""
    client = client or boto3.client("dynamodb", endpoint_url=endpoint_url)
    existing = set(client.list_tables().get("TableNames", []))
    created = []
    for name, definition in (template or load_template()).table_definitions().items():
        if name not in existing:
            client.create_table(**definition)
            created.append(name)
    return created


def load_snapshot(path: Path) -> Tables:
    """The saved tables ({} when there is no file); a damaged file raises ValueError."""
    if not path.exists():
        return {}
    try:
        tables = json.loads(path.read_text(encoding="utf-8"))["tables"]
        if not isinstance(tables, dict):
            raise TypeError("tables is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); move it away to start with empty tables") from None
    return {str(name): list(items) for name, items in tables.items()}


def restore(client: Any, snapshot: Tables, tables: list[str]) -> None:
    """Put every saved item back (plain PutItem: no transaction copies); gone tables are skipped."""
    for table in tables:
        for item in snapshot.get(table, []):
            client.put_item(TableName=table, Item=item)


class Persister:
    """Saves the tables every ``interval`` seconds when they changed, and once more on ``stop``."""

    def __init__(self, client: Any, tables: list[str], path: Path, interval: float, initial: Tables) -> None:
        self._client, self._tables, self._path, self._interval = client, tables, path, interval
        self._last = self._digest({table: initial.get(table, []) for table in tables})
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _digest(snapshot: Tables) -> str:
        return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()

    def _dump(self) -> Tables:
        snapshot: Tables = {}
        for table in self._tables:
            items: list[dict[str, Any]] = []
            params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            while True:
                page = self._client.scan(**params)
                items += page.get("Items", [])
                if "LastEvaluatedKey" not in page:
                    break
                params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            snapshot[table] = sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
        return snapshot

    def save_if_changed(self) -> None:
        with self._lock:
            snapshot = self._dump()
            if (digest := self._digest(snapshot)) == self._last:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": 1, "tables": snapshot}, indent=1, ensure_ascii=False))
            tmp.replace(self._path)  # the old snapshot stays until the new one is complete
            self._last = digest

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.save_if_changed()
            except Exception as exc:  # keep serving; the final save on stop tries again
                print(f"warning: could not save {self._path}: {exc}", flush=True)

    def stop(self, *, save: bool = True) -> None:
        self._stop.set()
        self._thread.join()
        if save:
            self.save_if_changed()
