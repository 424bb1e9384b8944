"""Reads ``template.yaml``: the one source of routes, table schemas and function settings.

The local gateway, the embedded DynamoDB and the tests all derive from here, so none of them
can drift from what ``sam deploy`` creates. Only what this template uses is understood: HttpApi
routes with ``{name}`` parameters, ``!Ref`` and ``!Sub``, one layer folder.
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
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::AccountId": "000000000000", "AWS::Partition": "aws"}


class TemplateError(RuntimeError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """Keeps CloudFormation short-form tags as ``{"Fn::X": value}`` (``{"Ref": value}``)."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` is this route (``/accounts/{id}``), else None."""
        if method != self.method:
            return None
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    memory_mb: int
    layers: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CorsConfig:
    """An HttpApi ``CorsConfiguration``: what API Gateway answers preflights with."""

    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None


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
        self.resources: dict[str, Any] = doc.get("Resources", {})

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in self.doc.get("Parameters", {}).items()}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res.get("Type") == resource_type}

    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """``create_table`` arguments for every ``AWS::DynamoDB::Table``, keyed (and named) by logical id."""
        return {
            name: {
                "TableName": name,
                "KeySchema": res["Properties"]["KeySchema"],
                "AttributeDefinitions": res["Properties"]["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            for name, res in self.of_type("AWS::DynamoDB::Table").items()
        }

    def routes(self) -> list[Route]:
        return [
            Route(event["Properties"]["Method"].upper(), event["Properties"]["Path"], name)
            for name, res in self.of_type("AWS::Serverless::Function").items()
            for event in (res["Properties"].get("Events") or {}).values()
            if event.get("Type") == "HttpApi"
        ]

    def functions(self) -> dict[str, FunctionSpec]:
        globals_fn = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        specs = {}
        for name, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            layers = [*(globals_fn.get("Layers") or []), *(props.get("Layers") or [])]
            specs[name] = FunctionSpec(
                logical_id=name,
                code_uri=(self.path.parent / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                environment={**global_env, **(props.get("Environment", {}).get("Variables", {}))},
                timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                layers=tuple(path for layer in layers if (path := self._layer_path(layer))),
            )
        return specs

    def _layer_path(self, layer: Any) -> Path | None:
        """The folder of one of the template's own layers (``!Ref CommonLayer``), as Lambda mounts it."""
        res = self.resources.get(str(layer.get("Ref"))) if isinstance(layer, dict) else None
        if not res or res.get("Type") != "AWS::Serverless::LayerVersion":
            return None
        return (self.path.parent / str(res["Properties"]["ContentUri"])).resolve()

    def resolve_environment(
        self, function: str, parameters: dict[str, Any], resource_names: dict[str, str]
    ) -> dict[str, str]:
        """A function's environment with ``!Ref``/``!Sub`` resolved locally."""
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
        """The ``CorsConfiguration`` of the HttpApi, resolved, or None without one."""
        values = {**self.parameter_defaults(), **(parameters or {})}
        for res in self.of_type("AWS::Serverless::HttpApi").values():
            raw = (res.get("Properties") or {}).get("CorsConfiguration")
            if not isinstance(raw, dict):
                continue
            config = {key: resolve_value(value, values, {}) for key, value in raw.items()}

            def strings(name: str, config: dict[str, Any] = config) -> tuple[str, ...]:
                value = config.get(name) or []  # a list, or a CommaDelimitedList's string
                items = value.split(",") if isinstance(value, str) else value
                return tuple(str(item).strip() for item in items if str(item).strip())

            max_age = config.get("MaxAge")
            return CorsConfig(
                allow_origins=strings("AllowOrigins"),
                allow_headers=strings("AllowHeaders"),
                allow_methods=strings("AllowMethods"),
                expose_headers=strings("ExposeHeaders"),
                max_age=int(max_age) if max_age is not None else None,
            )
        return None


def resolve_value(value: Any, parameters: dict[str, Any], resource_names: dict[str, str]) -> Any:
    """The local value of a template expression: a plain value, ``Ref`` or ``Fn::Sub``."""
    if not isinstance(value, dict):
        return value
    lookup = {**PSEUDO_PARAMETERS, **parameters, **resource_names}
    if "Ref" in value:
        if value["Ref"] not in lookup:
            raise TemplateError(f"cannot resolve !Ref {value['Ref']} locally")
        return lookup[value["Ref"]]
    if isinstance(value.get("Fn::Sub"), str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in lookup:
                raise TemplateError(f"cannot resolve ${{{match.group(1)}}} locally")
            return str(lookup[match.group(1)])

        return re.sub(r"\$\{([^}!]+)\}", substitute, value["Fn::Sub"])
    raise TemplateError(f"cannot resolve {value} locally")


@functools.cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    return Template(path)
