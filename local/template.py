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


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        if not path.exists():
            raise TemplateError(f"{path} not found: run from the repository root")
        self.path = path
        self.doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
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
            )
        return specs

    def resolve_environment(
        self, function: str, parameters: dict[str, Any], resource_names: dict[str, str]
    ) -> dict[str, str]:
        """A function's environment with ``!Ref`` to parameters and resources resolved locally."""
        values = {**self.parameter_defaults(), **parameters}
        env = {}
        for key, value in self.functions()[function].environment.items():
            if isinstance(value, dict) and "Ref" in value:
                ref = value["Ref"]
                if ref in resource_names:
                    value = resource_names[ref]
                elif ref in values:
                    value = values[ref]
                else:
                    raise TemplateError(f"{function}.{key}: cannot resolve !Ref {ref} locally")
            if isinstance(value, dict):
                raise TemplateError(f"{function}.{key}: cannot resolve {value} locally")
            env[key] = "" if value is None else str(value)
        return env


@functools.cache
def load_template(path: Path = TEMPLATE_PATH) -> Template:
    return Template(path)
