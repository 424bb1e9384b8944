"""The local system as one object: DynamoDB, Kinde (stand-in or real), the functions, the gateway.

``make dev`` runs it with the gateway on PORT; ``make invoke`` and the CLI run it without the
gateway on free ports when ``make dev`` is not running, over the same persisted files, so every
command sees the same data. ``Session`` is what those commands need from either a running
``make dev`` (over HTTP) or such a throwaway stack.
"""

from __future__ import annotations

import errno
import json
import urllib.error
import urllib.request
from typing import Any, Protocol

from local.config import (
    DEV_TOKEN_TTL_SECONDS,
    PLAN_CHECK_FUNCTION,
    DevRuntime,
    LocalConfig,
    StartupError,
    function_environment,
)
from local.dynamodb import SingleThreadedMotoServer, create_tables, local_client
from local.gateway import Gateway
from local.kinde import KindeStandIn
from local.lambda_runtime import plan_selection_event
from local.store import Persister, load, restore
from local.template import Template
from local.workers import Functions, InvokeResult, LogSink, console


def _port_error(exc: OSError, what: str, host: str, port: int, variable: str) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"port {port} on {host} is in use (is make dev already running?): "
            f"stop that process or set {variable} to another port"
        )
    return StartupError(f"cannot listen on {host}:{port} for the {what}: {exc.strerror or exc}")


