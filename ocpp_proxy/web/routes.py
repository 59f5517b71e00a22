"""Every route of the REST API, with what the OpenAPI document says of it.

One table serves both: :func:`ocpp_proxy.web.install_web` registers these routes, and
:mod:`ocpp_proxy.web.openapi` describes them, so the document lists every route there is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ocpp_proxy.config import WEBHOOK_EVENTS
from ocpp_proxy.homeowner.commands import COMMANDS
from ocpp_proxy.server.status import health, status
from ocpp_proxy.web import admin, api, control, token
from ocpp_proxy.web.events import events

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The prefix of the versioned API.
PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Param:
    """A query or path parameter."""

    name: str
    where: str  # query | path
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Route:
    """One API route: method, path, handler, and its documentation."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    errors: tuple[int, ...] = ()
    content: str = "application/json"
    changes: bool = False
    aliases: tuple[str, ...] = ()
    role: str = "read"  # the token role it needs: read, control or admin
    ingress_only: bool = False  # served through Home Assistant's ingress only (else 403)
    status: int = 200  # the status of success


_WEBHOOK = Param("webhook_id", "path", "the webhook's id")
_CHARGER = Param("charge_point_id", "path", "the charge point id")
_LIMIT = Param("limit", "query", "most rows returned", {"type": "integer", "minimum": 0})
_OFFSET = Param("offset", "query", "rows skipped first", {"type": "integer", "minimum": 0})
_FROM = Param("from", "query", "from this ISO date or date-time", {"type": "string"})
_TO = Param("to", "query", "up to this ISO date (inclusive) or date-time", {"type": "string"})
_FORMAT = Param("format", "query", "json or csv", {"type": "string", "enum": ["json", "csv"]})
_BOOL_BODY = {
    "type": "object",
    "required": ["enabled"],
    "properties": {"enabled": {"type": "boolean"}},
}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/status",
        status,
        "Chargers, connectors, backends, sessions, rules",
        "read",
        aliases=("/status",),
    ),
    Route("GET", "/health", health, "Liveness (no token needed)", "read", aliases=("/health",)),
    Route(
        "GET",
        "/token",
        token.get_token,
        "The API token, for the page opened through Home Assistant's ingress only",
        "control",
        errors=(403,),
        role="admin",
        ingress_only=True,
    ),
    Route(
        "POST",
        "/token",
        token.regenerate_token,
        "Replace the generated API token (ingress only; the old one stops working)",
        "control",
        errors=(403, 409),
        role="admin",
        ingress_only=True,
        changes=True,
    ),
    Route(
        "GET",
        "/metrics",
        api.metrics,
        "Prometheus metrics",
        "read",
        content="text/plain",
        aliases=("/metrics",),
    ),
    Route("GET", "/live", api.live, "Running sessions: power, energy, duration, owner", "read"),
    Route(
        "GET",
        "/events",
        events,
        "Server-sent events of what the page shows",
        "read",
        content="text/event-stream",
    ),
    Route("GET", "/chargers", api.chargers, "Chargers seen: first/last seen, online", "read"),
    Route(
        "GET",
        "/chargers/{charge_point_id}/messages",
        api.messages,
        "The OCPP message log of a charger, newest first",
        "read",
        params=(_CHARGER, _LIMIT),
        errors=(404,),
    ),
    Route(
        "POST",
        "/chargers/{charge_point_id}/commands/{command}",
        control.command,
        "Send a command to the charger as the homeowner",
        "control",
        params=(
            _CHARGER,
            Param("command", "path", "the command", {"type": "string", "enum": sorted(COMMANDS)}),
        ),
        body={
            "type": "object",
            "description": (
                "start {connector_id?, id_tag}; stop {transaction_id}; unlock {connector_id}; "
                "availability {connector_id?, operative}; reset {type: Soft|Hard}; "
                "get_configuration {keys?}; change_configuration {key, value}; "
                "trigger {message, connector_id?}; reserve {connector_id, id_tag, "
                "reservation_id, minutes?}; cancel_reservation {reservation_id}. In OCPP 2.x "
                "keys are Component.Variable and connector_id is the EVSE id."
            ),
        },
        errors=(400, 404, 409, 502, 504),
        changes=True,
        role="control",
    ),
    Route(
        "GET",
        "/sessions",
        api.sessions,
        "Sessions, filtered and paged; CSV or JSON export",
        "read",
        params=(
            Param("charger", "query", "charge point id"),
            Param("backend", "query", "a backend that took part"),
            Param("owner", "query", "the backend that owns it"),
            _FROM,
            _TO,
            _LIMIT,
            _OFFSET,
            _FORMAT,
        ),
        errors=(400,),
        aliases=("/sessions",),
    ),
    Route(
        "GET",
        "/sessions/{session_id}",
        api.session,
        "One session with its meter samples",
        "read",
        params=(Param("session_id", "path", "session id", {"type": "integer"}),),
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/insights/energy",
        api.energy,
        "Energy, revenue and home cost per day/week/month, charger and backend",
        "read",
        params=(
            Param(
                "period",
                "query",
                "day, week or month",
                {"type": "string", "enum": ["day", "week", "month"]},
            ),
            Param("charger", "query", "charge point id"),
            _FROM,
            _TO,
            _FORMAT,
        ),
        errors=(400,),
    ),
    Route(
        "GET",
        "/audit",
        api.audit,
        "The audit log, newest first",
        "read",
        params=(Param("charger", "query", "charge point id"), _LIMIT),
        errors=(400,),
    ),
    Route(
        "GET",
        "/override",
        control.get_override,
        "The homeowner's override",
        "control",
        aliases=("/override",),
    ),
    Route(
        "POST",
        "/override",
        control.post_override,
        "Turn the override on or off",
        "control",
        body=_BOOL_BODY,
        errors=(400,),
        changes=True,
        aliases=("/override",),
        role="control",
    ),
    Route(
        "GET",
        "/shared_charging",
        control.get_shared_charging,
        "Whether backends may control the charger",
        "control",
    ),
    Route(
        "POST",
        "/shared_charging",
        control.post_shared_charging,
        "Allow or stop backends' control (kept across restarts)",
        "control",
        body=_BOOL_BODY,
        errors=(400,),
        changes=True,
        role="control",
    ),
    Route(
        "GET",
        "/max_current",
        control.max_current,
        "The homeowner's current limit",
        "control",
        aliases=("/max_current",),
    ),
    Route(
        "POST",
        "/max_current",
        control.set_max_current,
        "Set or lift the current limit",
        "control",
        body={
            "type": "object",
            "required": ["max_current_a"],
            "properties": {"max_current_a": {"type": ["number", "null"], "minimum": 0}},
        },
        errors=(400,),
        changes=True,
        aliases=("/max_current",),
        role="control",
    ),
    Route(
        "GET", "/tokens", admin.list_tokens, "API tokens: name, role, source", "admin", role="admin"
    ),
    Route(
        "POST",
        "/tokens",
        admin.create_token,
        "Make a token (its secret is in this answer only)",
        "admin",
        body={
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "role": {"type": "string", "enum": ["read", "control", "admin"]},
            },
        },
        errors=(400, 409),
        changes=True,
        role="admin",
        status=201,
    ),
    Route(
        "DELETE",
        "/tokens/{name}",
        admin.revoke_token,
        "Revoke a token made through the API",
        "admin",
        params=(Param("name", "path", "the token's name"),),
        errors=(404, 409),
        changes=True,
        role="admin",
    ),
    Route(
        "GET",
        "/webhooks",
        admin.list_webhooks,
        "Webhooks with their queue, deliveries and drops",
        "admin",
        role="admin",
    ),
    Route(
        "POST",
        "/webhooks",
        admin.create_webhook,
        "Add a webhook (a generated secret is in this answer only)",
        "admin",
        body={
            "type": "object",
            "required": ["id", "url"],
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                "url": {"type": "string", "format": "uri"},
                "events": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
                },
                "secret": {"type": "string", "minLength": 16},
                "max_queue": {"type": "integer", "minimum": 1},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        errors=(400, 409),
        changes=True,
        role="admin",
        status=201,
    ),
    Route(
        "DELETE",
        "/webhooks/{webhook_id}",
        admin.delete_webhook,
        "Remove a webhook made through the API, with its queue",
        "admin",
        params=(_WEBHOOK,),
        errors=(404, 409),
        changes=True,
        role="admin",
    ),
    Route(
        "POST",
        "/webhooks/{webhook_id}/test",
        admin.test_webhook,
        "Queue a webhook.test event for one webhook",
        "admin",
        params=(_WEBHOOK,),
        errors=(404,),
        changes=True,
        role="admin",
        status=202,
    ),
)
