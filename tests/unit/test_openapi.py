"""docs/openapi.json: generated from the code, current, complete, and free for the functions."""

from __future__ import annotations

import json
import subprocess
import sys

from local.template import load_template
from tests import ROOT
from tests.support import HANDLER_MODULES
from tools import openapi

DOCUMENT = ROOT / "docs" / "openapi.json"


def test_committed_document_is_current() -> None:
    assert DOCUMENT.read_text() == openapi.render(), "docs/openapi.json is stale: run `make openapi`"


def test_every_template_route_is_described_with_its_parameters_and_errors() -> None:
    document = json.loads(DOCUMENT.read_text())
    routes = load_template().routes()
    described = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert described == {(route.method, route.path) for route in routes}
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        path_names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert path_names == set(route.path.replace("}", "{").split("{")[1::2]), route
        statuses = set(operation["responses"])
        assert statuses & {"200", "201", "204"} and "401" in statuses | {"401"}
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema["allOf"][0] == {"$ref": "#/components/schemas/Error"}
                assert schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["usageApiKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["bearerAuth"]["scheme"] == "bearer"


def test_generating_costs_the_functions_cold_start_nothing() -> None:
    """No handler imports the generator or the usage-count description."""
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in HANDLER_MODULES)
        + "print(sorted(m for m in sys.modules if 'openapi' in m and 'powertools' not in m))"
    )
    paths = [str(spec.code_uri) for spec in load_template().functions().values()]
    env_path = ":".join([str(ROOT / "layers" / "common"), *paths])
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]"