def http_json(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
    """A small JSON request with the standard library: (status, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def check_issuer(issuer: str) -> None:
    """A real ``KINDE_ISSUER_URL`` must serve its JWKS, or every request would be a 401."""
    url = f"{issuer}/.well-known/jwks"
    try:
        status, body = http_json("GET", url, timeout=5)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StartupError(f"KINDE_ISSUER_URL {issuer} is not reachable (GET {url}: {reason})") from None
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise StartupError(f"KINDE_ISSUER_URL {issuer} does not serve a JWKS (GET {url} answered {status})")


class LocalStack:
    """Starts in dependency order; ``stop`` saves the data and undoes everything, in reverse."""

    def __init__(
        self,
        config: LocalConfig,
        *,
        gateway: bool = True,
        kinde_port: int | None = None,
        warm: bool = True,
        log: LogSink = console,
    ) -> None:
        self.config = config
        self.template: Template = config.template
        self._want_gateway = gateway
        self._kinde_port = config.kinde_port if kinde_port is None else kinde_port
        self._warm = warm
        self._log = log
        self.gateway: Gateway | None = None
        self.standin: KindeStandIn | None = None
        self.moto: SingleThreadedMotoServer | None = None
        self.persister: Persister | None = None
        self.functions: Functions | None = None
        self.dynamodb_url = ""
        self.issuer = ""
        self.restored: dict[str, int] = {}
        self.init_errors: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop(save=False)
            raise
        return self

    def _start(self) -> None:
        config = self.config
        if self._want_gateway:  # first: a busy port should fail before anything slow happens
            try:
                self.gateway = Gateway(
                    self.template, self.invoke, host=config.host, port=config.port, log=self._log
                )
            except OSError as exc:
                raise _port_error(exc, "API", config.host, config.port, "PORT") from None
        if config.kinde_issuer_url:
            check_issuer(config.kinde_issuer_url)
            self.issuer = config.kinde_issuer_url
        else:
            try:
                self.standin = KindeStandIn(
                    config.plan_limits,
                    host=config.host,
                    port=self._kinde_port,
                    state_file=config.kinde_file,
                    audience=config.overrides.get("KINDE_AUDIENCE") or None,
                )
            except OSError as exc:
                raise _port_error(
                    exc, "Kinde stand-in", config.host, self._kinde_port, "KINDE_PORT"
                ) from None
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
        if self.gateway is not None:
            self.gateway.start()

    def _start_dynamodb(self) -> None:
        config = self.config
        if config.dynamodb_endpoint_url:
            self.dynamodb_url = config.dynamodb_endpoint_url
            try:
                create_tables(None, self.template, client=local_client(self.dynamodb_url))
            except Exception as exc:
                raise StartupError(
                    f"DYNAMODB_ENDPOINT_URL {self.dynamodb_url} is not usable: {type(exc).__name__}: {exc}"
                ) from None
            return
        snapshot = load(config.dynamodb_file)  # before starting: a damaged file fails fast
        self.moto = SingleThreadedMotoServer(port=0, ip_address=config.host)
        self.moto.start()
        self.dynamodb_url = self.moto.endpoint_url
        client = local_client(self.dynamodb_url)
        create_tables(None, self.template, client=client)
        tables = list(self.template.table_definitions())
        self.restored = restore(client, snapshot, tables)
        self.persister = Persister(client, tables, config.dynamodb_file, config.save_interval_seconds)
        self.persister.start(snapshot)

    def stop(self, *, save: bool = True) -> None:
        """Stop serving, let in-flight work end, save the data, then stop DynamoDB."""
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.standin is not None:
            self.standin.stop()
            self.standin = None
        if self.functions is not None:
            self.functions.stop()
            self.functions = None
        if self.persister is not None:
            try:
                if save:
                    self.persister.stop()
            finally:
                self.persister = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    # -- what commands use -------------------------------------------------------------------
    @property
    def api_url(self) -> str | None:
        return self.gateway.url if self.gateway else None

    @property
    def kinde_url(self) -> str | None:
        return self.standin.url if self.standin else None

    def invoke(self, function: str, event: dict[str, Any]) -> InvokeResult:
        if self.functions is None:
            return InvokeResult(False, error={"errorType": "Runtime.Shutdown", "errorMessage": "stopped"})
        return self.functions.invoke(function, event)

    def _plan_check(self, user_id: str, current: str | None, requested: str) -> dict[str, Any]:
        """The stand-in's plan_change_hook: Kinde running the workflow, here PlanCheckFunction."""
        event = plan_selection_event(user_id, current, requested, kinde_domain=self.issuer)
        result = self.invoke(PLAN_CHECK_FUNCTION, event)
        moving = f"plan change {user_id}: {current} -> {requested}"
        if not result.ok:
            self._log(f"{moving} -> {PLAN_CHECK_FUNCTION} failed, change stopped ({result.error_text})")
            raise RuntimeError(f"{PLAN_CHECK_FUNCTION} failed: {result.error_text}")
        payload = result.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("allowed"), bool):
            raise RuntimeError(f"{PLAN_CHECK_FUNCTION} returned no decision: {payload!r}")
        verdict = "allowed" if payload["allowed"] else "denied"
        self._log(f"{moving} -> {PLAN_CHECK_FUNCTION} {verdict} ({result.duration_ms:.0f} ms)")
        return {key: payload.get(key) for key in ("allowed", "message", "reasons", "usage")}

    def runtime(self, pid: int) -> DevRuntime:
        return DevRuntime(
            pid=pid,
            api=self.api_url or "",
            issuer=self.issuer,
            kinde=self.kinde_url,
            dynamodb=self.dynamodb_url,
            overrides=dict(self.config.overrides),
        )


# -- sessions: a running make dev, or a throwaway stack --------------------------------------------
class Session(Protocol):
    """What ``make invoke`` and the CLI need, wherever the local data lives right now."""

    running_dev: bool
    issuer: str
    dynamodb_url: str
    overrides: dict[str, str]

    def mint(self, user: str, plan: str | None = None, ttl_seconds: int = DEV_TOKEN_TTL_SECONDS) -> str: ...

    def request_plan_change(self, user: str, plan: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class NoStandIn(StartupError):
    """Tokens and plan changes come from the real Kinde when KINDE_ISSUER_URL is set."""


class DevSession:
    """Talks to the running ``make dev`` found in ``.local/dev.json``."""

    running_dev = True

    def __init__(self, runtime: DevRuntime) -> None:
        self.runtime = runtime
        self.issuer = runtime.issuer
        self.dynamodb_url = runtime.dynamodb
        self.overrides = dict(runtime.overrides)

    def _standin(self) -> str:
        if not self.runtime.kinde:
            raise NoStandIn(
                f"make dev trusts the real Kinde at {self.issuer}: use Kinde for tokens and plans"
            )
        return self.runtime.kinde

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._standin()}{path}"
        try:
            status, answer = http_json("POST", url, body, timeout=60)
        except OSError as exc:
            raise StartupError(f"make dev does not answer at {url}: {exc}") from None
        if status == 400:
            errors = answer.get("errors") if isinstance(answer, dict) else None
            message = errors[0].get("message") if errors else answer
            raise StartupError(str(message))
        if not isinstance(answer, dict):
            raise StartupError(f"unexpected answer from {url}: {status} {answer!r}")
        if status >= 300 and "allowed" not in answer:
            raise StartupError(f"{url} answered {status}: {answer}")
        return answer

    def mint(self, user: str, plan: str | None = None, ttl_seconds: int = DEV_TOKEN_TTL_SECONDS) -> str:
        body: dict[str, Any] = {"user": user, "ttlSeconds": ttl_seconds}
        if plan:
            body["plan"] = plan
        return str(self._post("/dev/token", body)["access_token"])

    def request_plan_change(self, user: str, plan: str) -> dict[str, Any]:
        return self._post("/dev/plan", {"user": user, "plan": plan})

    def close(self) -> None:
        return


