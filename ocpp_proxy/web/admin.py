"""The admin's part of the REST API: API tokens and webhooks.

A new token's secret, and a webhook's generated secret, are in the answer to the request
that made them, and nowhere else afterwards (tokens are kept as SHA-256 only). Tokens and
webhooks of the config are listed but cannot be removed here (409): change the config.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from ocpp_proxy.config import API_ROLES, MIN_SECRET, WEBHOOK_EVENTS
from ocpp_proxy.event_bus import EventBus
from ocpp_proxy.notify.webhooks import new_secret, public
from ocpp_proxy.server.keys import EVENT_BUS, REGISTRY, WEBHOOKS
from ocpp_proxy.store.notify import TokenRow, WebhookRow
from ocpp_proxy.web.control import json_body
from ocpp_proxy.web.errors import ApiError, bad_request
from ocpp_proxy.web.keys import TOKENS
from ocpp_proxy.web.tokens import RESERVED, new_token, token_hash

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _name(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise bad_request(key, "expected 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


# -- tokens ------------------------------------------------------------------------------------


async def list_tokens(request: web.Request) -> web.Response:
    """``GET /api/v1/tokens``: every token's name, role and source (never a secret)."""
    return web.json_response({"tokens": request.app[TOKENS].listing()})


async def create_token(request: web.Request) -> web.Response:
    """``POST /api/v1/tokens {"name", "role"}``: a new token; its secret is shown only now."""
    body = await json_body(request)
    name = _name(body, "name")
    role = body.get("role", "read")
    if role not in API_ROLES:
        raise bad_request("role", f"expected one of {', '.join(API_ROLES)}")
    book = request.app[TOKENS]
    if name in RESERVED or book.source(name) is not None:
        raise ApiError(409, f"a token named {name} exists already", field="name")
    token = new_token()
    row = TokenRow(name, token_hash(token), role, time.time())
    await request.app[REGISTRY].store.tokens.add(row)
    book.add(row)
    return web.json_response({"name": name, "role": role, "token": token}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    """``DELETE /api/v1/tokens/{name}``: the token stops working at once."""
    name = request.match_info["name"]
    book = request.app[TOKENS]
    source = book.source(name)
    if source is None:
        raise ApiError(404, f"no token {name}", field="name")
    if source != "api":
        raise ApiError(409, f"token {name} comes from the config; remove it there", field="name")
    await request.app[REGISTRY].store.tokens.delete(name)
    book.remove(name)
    return web.json_response({"name": name, "revoked": True})


# -- webhooks ----------------------------------------------------------------------------------


async def list_webhooks(request: web.Request) -> web.Response:
    """``GET /api/v1/webhooks``: each webhook with its queue, deliveries and drops."""
    bus: EventBus = request.app[EVENT_BUS]
    hooks = await request.app[WEBHOOKS].webhooks()
    return web.json_response(
        {
            "webhooks": [public(row) for row in hooks],
            "events": list(WEBHOOK_EVENTS),
            "events_published": bus.published,
            "events_dropped": bus.dropped,
        }
    )


def _webhook(body: dict[str, Any]) -> tuple[WebhookRow, bool]:
    """The webhook the body describes, and whether its secret was generated."""
    hook_id = _name(body, "id")
    url = body.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
        raise bad_request("url", "expected an http:// or https:// URL")
    events = body.get("events", [])
    if not isinstance(events, list) or any(e not in WEBHOOK_EVENTS for e in events):
        raise bad_request("events", f"expected a list of: {', '.join(WEBHOOK_EVENTS)}")
    secret = body.get("secret")
    generated = secret is None
    if generated:
        secret = new_secret()
    elif not isinstance(secret, str) or len(secret) < MIN_SECRET:
        raise bad_request("secret", f"expected at least {MIN_SECRET} characters")
    max_queue = body.get("max_queue", 10000)
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise bad_request("max_queue", "expected an integer >= 1")
    timeout = body.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise bad_request("timeout", "expected a number of seconds > 0")
    row = WebhookRow(
        hook_id, url, tuple(events), secret, "api", max_queue, float(timeout), time.time()
    )
    return row, generated


async def create_webhook(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks {"id", "url", "events"?, "secret"?, "max_queue"?, "timeout"?}``.

    Without ``secret`` one is generated; either way it is in this answer and never again.
    """
    row, _generated = _webhook(await json_body(request))
    webhooks = request.app[WEBHOOKS]
    if webhooks.get(row.id) is not None:
        raise ApiError(409, f"a webhook {row.id} exists already", field="id")
    await webhooks.add(row)
    return web.json_response({**public(row), "secret": row.secret}, status=201)


def _existing(request: web.Request) -> WebhookRow:
    webhook_id = request.match_info["webhook_id"]
    row = request.app[WEBHOOKS].get(webhook_id)
    if row is None:
        raise ApiError(404, f"no webhook {webhook_id}", field="webhook_id")
    return row


async def delete_webhook(request: web.Request) -> web.Response:
    """``DELETE /api/v1/webhooks/{webhook_id}``: remove it and what is queued for it."""
    row = _existing(request)
    if row.source == "config":
        raise ApiError(409, f"webhook {row.id} comes from the config; remove it there", field="id")
    await request.app[WEBHOOKS].remove(row.id)
    return web.json_response({"id": row.id, "deleted": True})


async def test_webhook(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks/{webhook_id}/test``: queue a ``webhook.test`` event for it."""
    row = _existing(request)
    event = await request.app[WEBHOOKS].test(row.id)
    return web.json_response({"id": row.id, "event_id": event.id}, status=202)
