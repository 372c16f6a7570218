"""The OpenAPI 3 document of ``/api/v1``, built from dicts each route module adds to.

A module that adds routes to ``server.api.bp`` describes them with ``add_path`` and
``add_schema`` at import time; ``document()`` assembles the whole and is served at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

import copy
from typing import Any

INFO = {
    "title": "Taktline API",
    "version": "1.0.0",
    "description": "Orders, release, stations and their queues, units. Authenticate "
    "with a Bearer API token (or a signed-in browser session).",
}
PATHS: dict[str, dict[str, Any]] = {}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def add_path(path: str, operations: dict[str, Any]) -> None:
    """Describe ``path`` (relative to /api/v1, e.g. ``/orders/{number}``): a mapping of
    HTTP method to OpenAPI operation object. Methods merge with earlier ones."""
    PATHS.setdefault(path, {}).update(operations)


def add_schema(name: str, schema: dict[str, Any]) -> None:
    SCHEMAS[name] = schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def document() -> dict[str, Any]:
    paths = copy.deepcopy(PATHS)
    for operations in paths.values():
        for operation in operations.values():
            # Every request: a NUL character anywhere is refused before the route
            # (server.security.headers).
            operation.setdefault("responses", {}).setdefault(
                "400", error("The request holds a NUL character (or another bad input)")
            )
    return {
        "openapi": "3.0.3",
        "info": INFO,
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
