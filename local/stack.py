"""The local system as one object: DynamoDB, Kinde (stand-in or real), the functions, the gateway.

``make dev`` runs it on PORT and KINDE_PORT and publishes its ``Endpoints``; a CLI command that
finds no running ``make dev`` starts the same stack briefly, over the same persisted files, so
every command sees the same data.
"""

from __future__ import annotations

import errno
from typing import Any

from local.config import PLAN_CHECK_FUNCTION, Endpoints, LocalConfig, StartupError, function_environment
from local.dynamodb import (
    Persister,
    SingleThreadedMotoServer,
    create_tables,
    load_snapshot,
    local_client,
    restore,
)
from local.functions import Functions, LogSink, console
from local.gateway import Gateway
from local.kinde import KindeStandIn
from local.lambda_runtime import plan_selection_event
from local.web import http_request

HOST = "127.0.0.1"


def _port_error(exc: OSError, what: str, port: int, variable: str) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"port {port} on {HOST} is in use (is make dev already running?): "
            f"stop that process or set {variable} to another port"
        )
    return StartupError(f"cannot listen on {HOST}:{port} for the {what}: {exc.strerror or exc}")


def check_issuer(issuer: str) -> None:
    """A real ``KINDE_ISSUER_URL`` must serve its JWKS, or every request would be a 401."""
    url = f"{issuer}/.well-known/jwks"
    try:
        status, body = http_request("GET", url, timeout=5)
    except OSError as exc:
        raise StartupError(f"KINDE_ISSUER_URL {issuer} is not reachable (GET {url}: {exc})") from None
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise StartupError(f"KINDE_ISSUER_URL {issuer} does not serve a JWKS (GET {url} answered {status})")


class LocalStack:
    """Starts in dependency order; ``stop`` saves the data and undoes everything, in reverse."""

    def __init__(self, config: LocalConfig, *, warm: bool = True, log: LogSink = console) -> None:
        self.config = config
        self.template = config.template
        self._warm = warm
        self._log = log
        self.gateway: Gateway | None = None
        self.standin: KindeStandIn | None = None
        self.moto: SingleThreadedMotoServer | None = None
        self.persister: Persister | None = None
        self.functions: Functions | None = None
        self.dynamodb_url = ""
        self.issuer = ""
        self.init_errors: dict[str, str] = {}

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop(save=False)
            raise
        return self

    def _start(self) -> None:
        config = self.config
        try:  # first: a busy port should fail before anything slow happens
            self.gateway = Gateway(self.template, self._invoke, host=HOST, port=config.port, log=self._log)
        except OSError as exc:
            raise _port_error(exc, "API", config.port, "PORT") from None
        if config.kinde_issuer_url:
            check_issuer(config.kinde_issuer_url)
            self.issuer = config.kinde_issuer_url
        else:
            try:
                self.standin = KindeStandIn(
                    config.plan_limits,
                    host=HOST,
                    port=config.kinde_port,
                    state_file=config.kinde_file,
                    audience=config.overrides.get("KINDE_AUDIENCE"),
                    api_url=self.gateway.url,
                )
            except OSError as exc:
                raise _port_error(exc, "Kinde stand-in", config.kinde_port, "KINDE_PORT") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise StartupError(f"{config.kinde_file} is damaged ({exc}); move it away") from None
            self.issuer = self.standin.url
        self._start_dynamodb()
        environments = {
            name: function_environment(
                self.template,
                name,
                issuer=self.issuer,
                dynamodb_endpoint=self.dynamodb_url,
                overrides=config.overrides,
            )
            for name in self.template.functions()
        }
        self.functions = Functions(self.template, environments, self._log)
        if self._warm:
            self.init_errors = self.functions.warm()
        if self.standin is not None:
            if PLAN_CHECK_FUNCTION in self.functions:
                self.standin.plan_change_hook = self._plan_check
            self.standin.start()
        self.gateway.start()

    def _start_dynamodb(self) -> None:
        config = self.config
        tables = list(self.template.table_definitions())
        if config.dynamodb_endpoint_url:
            self.dynamodb_url = config.dynamodb_endpoint_url
            try:
                create_tables(None, self.template, client=local_client(self.dynamodb_url))
            except Exception as exc:
                message = (
                    f"DYNAMODB_ENDPOINT_URL {self.dynamodb_url} is not usable: {type(exc).__name__}: {exc}"
                )
                raise StartupError(message) from None
            return
        try:
            snapshot = load_snapshot(config.dynamodb_file)  # before starting: a damaged file fails fast
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        self.moto = SingleThreadedMotoServer(ip_address=HOST)
        self.moto.start()
        self.dynamodb_url = self.moto.endpoint_url
        client = local_client(self.dynamodb_url)
        create_tables(None, self.template, client=client)
        restore(client, snapshot, tables)
        self.persister = Persister(
            client, tables, config.dynamodb_file, config.save_interval_seconds, snapshot
        )

    def stop(self, *, save: bool = True) -> None:
        """Stop serving, let in-flight work end, save the data, then stop DynamoDB."""
        for server in (self.gateway, self.standin):
            if server is not None:
                server.stop()
        self.gateway = self.standin = None
        if self.functions is not None:
            self.functions.stop()
            self.functions = None
        if self.persister is not None:
            self.persister.stop(save=save)
            self.persister = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def endpoints(self, pid: int) -> Endpoints:
        assert self.gateway is not None
        return Endpoints(
            pid=pid,
            api=self.gateway.url,
            kinde=self.standin.url if self.standin else None,
            issuer=self.issuer,
            dynamodb=self.dynamodb_url,
            overrides=dict(self.config.overrides),
        )

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        assert self.functions is not None
        return self.functions.invoke(function, event)

    def _plan_check(self, user_id: str, current: str | None, requested: str) -> dict[str, Any]:
        """The stand-in's plan change hook: Kinde running the workflow, here PlanCheckFunction's
        direct-invoke path on Kinde's ``user:plan_selection`` event."""
        event = plan_selection_event(user_id, current, requested, kinde_domain=self.issuer)
        result = self._invoke(PLAN_CHECK_FUNCTION, event)
        moving = f"plan change {user_id}: {current} -> {requested}"
        if not result.ok:
            self._log(f"{moving} -> {PLAN_CHECK_FUNCTION} failed, change stopped ({result.error_text})")
            raise RuntimeError(f"{PLAN_CHECK_FUNCTION} failed: {result.error_text}")
        payload = result.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("allowed"), bool):
            raise RuntimeError(f"{PLAN_CHECK_FUNCTION} returned no decision: {payload!r}")
        verdict = "allowed" if payload["allowed"] else "denied"
        self._log(f"{moving} -> {PLAN_CHECK_FUNCTION} {verdict} ({result.duration_ms:.0f} ms)")
        return {key: payload.get(key) for key in ("allowed", "message", "reasons", "usage", "hold")}
