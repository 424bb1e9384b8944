"""Embedded DynamoDB: moto's server, single-threaded, on 127.0.0.1, its data kept in one JSON file.

Single-threaded because moto's ``transact_write_items`` snapshots and restores whole tables without
a lock: on a threaded server two transactions can erase each other's writes. One request at a time
makes each request atomic, as DynamoDB's are, while a count-then-put race in our code still shows.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from local.template import Template, load_template

# Fixed fake credentials for every local process (make dev, its sandboxes, the CLI).
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
    env = LOCAL_AWS_ENV
    session = boto3.Session(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"]
    )
    return session.client("dynamodb", endpoint_url=endpoint_url)


def create_tables(endpoint_url: str, template: Template | None = None) -> None:
    """Create every table of the template that does not exist yet."""
    client = local_client(endpoint_url)
    existing = client.list_tables()["TableNames"]
    for name, definition in (template or load_template()).table_definitions().items():
        if name not in existing:
            client.create_table(**definition)


def load_snapshot(path: Path) -> Tables:
    """The saved tables ({} without a file); a damaged file raises ValueError."""
    if not path.exists():
        return {}
    try:
        tables: Tables = json.loads(path.read_text(encoding="utf-8"))["tables"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); move it away to start with empty tables") from None
    return tables


class Persister:
    """Restores the saved items, then saves every table to ``path`` every ``interval`` seconds when
    they changed, and once more on ``stop`` (atomically: a temporary file, then a rename)."""

    def __init__(self, endpoint_url: str, tables: list[str], path: Path, interval: float) -> None:
        self.client, self.tables, self.path = local_client(endpoint_url), tables, path
        for table, items in load_snapshot(path).items():
            for item in items:
                self.client.put_item(TableName=table, Item=item)
        self.saved = self.dump()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self.thread.start()

    def dump(self) -> Tables:
        scan = self.client.get_paginator("scan").paginate
        return {
            t: [i for page in scan(TableName=t, ConsistentRead=True) for i in page["Items"]]
            for t in self.tables
        }

    def save_if_changed(self) -> None:
        if (snapshot := self.dump()) != self.saved:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": 1, "tables": snapshot}, indent=1, ensure_ascii=False))
            tmp.replace(self.path)
            self.saved = snapshot

    def _run(self, interval: float) -> None:
        while not self.stopping.wait(interval):
            try:
                self.save_if_changed()
            except Exception as exc:  # keep serving; the save on stop tries again
                print(f"warning: could not save {self.path}: {exc}", flush=True)

    def stop(self, *, save: bool = True) -> None:
        self.stopping.set()
        self.thread.join()
        if save:
            self.save_if_changed()
