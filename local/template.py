"""Reads ``template.yaml``: the one source of routes, table schemas and function settings.

The local gateway, the embedded DynamoDB and the tests all derive from here, so none of them
can drift from what ``sam deploy`` creates.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"


class TemplateError(RuntimeError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as ``{"Fn::X": value}``."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str

    @property
    def pattern(self) -> re.Pattern[str]:
        """``/accounts/{id}`` -> a regex with named groups (``{proxy+}`` takes the rest)."""
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    memory_mb: int
    layers: tuple[Path, ...] = ()


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        if not path.is_file():
            raise TemplateError(f"{path} not found: run from the repository root")
        self.path = path
        try:
            doc = yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from None
        if not isinstance(doc, dict):
            raise TemplateError(f"{path} is not a SAM template")
        self.doc: dict[str, Any] = doc
        self.resources: dict[str, Any] = self.doc.get("Resources", {})

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in self.doc.get("Parameters", {}).items()}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res.get("Type") == resource_type}

    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """``create_table`` arguments for every ``AWS::DynamoDB::Table``, keyed by logical id."""
        tables = {}
        for name, res in self.of_type("AWS::DynamoDB::Table").items():
            props = res["Properties"]
            tables[name] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
        return tables

    def routes(self) -> list[Route]:
        routes = []
        for name, res in self.of_type("AWS::Serverless::Function").items():
            for event in (res["Properties"].get("Events") or {}).values():
                if event.get("Type") == "HttpApi":
                    props = event["Properties"]
                    routes.append(Route(props["Method"].upper(), props["Path"], name))
        return routes

    def functions(self) -> dict[str, FunctionSpec]:
        globals_fn = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        specs = {}
        for name, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            env = {**global_env, **(props.get("Environment", {}).get("Variables", {}))}
            specs[name] = FunctionSpec(
                logical_id=name,
                code_uri=(self.path.parent / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                environment=env,
                timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                layers=self._layer_paths([*(globals_fn.get("Layers") or []), *(props.get("Layers") or [])]),
            )
        return specs

    def _layer_paths(self, layers: list[Any]) -> tuple[Path, ...]:
        """Import roots of the template's own layers, as Lambda mounts them (``python/`` if present)."""
        paths = []
        for layer in layers:
            ref = layer.get("Ref") if isinstance(layer, dict) else None
            res = self.resources.get(ref) if isinstance(ref, str) else None
            if not res or res.get("Type") != "AWS::Serverless::LayerVersion":
                continue  # a published layer ARN: nothing to mount locally
            content = (self.path.parent / res["Properties"]["ContentUri"]).resolve()
            paths.append(content / "python" if (content / "python").is_dir() else content)
        return tuple(paths)

    def resolve_environment(
        self, function: str, parameters: dict[str, Any], resource_names: dict[str, str]
    ) -> dict[str, str]:
        """A function's environment with ``!Ref``/``!Sub``/``!Join`` resolved locally."""
        values = {**self.parameter_defaults(), **parameters}
        env = {}
        for key, value in self.functions()[function].environment.items():
            try:
                resolved = resolve_value(value, values, resource_names)
            except TemplateError as exc:
                raise TemplateError(f"{function}.{key}: {exc}") from None
            if isinstance(resolved, list):
                resolved = ",".join(str(item) for item in resolved)
            env[key] = "" if resolved is None else str(resolved)
        return env

    def http_api_cors(self, parameters: dict[str, Any] | None = None) -> CorsConfig | None:
        """The ``CorsConfiguration`` of the (first) HttpApi, resolved, or None without one."""
        values = {**self.parameter_defaults(), **(parameters or {})}
        for res in self.of_type("AWS::Serverless::HttpApi").values():
            raw = (res.get("Properties") or {}).get("CorsConfiguration")
            if raw is True:
                return CorsConfig(allow_origins=("*",))
            if not isinstance(raw, dict):
                continue
            config = {key: resolve_value(value, values, {}) for key, value in raw.items()}
            strings = functools.partial(_strings, config)
            max_age = config.get("MaxAge")
            return CorsConfig(
                allow_origins=strings("AllowOrigins"),
                allow_headers=strings("AllowHeaders"),
                allow_methods=strings("AllowMethods"),
                expose_headers=strings("ExposeHeaders"),
                max_age=int(max_age) if max_age is not None else None,
                allow_credentials=bool(config.get("AllowCredentials", False)),
            )
        return None


def _strings(config: dict[str, Any], name: str) -> tuple[str, ...]:
    """A list setting that may be a list or a comma-separated string (CommaDelimitedList)."""
    value = config.get(name)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class CorsConfig:
    """An HttpApi ``CorsConfiguration``: what API Gateway answers preflights with."""

    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.allow_origins or origin in self.allow_origins


PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "000000000000",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "plan-guard-local",
}
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def resolve_value(value: Any, parameters: dict[str, Any], resource_names: dict[str, str]) -> Any:
    """The local value of a template expression: ``Ref``, ``Fn::Sub`` and ``Fn::Join`` only."""
    if not isinstance(value, dict):
        return value
    lookup = {**PSEUDO_PARAMETERS, **parameters, **resource_names}
    if "Ref" in value:
        ref = value["Ref"]
        if ref not in lookup:
            raise TemplateError(f"cannot resolve !Ref {ref} locally")
        return lookup[ref]
    if "Fn::Sub" in value:
        spec = value["Fn::Sub"]
        text, extra = (spec, {}) if isinstance(spec, str) else (spec[0], spec[1])
        scope = {**lookup, **{k: resolve_value(v, parameters, resource_names) for k, v in extra.items()}}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in scope:
                raise TemplateError(f"cannot resolve ${{{name}}} locally")
            return str(scope[name])

        return _SUB_VARIABLE.sub(substitute, text)
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        return str(separator).join(str(resolve_value(item, parameters, resource_names)) for item in items)
    raise TemplateError(f"cannot resolve {value} locally")


@functools.cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    return Template(path)
