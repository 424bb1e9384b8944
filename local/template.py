"""Reads ``template.yaml``: the one source of routes, tables and function settings locally."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from local import ROOT

TEMPLATE_PATH = ROOT / "template.yaml"
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::AccountId": "000000000000", "AWS::Partition": "aws"}


class TemplateError(RuntimeError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as ``{"Fn::X": value}`` (``{"Ref": value}``)."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        value = value.split(".", 1) if suffix == "GetAtt" else value  # as CloudFormation reads it
    else:
        value = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
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
        """The path parameters when ``method path`` is this route, else None."""
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path) if method == self.method else None
        return found.groupdict() if found else None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, Any]
    timeout: int
    memory_mb: int
    layers: tuple[Path, ...]


@dataclass(frozen=True)
class CorsConfig:
    """The HttpApi's ``CorsConfiguration``: what API Gateway answers preflights with."""

    allow_origins: tuple[str, ...]
    allow_headers: tuple[str, ...]
    allow_methods: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        if not path.is_file():
            raise TemplateError(f"{path} not found: run from the repository root")
        self.path = path
        self.doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader
        self.resources: dict[str, Any] = self.doc["Resources"]

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in self.doc.get("Parameters", {}).items()}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == resource_type}

    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """``create_table`` arguments for every table, named by its logical id."""
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
            for event in res["Properties"].get("Events", {}).values()
            if event["Type"] == "HttpApi"
        ]

    def functions(self) -> dict[str, FunctionSpec]:
        globals_fn = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        # The template's own layers (``!Ref CommonLayer``), as Lambda mounts them.
        layers = tuple(
            (self.path.parent / self.resources[layer["Ref"]]["Properties"]["ContentUri"]).resolve()
            for layer in globals_fn.get("Layers", [])
        )
        specs = {}
        for name, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            specs[name] = FunctionSpec(
                logical_id=name,
                code_uri=(self.path.parent / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                environment={**global_env, **props.get("Environment", {}).get("Variables", {})},
                timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                layers=layers,
            )
        return specs

    def resolve_environment(
        self, function: str, parameters: dict[str, Any], resource_names: dict[str, str]
    ) -> dict[str, str]:
        """A function's environment with ``!Ref``/``!Sub`` resolved locally."""
        values = {**self.parameter_defaults(), **parameters}
        env = {}
        for key, value in self.functions()[function].environment.items():
            resolved = resolve_value(value, values, resource_names)
            env[key] = "" if resolved is None else str(resolved)
        return env

    def http_api_cors(self, parameters: dict[str, Any] | None = None) -> CorsConfig | None:
        """The HttpApi's ``CorsConfiguration``, resolved with the parameter defaults (and
        ``parameters`` over them), or None without one. Its ``!If`` on a condition is evaluated,
        and ``AWS::NoValue`` drops the key, as CloudFormation does."""
        values = {**self.parameter_defaults(), **(parameters or {})}
        for res in self.of_type("AWS::Serverless::HttpApi").values():
            if raw := res["Properties"].get("CorsConfiguration"):
                config = {}
                for key, expression in raw.items():
                    chosen = expression
                    if isinstance(expression, dict) and "Fn::If" in expression:
                        name, if_true, if_false = expression["Fn::If"]
                        chosen = if_true if self._condition(name, values) else if_false
                    if chosen != {"Ref": "AWS::NoValue"}:
                        config[key] = resolve_value(chosen, values, {})

                def strings(name: str, config: dict[str, Any] = config) -> tuple[str, ...]:
                    value = config.get(name, [])  # a list, or a CommaDelimitedList's string
                    items = value.split(",") if isinstance(value, str) else value
                    return tuple(item.strip() for item in items if item.strip())

                return CorsConfig(
                    allow_origins=strings("AllowOrigins"),
                    allow_headers=strings("AllowHeaders"),
                    allow_methods=strings("AllowMethods"),
                    expose_headers=strings("ExposeHeaders"),
                    max_age=config.get("MaxAge"),
                )
        return None

    def deployed(self, resource: str, parameters: dict[str, Any] | None = None) -> bool:
        """Whether CloudFormation creates ``resource`` with these parameters (over the defaults):
        it has no ``Condition``, or its condition holds."""
        condition = self.resources[resource].get("Condition")
        values = {**self.parameter_defaults(), **(parameters or {})}
        return condition is None or self._condition(condition, values)

    def _condition(self, name: str, values: dict[str, Any]) -> bool:
        """One of the template's ``Conditions``, over ``!Not``, ``!Equals``, ``!Join`` and ``!Ref``."""

        def evaluate(expr: Any) -> Any:
            if not isinstance(expr, dict):
                return expr
            if "Ref" in expr:
                return values[expr["Ref"]]
            if "Fn::Not" in expr:
                return not evaluate(expr["Fn::Not"][0])
            if "Fn::Equals" in expr:
                left, right = (evaluate(part) for part in expr["Fn::Equals"])
                return left == right
            if "Fn::Join" in expr:
                separator, items = expr["Fn::Join"]
                items = evaluate(items)
                return separator.join(items.split(",") if isinstance(items, str) else items)
            raise TemplateError(f"cannot evaluate {expr} locally")

        return bool(evaluate(self.doc["Conditions"][name]))


def resolve_value(value: Any, parameters: dict[str, Any], resource_names: dict[str, str]) -> Any:
    """The local value of a template expression: a plain value, ``Ref`` or ``Fn::Sub``."""
    if not isinstance(value, dict):
        return value
    lookup = {**PSEUDO_PARAMETERS, **parameters, **resource_names}
    if value.get("Ref") in lookup:
        return lookup[value["Ref"]]
    if isinstance(sub := value.get("Fn::Sub"), str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in lookup:
                raise TemplateError(f"cannot resolve ${{{match.group(1)}}} locally")
            return str(lookup[match.group(1)])

        return re.sub(r"\$\{([^}!]+)\}", substitute, sub)
    raise TemplateError(f"cannot resolve {value} locally")


@functools.cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    return Template(path)
