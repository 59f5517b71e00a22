"""Live updates for the page: server-sent events at ``/api/v1/events``.

Each event ``update`` carries the state the page shows (chargers, rules, running sessions
with power and energy), sent at once, then after every change the relay reports and at least
every :data:`TICK_S` seconds (meter values arrive without a change notice).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ocpp_proxy import __version__
from ocpp_proxy.clock import iso_utc
from ocpp_proxy.server.keys import CONFIG, REGISTRY
from ocpp_proxy.server.status import rules_in_force
from ocpp_proxy.web.live import live_sessions

#: Seconds between updates when nothing reports a change.
TICK_S = 2.0

#: Set at shutdown: every open stream ends.
STOPPING = web.AppKey("events_stopping", asyncio.Event)


async def snapshot(app: web.Application) -> dict[str, Any]:
    """What the page shows: chargers, rules in force, running sessions, home tariff."""
    config, registry = app[CONFIG], app[REGISTRY]
    return {
        "version": __version__,
        "at": iso_utc(time.time()),
        "mode": "relay" if config.backend_ids else "local",
        "rules": rules_in_force(app),
        "chargers": [hub.snapshot() for hub in registry],
        "live": await live_sessions(registry),
        "home_currency": config.home_currency,
        "home_rate_per_kwh": config.home_rate_per_kwh,
    }


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/events``: a ``text/event-stream`` of ``update`` events."""
    app = request.app
    stopping = app[STOPPING]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    feed = app[REGISTRY].changes
    try:
        while not stopping.is_set():
            seen = feed.version
            data = json.dumps(await snapshot(app), separators=(",", ":"))
            await response.write(f"event: update\ndata: {data}\n\n".encode())
            with contextlib.suppress(TimeoutError):
                await feed.wait_for(lambda s=seen: feed.version != s or stopping.is_set(), TICK_S)
    except ConnectionResetError:
        pass  # the page went away
    return response


async def events_context(app: web.Application) -> AsyncIterator[None]:
    """Give streams their stop signal."""
    app[STOPPING] = asyncio.Event()
    yield


async def stop_streams(app: web.Application) -> None:
    """At shutdown: end every stream at its next wake-up, and wake them now."""
    if STOPPING in app:
        app[STOPPING].set()
        if REGISTRY in app:
            app[REGISTRY].changes.notify()
