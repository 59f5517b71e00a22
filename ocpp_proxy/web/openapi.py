"""The OpenAPI 3.1 document of the REST API, built from :data:`ocpp_proxy.web.routes.ROUTES`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ocpp_proxy import __version__
from ocpp_proxy.web.routes import PREFIX, ROUTES, Route

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
}

_ERROR_TEXT = {
    400: "invalid input (the field at fault in `field`)",
    401: "missing or wrong API token",
    403: "only through Home Assistant's ingress, or the token's role is too low for this "
    "operation (`role`: the role it needs)",
    404: "no such charger, session, command, token or webhook",
    409: "refused by the arbiter (`rule`), the charger is offline (`reason`), the name is "
    "taken / comes from the config, or the token is the api_token option",
    429: "too many failed token attempts from this address: retry after `Retry-After` s",
    502: "the charger answered with a CALLERROR",
    504: "the charger did not answer in time",
}


def _operation(route: Route, alias_of: str | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": (f"{alias_of}_" if alias_of else "")
        + route.method.lower()
        + route.path.replace("/", "_").replace("{", "").replace("}", ""),
        "summary": route.summary + (f" (alias of {PREFIX}{route.path})" if alias_of else ""),
        "description": f"Needs the `{route.role}` role.",
        "tags": [route.tag],
        "x-required-role": route.role,
        "responses": {str(route.status): {"description": "OK", "content": {route.content: {}}}},
    }
    if route.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in route.params
        ]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    codes = set(route.errors)
    if route.path != "/health":
        codes.update((401, 403, 429))
    for code in sorted(codes):
        operation["responses"][str(code)] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if route.path == "/health":
        operation["security"] = []
    return operation


def document() -> dict[str, Any]:
    """The OpenAPI document: every route under ``/api/v1`` and its short aliases."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
        for alias in route.aliases:
            paths.setdefault(alias, {})[route.method.lower()] = _operation(route, "alias")
    paths[f"{PREFIX}/openapi.json"] = {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document",
            "description": "Needs the `read` role.",
            "tags": ["read"],
            "x-required-role": "read",
            "responses": {"200": {"description": "OK", "content": {"application/json": {}}}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ocpp-proxy",
            "version": __version__,
            "description": (
                "The homeowner's REST API. Through Home Assistant ingress no token is needed "
                "(admin); on the direct port send `Authorization: Bearer <token>` (read-only "
                "requests without it when `api_public_read` is on; GET also takes ?token=). "
                "Each operation needs a role (`x-required-role`): read < control < admin; "
                "`api_token` is admin, `api_tokens` and tokens made at /api/v1/tokens have "
                "theirs. A valid token without the role gets 403."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR},
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: the OpenAPI document."""
    return web.json_response(document())
