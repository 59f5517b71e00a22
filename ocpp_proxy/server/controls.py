"""The homeowner's controls over REST: the override and the current limit.

``GET /override`` and ``POST /override {"enabled": true|false}``; ``GET /max_current`` and
``POST /max_current {"max_current_a": 16 | null}``. Both settings are kept across restarts.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ocpp_proxy.server.keys import CONFIG, REGISTRY


def override_state(app: web.Application) -> dict[str, Any]:
    """The override as the arbiter reads it, with where each part comes from."""
    config, home = app[CONFIG], app[REGISTRY].home
    unreadable = home.unreadable(config.override_input_boolean, config.presence_sensor)
    fail_closed = bool(unreadable)
    return {
        "enabled": home.override_api or bool(home.override_ha) or fail_closed,
        "api": home.override_api,
        "home_assistant": home.override_ha,
        "fail_closed": fail_closed,
        "unreadable": unreadable,
    }


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise _bad_request("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise _bad_request("body", "expected a JSON object")
    return body


def _bad_request(field: str, reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=json.dumps({"error": reason, "field": field}), content_type="application/json"
    )


async def get_override(request: web.Request) -> web.Response:
    """``GET /override``: whether backends are held to read-only, and why."""
    return web.json_response(override_state(request.app))


async def post_override(request: web.Request) -> web.Response:
    """``POST /override {"enabled": bool}``: turn the homeowner's override on or off."""
    enabled = (await _json_body(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise _bad_request("enabled", "expected true or false")
    await request.app[REGISTRY].set_override(enabled)
    return web.json_response(override_state(request.app))


async def get_max_current(request: web.Request) -> web.Response:
    """``GET /max_current``: the homeowner's current limit (A) and each charger's state of it."""
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "max_current_a": registry.home.max_current_a,
            "chargers": {hub.id: hub.limits.state for hub in registry},
        }
    )


async def post_max_current(request: web.Request) -> web.Response:
    """``POST /max_current {"max_current_a": number >= 0 | null}``: set or lift the limit."""
    value = (await _json_body(request)).get("max_current_a", ...)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or value < 0
    ):
        raise _bad_request("max_current_a", "expected a number of amperes >= 0, or null")
    await request.app[REGISTRY].set_max_current(None if value is None else float(value))
    return await get_max_current(request)
