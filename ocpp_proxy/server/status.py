"""``/status``, ``/health`` and the placeholder page at ``/``."""

from __future__ import annotations

import time

from aiohttp import web

from ocpp_proxy import __version__
from ocpp_proxy.clock import iso_utc
from ocpp_proxy.server.keys import CONFIG, REGISTRY, STARTED_AT


async def status(request: web.Request) -> web.Response:
    """``GET /status``: chargers, their connectors and backends, and which backend is primary."""
    config = request.app[CONFIG]
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "version": __version__,
            "started_at": iso_utc(request.app[STARTED_AT]),
            "mode": "relay" if config.backend_ids else "local",
            "preferred_provider": config.preferred_provider or None,
            "chargers": [hub.snapshot() for hub in registry],
        }
    )


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness, for watchdogs."""
    return web.json_response(
        {"status": "ok", "uptime_s": round(time.time() - request.app[STARTED_AT], 1)}
    )


async def index(request: web.Request) -> web.Response:
    """``GET /``: what this server is and where to look."""
    return web.Response(
        text=(
            f"ocpp-proxy {__version__}\n"
            "Chargers connect to ws://<host>:<port>/charger/<charge point id>.\n"
            "Status: /status  Health: /health\n"
        ),
        content_type="text/plain",
    )
