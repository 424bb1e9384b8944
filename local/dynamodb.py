"""Embedded DynamoDB for tests and ``make dev``: moto's server, single-threaded, on 127.0.0.1.

Why single-threaded (DESIGN.md §8): moto's ``transact_write_items`` snapshots whole tables and
restores them on any cancellation, without a lock. On a threaded server two concurrent
transactions can erase each other's committed writes. Serving one request at a time makes every
request atomic, as DynamoDB's are, while separate requests still interleave, so a
count-then-put race in our code would still show.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

from local.config import LOCAL_AWS_ENV
from local.template import Template, load_template


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
    """A DynamoDB client with the local stack's fixed fake credentials (see local.config)."""
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
