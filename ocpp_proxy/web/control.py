"""The homeowner's controls over REST: switches, the current limit, and charger commands.

Commands are built by :mod:`ocpp_proxy.homeowner.commands` and go through
``ChargerHub.homeowner_command``: the arbiter decides as for the homeowner (only safety rules
apply) and the audit log records them. Settings change through
:mod:`ocpp_proxy.homeowner.settings`, which audits them too (actor ``homeowner``). Each
request gets an answer, never a hang: the charger's reply (200, or 502 for a CALLERROR), or a
refusal: 400 invalid input, 404 unknown charger, 409 refused by a rule or charger offline, 504
charger timeout.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from ocpp_proxy.homeowner import settings
from ocpp_proxy.homeowner.commands import COMMANDS, CommandInputError, build
from ocpp_proxy.policy.decisions import HOMEOWNER
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.security.redaction import mask_config_secrets_in
from ocpp_proxy.server.keys import CONFIG, REGISTRY
from ocpp_proxy.web.errors import ApiError, bad_request

#: Seconds beyond ``response_timeout`` a command may take before the API gives up (504).
_GRACE_S = 5.0

#: How the command queue says that the charger did not answer in time.
_NO_ANSWER = "did not answer within"


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``)."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("body", "expected a JSON object")
    return body


def override_state(app: web.Application) -> dict[str, Any]:
    """The override as the arbiter reads it (see ``HomeState.override_state``)."""
    config = app[CONFIG]
    return app[REGISTRY].home.override_state(config.override_input_boolean, config.presence_sensor)


async def post_override(request: web.Request) -> web.Response:
    """``POST /api/v1/override {"enabled": bool}``: backends may only read while on."""
    enabled = (await json_body(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("enabled", "expected true or false")
    await settings.set_override(request.app[REGISTRY], enabled, actor=HOMEOWNER)
    return web.json_response(override_state(request.app))


async def get_override(request: web.Request) -> web.Response:
    """``GET /api/v1/override``: whether backends are held to read-only, and why."""
    return web.json_response(override_state(request.app))


def _shared_state(request: web.Request) -> dict[str, Any]:
    config, home = request.app[CONFIG], request.app[REGISTRY].home
    return {
        "enabled": home.shared_charging_allowed(config.allow_shared_charging),
        "config_default": config.allow_shared_charging,
        "set_at_run_time": home.shared_charging is not None,
    }


async def get_shared_charging(request: web.Request) -> web.Response:
    """``GET /api/v1/shared_charging``: whether backends may control the charger."""
    return web.json_response(_shared_state(request))


async def post_shared_charging(request: web.Request) -> web.Response:
    """``POST /api/v1/shared_charging {"enabled": bool}``: allow or stop backends' control."""
    enabled = (await json_body(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("enabled", "expected true or false")
    await settings.set_shared_charging(request.app[REGISTRY], enabled, actor=HOMEOWNER)
    return web.json_response(_shared_state(request))


async def max_current(request: web.Request) -> web.Response:
    """``GET /api/v1/max_current``: the homeowner's limit (A) and each charger's state of it."""
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "max_current_a": registry.home.max_current_a,
            "chargers": {hub.id: hub.limits.state for hub in registry},
        }
    )


async def set_max_current(request: web.Request) -> web.Response:
    """``POST /api/v1/max_current {"max_current_a": number >= 0 | null}``: set or lift it."""
    value = (await json_body(request)).get("max_current_a", ...)
    limit = _amperes(value)
    if value is not None and limit is None:
        raise bad_request("max_current_a", "expected a number of amperes >= 0, or null")
    await settings.set_max_current(request.app[REGISTRY], limit, actor=HOMEOWNER)
    return await max_current(request)


def _amperes(value: Any) -> float | None:
    """A finite number >= 0 as float, else None (JSON's Infinity and NaN included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        amperes = float(value)
    except OverflowError:  # an integer past float's range
        return None
    return amperes if math.isfinite(amperes) and amperes >= 0 else None


async def _hub(request: web.Request) -> ChargerHub:
    charge_point_id = request.match_info["charge_point_id"]
    registry = request.app[REGISTRY]
    hub = registry.get(charge_point_id)
    if hub is None:
        if await registry.exists(charge_point_id):  # seen, but idle long enough to be let go
            raise ApiError(409, f"charger {charge_point_id} is offline", reason="charger_offline")
        raise ApiError(404, f"no charger {charge_point_id}", field="charge_point_id")
    return hub


async def command(request: web.Request) -> web.Response:
    """``POST /api/v1/chargers/{charge_point_id}/commands/{command}``: as the homeowner."""
    name = request.match_info["command"]
    if name not in COMMANDS:
        raise ApiError(404, f"no command {name}", field="command", commands=sorted(COMMANDS))
    hub = await _hub(request)
    try:
        action, payload = build(name, hub.version, await json_body(request))
    except CommandInputError as error:
        raise bad_request(error.field, error.message) from None
    if hub.charger is None:
        raise ApiError(409, f"charger {hub.id} is offline", reason="charger_offline")
    wait_s = request.app[CONFIG].response_timeout + _GRACE_S
    try:
        async with asyncio.timeout(wait_s):
            result = await hub.homeowner_command(action, payload)
    except TimeoutError:
        raise ApiError(504, f"charger {hub.id} did not answer {action}", action=action) from None
    decision, answer = result.decision, result.answer
    if answer is None:
        if decision.rule == "charger_offline":
            raise ApiError(409, decision.reason, reason="charger_offline", action=action)
        raise ApiError(409, decision.reason, rule=decision.rule, action=action)
    if answer.error is not None:
        code, description = answer.error[0], answer.error[1]
        if _NO_ANSWER in description:
            raise ApiError(504, description, action=action)
        if "not connected" in description:
            raise ApiError(409, description, reason="charger_offline", action=action)
        raise ApiError(502, f"the charger answered {code}: {description}", action=action)
    # A charger password (GetConfiguration's answer, the request that set it) is never served.
    reply = mask_config_secrets_in(answer.payload or {})
    return web.json_response(
        {
            "action": action,
            "request": mask_config_secrets_in(payload),
            "accepted": result.accepted,
            "status": reply.get("status"),
            "answer": reply,
        }
    )