class OfflineSession:
    """``make dev`` is not running: the same files, served by a throwaway stack on free ports."""

    running_dev = False

    def __init__(self, config: LocalConfig, log: LogSink = console) -> None:
        self.stack = LocalStack(config, gateway=False, kinde_port=0, warm=False, log=log).start()
        self.issuer = self.stack.issuer
        self.dynamodb_url = self.stack.dynamodb_url
        self.overrides = dict(config.overrides)

    def _standin(self) -> KindeStandIn:
        if self.stack.standin is None:
            raise NoStandIn(f"KINDE_ISSUER_URL is set ({self.issuer}): use Kinde for tokens and plans")
        return self.stack.standin

    def mint(self, user: str, plan: str | None = None, ttl_seconds: int = DEV_TOKEN_TTL_SECONDS) -> str:
        standin = self._standin()
        if plan:
            standin.set_plan(user, plan)
        return standin.mint(user, ttl_seconds=ttl_seconds)

    def request_plan_change(self, user: str, plan: str) -> dict[str, Any]:
        standin = self._standin()
        try:
            return standin.request_plan_change(user, plan)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        except Exception as exc:  # the plan check failed: Kinde stops the change
            return standin.failed_plan_change(user, plan, exc)

    def close(self) -> None:
        self.stack.stop()


def open_session(config: LocalConfig, log: LogSink = console) -> Session:
    """The running ``make dev`` of this local dir if there is one, else a throwaway stack."""
    runtime = DevRuntime.read(config.runtime_file)
    if runtime is not None:
        return DevSession(runtime)
    return OfflineSession(config, log)


def offline_token(
    config: LocalConfig, user: str, plan: str | None = None, ttl_seconds: int = DEV_TOKEN_TTL_SECONDS
) -> str:
    """A token ``make dev``'s stand-in will accept (its persisted key, its fixed issuer URL),
    minted while it is not running; ``plan`` is saved in the plan store for when it starts."""
    if config.kinde_issuer_url:
        raise NoStandIn(f"KINDE_ISSUER_URL is set ({config.kinde_issuer_url}): get tokens from Kinde")
    try:
        standin = KindeStandIn(
            config.plan_limits,
            port=0,
            state_file=config.kinde_file,
            audience=config.overrides.get("KINDE_AUDIENCE") or None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StartupError(f"{config.kinde_file} is damaged ({exc}); move it away") from None
    try:
        if plan:
            try:
                standin.set_plan(user, plan)
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        return standin.mint(user, ttl_seconds=ttl_seconds, issuer=config.standin_issuer)
    finally:
        standin.stop()


def dev_token(
    config: LocalConfig, user: str, plan: str | None = None, ttl_seconds: int = DEV_TOKEN_TTL_SECONDS
) -> tuple[str, DevRuntime | None]:
    """A token from the running ``make dev``'s stand-in, else one minted offline that it will
    accept once it runs; with the ``make dev`` it came from (None: minted offline)."""
    runtime = DevRuntime.read(config.runtime_file)
    if runtime is not None:
        return DevSession(runtime).mint(user, plan, ttl_seconds), runtime
    return offline_token(config, user, plan, ttl_seconds), None
