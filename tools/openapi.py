"""Write ``docs/openapi.json``: every HTTP route of ``template.yaml``, generated from the code.

    python -m tools.openapi          # write docs/openapi.json (make openapi)
    python -m tools.openapi --check  # exit 1 when the committed file is stale

Offline only: the functions never import this module, so the document costs no cold start.
Sources, in order: each Powertools resolver's ``get_openapi_schema()`` (operations, operation ids,
path parameters, named as in the template), the request models' JSON schemas (pydantic), the error
codes of ``planguard.errors`` per status, and for the resolver-less usage-count routes the small
description next to that function (``usage_count_api/openapi_spec.py``). What the resolvers cannot
know (success bodies, query parameters, which statuses a route answers) is the table below.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import tomllib
from typing import Any

from local import ROOT

OUTPUT = ROOT / "docs" / "openapi.json"

# The resolver functions' operations: what Powertools cannot see in the handlers' signatures.
RESOLVER_OPERATIONS: dict[str, dict[str, Any]] = {
    "GET /accounts": {
        "summary": "List the caller's tracked accounts, oldest first, with their usage",
        "parameters": [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
            {
                "name": "cursor",
                "in": "query",
                "description": "Opaque; the nextCursor of the previous page (bound to its user).",
                "schema": {"type": "string", "minLength": 1},
            },
        ],
        "x-success": {"200": "AccountList"},
        "x-errors": [400, 401, 403, 503],
    },
    "POST /accounts": {
        "summary": "Track an account, within the plan's limit",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "description": (
                    "A retry with the same key and body within 24 h answers the first answer, even if"
                    " the account was deleted since (as Stripe does: nothing is created again). The"
                    " same key with another body is 422 IDEMPOTENCY_KEY_REUSED; while the first"
                    " request still runs, 409 IDEMPOTENCY_IN_PROGRESS."
                ),
                "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            }
        ],
        "x-body": "CreateAccountRequest",
        "x-success": {"201": "Account"},
        "x-errors": [400, 401, 403, 409, 413, 422, 503],
    },
    "GET /accounts/{id}": {
        "summary": "One of the caller's accounts (another user's is 404)",
        "x-success": {"200": "Account"},
        "x-errors": [401, 403, 404, 503],
    },
    "PATCH /accounts/{id}": {
        "summary": "Rename or renumber one of the caller's accounts",
        "x-body": "UpdateAccountRequest",
        "x-success": {"200": "Account"},
        "x-errors": [400, 401, 403, 404, 409, 413, 422, 503],
    },
    "DELETE /accounts/{id}": {
        "summary": "Stop tracking one of the caller's accounts",
        "x-success": {"204": None},
        "x-errors": [401, 403, 404, 503],
    },
    "GET /usage": {
        "summary": "The caller's own usage (organization mode: the organization's, its plan, canWrite)",
        "x-success": {"200": "UsageResponse"},
        "x-errors": [401, 403, 503],
    },
    "GET /plan-check": {
        "summary": "Could the caller move to this plan now? (read only)",
        "parameters": [
            {
                "name": "plan",
                "in": "query",
                "required": True,
                "description": "A plan code of PLAN_LIMITS; missing is 400, unknown 422.",
                "schema": {"type": "string", "minLength": 1},
            }
        ],
        "x-success": {"200": "PlanCheckResult"},
        "x-errors": [400, 401, 403, 422, 503],
    },
    "POST /webhooks/kinde": {
        "summary": "Kinde webhooks: a JWT body signed by the Kinde environment's keys",
        "security": [],
        "x-jwt-body": True,
        "x-success": {"200": "WebhookReceived"},
        "x-errors": [400, 401, 413, 503],
    },
}

ERROR_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing, invalid or expired credentials",
    403: "Refused by the plan, a user deleted in Kinde, or (organization mode) no organization or right",
    404: "Not found (or not the caller's)",
    409: "Conflict",
    413: "Body over 16 KiB",
    422: "Invalid field values",
    503: "Kinde or storage unavailable; retry after Retry-After seconds",
}

_STRING = {"type": "string"}
_INT = {"type": "integer"}
_ISO = {"type": "string", "format": "date-time"}
_NULLABLE_INT = {"type": ["integer", "null"]}


def _object(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def response_schemas() -> dict[str, Any]:
    """The success bodies of every route: the accounts API, the usage count, the plan check and the hold."""
    usage = _object(
        {
            "used": _INT,
            "limit": _NULLABLE_INT,
            "limitSource": {"type": "string", "enum": ["kinde", "cache", "hold", "unavailable"]},
            "excess": {
                "type": "integer",
                "minimum": 1,
                "description": "Only when used is above limit (a plan applied after the user added"
                " more): how many accounts to remove to be within it. Adds are refused until then.",
            },
        },
        required=["used", "limit", "limitSource"],
    )
    return {
        "Account": _object(
            {
                "id": _STRING,
                "name": _STRING,
                "accountNumber": _STRING,
                "createdAt": _ISO,
                "updatedAt": _ISO,
                # organization mode: the members (Kinde user ids) who created it and changed it last
                "createdBy": _STRING,
                "updatedBy": _STRING,
            },
            required=["id", "name", "accountNumber", "createdAt", "updatedAt"],
        ),
        "Usage": usage,
        "AccountList": _object(
            {
                "items": {"type": "array", "items": _ref("Account")},
                "usage": _ref("Usage"),
                "nextCursor": {"type": ["string", "null"]},
            }
        ),
        "UsageResponse": _object(
            {
                "tracked_accounts": _ref("Usage"),
                # organization mode only: whose usage, its plan (null when unknown), may the caller write
                "organization": _object({"code": _STRING}),
                "plan": {"type": ["string", "null"]},
                "canWrite": {"type": "boolean"},
            },
            required=["tracked_accounts"],
        ),
        "PlanCheckResult": _object(
            {
                "allowed": {"type": "boolean"},
                "message": {"type": ["string", "null"]},
                "reasons": {"type": "array", "items": _STRING},
                "usage": {
                    "anyOf": [
                        _object(
                            {
                                "tracked_accounts": _object(
                                    {"used": _INT, "limit": _NULLABLE_INT, "excess": _NULLABLE_INT}
                                )
                            }
                        ),
                        {"type": "null"},
                    ]
                },
                "hint": {"type": ["string", "null"]},
            },
            required=["allowed", "message", "reasons", "usage"],
        ),
        "UsageCount": _object({"kindeId": _STRING, "count": _INT}),
        "OrganizationUsageCount": _object({"orgCode": _STRING, "count": _INT}),
        "OrganizationHoldResult": _object(
            {
                "orgCode": _STRING,
                "count": _INT,
                "held": {"type": "boolean"},
                "limit": _NULLABLE_INT,
                "holdUntil": {"type": ["string", "null"]},
            }
        ),
        "HoldResult": _object(
            {
                "kindeId": _STRING,
                "count": _INT,
                "held": {"type": "boolean"},
                "limit": _NULLABLE_INT,
                "holdUntil": {"type": ["string", "null"]},
            }
        ),
        "WebhookReceived": _object({"received": {"type": "boolean", "const": True}}),
    }


def error_schemas() -> tuple[dict[str, Any], dict[int, list[str]]]:
    """The error body, and the codes ``planguard.errors`` defines per status."""
    from planguard import errors  # noqa: PLC0415 - after _code_paths() put the layer on sys.path

    codes: dict[int, list[str]] = {}
    pending: list[type[errors.ApiError]] = [errors.ApiError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.code not in codes.setdefault(cls.status, []):
            codes[cls.status].append(cls.code)
    codes.setdefault(503, [])
    body = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": _STRING,
                    "message": _STRING,
                    "fields": {
                        "type": "array",
                        "items": _object({"field": _STRING, "message": _STRING}),
                    },
                    "usage": _object({"used": _INT, "limit": _INT}),
                },
            }
        },
    }
    return {"Error": body}, {status: sorted(found) for status, found in codes.items()}


def described_error_response(status: int, codes: list[str]) -> dict[str, Any]:
    """The OpenAPI response object of one error status: the error body limited to its codes."""
    schema: dict[str, Any] = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"type": "string", "enum": codes}}}}},
        ]
    }
    response: dict[str, Any] = {
        "description": f"{ERROR_DESCRIPTIONS[status]}: {', '.join(codes)}",
        "content": {"application/json": {"schema": schema}},
    }
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": _STRING}}
    if status == 503 or (status == 409 and "IDEMPOTENCY_IN_PROGRESS" in codes):
        response["headers"] = {"Retry-After": {"schema": _STRING}}
    return response


def _resolver_paths(handler_modules: list[str]) -> dict[str, Any]:
    """The resolvers' own operations, merged. Each resolver function has one ``app``: in its handler
    module, or in its package's ``http`` module when the handler keeps the HTTP stack off another
    path (PlanCheckFunction's direct invoke)."""
    paths: dict[str, Any] = {}
    for module_name in handler_modules:
        app = getattr(importlib.import_module(module_name), "app", None)
        http_module = f"{module_name.rpartition('.')[0]}.http"
        if app is None and importlib.util.find_spec(http_module) is not None:
            app = getattr(importlib.import_module(http_module), "app", None)
        if app is None:
            continue
        schema = app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                operation.pop("responses", None)
                paths.setdefault(path, {})[method] = operation
    return paths


def _code_paths() -> tuple[list[str], dict[str, str]]:
    """Put the layer and every function's code on sys.path; {function: handler module}."""
    from local.template import load_template  # noqa: PLC0415 - the template's reader, for this tool only

    template = load_template()
    modules: dict[str, str] = {}
    for name, spec in template.functions().items():
        for folder in (*spec.layers, spec.code_uri):
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        modules[name] = spec.handler.rpartition(".")[0]
    return [f"{route.method} {route.path}" for route in template.routes()], modules


def build() -> dict[str, Any]:
    route_keys, modules = _code_paths()
    from accounts_api.models import CreateAccountRequest, UpdateAccountRequest  # noqa: PLC0415
    from usage_count_api.openapi_spec import OPERATIONS as USAGE_OPERATIONS  # noqa: PLC0415

    generated = _resolver_paths(sorted(set(modules.values())))
    described = {**RESOLVER_OPERATIONS, **USAGE_OPERATIONS}
    errors, codes = error_schemas()
    schemas: dict[str, Any] = {**errors, **response_schemas()}
    for model in (CreateAccountRequest, UpdateAccountRequest):
        schemas[model.__name__] = model.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )

    paths: dict[str, Any] = {}
    for route_key in route_keys:
        method, path = route_key.split(" ", 1)
        if route_key not in described:
            raise SystemExit(f"{route_key} (template.yaml) has no OpenAPI description")
        spec = dict(described[route_key])
        operation: dict[str, Any] = generated.get(path, {}).get(method.lower(), {})
        if not operation and route_key in RESOLVER_OPERATIONS:
            raise SystemExit(f"{route_key} is in template.yaml but no resolver serves it")
        operation = {**operation, "operationId": spec.pop("operationId", operation.get("operationId"))}
        operation["parameters"] = [*operation.get("parameters", []), *spec.pop("parameters", [])]
        for parameter in operation["parameters"]:
            parameter.get("schema", {}).pop("title", None)
        if not operation["parameters"]:
            del operation["parameters"]
        body, jwt_body = spec.pop("x-body", None), spec.pop("x-jwt-body", False)
        if body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            }
        if jwt_body:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/jwt": {"schema": {"type": "string", "minLength": 1}}},
            }
        responses: dict[str, Any] = {}
        for status, schema_name in spec.pop("x-success").items():
            responses[status] = {"description": "Success"}
            if schema_name:
                responses[status]["content"] = {"application/json": {"schema": _ref(schema_name)}}
        for status in spec.pop("x-errors"):
            responses[str(status)] = described_error_response(status, codes[status])
        operation.update(spec)
        operation["responses"] = responses
        paths.setdefault(path, {})[method.lower()] = operation

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Plan Guard",
            "version": version,
            "description": "Tracked accounts with Kinde plan limits. Generated by `make openapi` "
            'from the code (tools/openapi.py); every error is {"error":{"code","message",...}}.',
        },
        "paths": {path: paths[path] for path in sorted(paths)},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "usageApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "usageBearer": {"type": "http", "scheme": "bearer", "description": "The usage API key"},
            },
        },
        "security": [{"bearerAuth": []}],
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when docs/openapi.json is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(json.loads(text)['paths'])} paths)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
