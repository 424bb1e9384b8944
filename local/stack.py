"""The local system as one object: DynamoDB, Kinde (stand-in or real), the functions, the gateway.

``make dev`` runs it and publishes its ``Endpoints``; a CLI command that finds no running
``make dev`` starts the same stack briefly, over the same files, so every command sees the same data.
"""

from __future__ import annotations

import errno
from typing import Any

from local.config import PLAN_CHECK_FUNCTION, Endpoints, LocalConfig, StartupError, function_environment
from local.dynamodb import Persister, SingleThreadedMotoServer, create_tables, local_client
from local.functions import Functions, InvokeResult, LogSink, console
from local.gateway import Gateway
from local.kinde import KindeStandIn
from local.lambda_runtime import plan_selection_event
from local.usage_stream import STREAM_FUNCTION, MappingSettings, StreamPoller, enable_stream, stream_client
from local.web import http_request

HOST = "127.0.0.1"


def _port_error(exc: OSError, what: str, port: int, variable: str) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"port {port} on {HOST} is in use (is make dev already running?): "
            f"stop that process or set {variable} to another port"
        )
    return StartupError(f"cannot listen on {HOST}:{port} for the {what}: {exc.strerror or exc}")


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
        self.init_errors: dict[str, str] = {}
        self.usage_stream: StreamPoller | None = None

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
            self.gateway = Gateway(
                self.template,
                self._invoke,
                host=HOST,
                port=config.port,
                log=self._log,
                cors_origins=config.cors_origins,
            )
        except OSError as exc:
            raise _port_error(exc, "API", config.port, "PORT") from None
        self._start_kinde(self.gateway.url)
        self.gateway.kinde_domain = self.issuer  # the page signs in where the API's tokens come from
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
            if self.template.deployed(name, config.template_parameters)
        }
        self.functions = Functions(self.template, environments, self._log)
        if self._warm:
            self.init_errors = self.functions.warm()
        if self.standin is not None:
            self.standin.plan_change_hook = self._plan_check
            self.standin.start()
        if config.report_usage:
            self._start_usage_stream()
        self.gateway.start()

    def _start_kinde(self, api_url: str) -> None:
        """The stand-in (not started yet: the plan check needs the functions), or a real issuer."""
        config = self.config
        if config.kinde_issuer_url:
            self.issuer = config.kinde_issuer_url
            jwks = f"{self.issuer}/.well-known/jwks"  # without it every request would be a 401
            try:
                status, _ = http_request("GET", jwks, timeout=5)
            except OSError as exc:
                raise StartupError(
                    f"KINDE_ISSUER_URL {self.issuer} is not reachable (GET {jwks}: {exc})"
                ) from None
            if status != 200:
                raise StartupError(
                    f"KINDE_ISSUER_URL {self.issuer} does not serve a JWKS (GET {jwks} answered {status})"
                )
        else:
            try:
                self.standin = KindeStandIn(
                    config.plan_limits,
                    host=HOST,
                    port=config.kinde_port,
                    state_file=config.kinde_file,
                    audience=config.overrides.get("KINDE_AUDIENCE"),
                    api_url=api_url,
                    dashboard_urls=[api_url, *(config.cors_origins or "").split(",")],
                    token_seconds=config.kinde_token_seconds,
                    m2m_client_id=config.overrides["KINDE_M2M_CLIENT_ID"],
                    m2m_client_secret=config.overrides["KINDE_M2M_CLIENT_SECRET"],
                    log=self._log,
                )
            except OSError as exc:
                raise _port_error(exc, "Kinde stand-in", config.kinde_port, "KINDE_PORT") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise StartupError(f"{config.kinde_file} is damaged ({exc}); move it away") from None
            self.issuer = self.standin.url

    def _start_dynamodb(self) -> None:
        """The embedded DynamoDB with the saved data, or an external one; the tables in either."""
        config = self.config
        if config.dynamodb_endpoint_url:
            self.dynamodb_url = config.dynamodb_endpoint_url
            try:
                create_tables(self.dynamodb_url, self.template)
            except Exception as exc:
                message = (
                    f"DYNAMODB_ENDPOINT_URL {self.dynamodb_url} is not usable: {type(exc).__name__}: {exc}"
                )
                raise StartupError(message) from None
        else:
            self.moto = SingleThreadedMotoServer(ip_address=HOST)
            self.moto.start()
            self.dynamodb_url = self.moto.endpoint_url
            create_tables(self.dynamodb_url, self.template)
            tables = list(self.template.table_definitions())
            try:
                self.persister = Persister(
                    self.dynamodb_url, tables, config.dynamodb_file, config.save_interval_seconds
                )
            except ValueError as exc:  # a damaged file
                raise StartupError(str(exc)) from None

    def _start_usage_stream(self) -> None:
        """The table's stream on (after the restore: saved items are no changes), polled for the
        counters' changes as Lambda's event source mapping would."""
        if self.moto is None:
            raise StartupError("REPORT_USAGE=1 needs the embedded DynamoDB (unset DYNAMODB_ENDPOINT_URL)")
        settings = MappingSettings(self.template)
        arn = enable_stream(local_client(self.dynamodb_url), settings.table)
        self.usage_stream = StreamPoller(
            stream_client(self.dynamodb_url), arn, settings, self._report_usage, self._log
        ).start()

    def _report_usage(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        result = self._invoke(STREAM_FUNCTION, {"Records": batch})
        if not result.ok:
            raise RuntimeError(result.error_text)
        failed = len(result.payload.get("batchItemFailures") or [])
        self._log(
            f"usage stream: {len(batch)} counter change(s) -> {STREAM_FUNCTION} "
            f"({result.duration_ms:.0f} ms{f', {failed} to retry' if failed else ''})"
        )
        answer: dict[str, Any] = result.payload
        return answer

    def stop(self, *, save: bool = True) -> None:
        """Stop serving, let in-flight work end, save the data, then stop DynamoDB."""
        if self.usage_stream is not None:
            self.usage_stream.stop()
            self.usage_stream = None
        for part in (self.gateway, self.standin, self.functions):
            if part is not None:
                part.stop()
        if self.persister is not None:
            self.persister.stop(save=save)
        if self.moto is not None:
            self.moto.stop()
        self.gateway = self.standin = self.functions = self.persister = self.moto = None

    def endpoints(self, pid: int) -> Endpoints:
        assert self.gateway is not None
        return Endpoints(
            pid=pid,
            api=self.gateway.url,
            kinde=self.standin.url if self.standin else None,
            issuer=self.issuer,
            dynamodb=self.dynamodb_url,
            overrides=self.config.overrides,
        )

    def _invoke(self, function: str, event: dict[str, Any]) -> InvokeResult:
        assert self.functions is not None
        return self.functions.invoke(function, event)

    def _plan_check(
        self, user_id: str, current: str | None, requested: str, org: str | None = None
    ) -> dict[str, Any]:
        """Kinde running the workflow on a plan selection: PlanCheckFunction's direct-invoke path
        (``org``: an organization's plan, selected by the member ``user_id``)."""
        assert self.standin is not None
        org_code = org if org is not None else self.standin.organizations.codes_of(user_id)[0]
        event = plan_selection_event(user_id, current, requested, self.issuer, org_code)
        result = self._invoke(PLAN_CHECK_FUNCTION, event)
        whose = f"{org} (by {user_id})" if org is not None else user_id
        moving = f"plan change {whose}: {current} -> {requested} -> {PLAN_CHECK_FUNCTION}"
        if not result.ok:
            self._log(f"{moving} failed, change stopped ({result.error_text})")
            raise RuntimeError(f"{PLAN_CHECK_FUNCTION} failed: {result.error_text}")
        self._log(
            f"{moving} {'allowed' if result.payload['allowed'] else 'denied'} ({result.duration_ms:.0f} ms)"
        )
        return {key: result.payload[key] for key in ("allowed", "message", "reasons", "usage", "hold")}
