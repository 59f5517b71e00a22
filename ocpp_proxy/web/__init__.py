"""The homeowner's web page and REST API (``/`` and ``/api/v1/...``).

:func:`install_web` adds the routes of :mod:`ocpp_proxy.web.routes`, their short aliases,
the page and its static files, the API token check and request metrics to the application.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ocpp_proxy.server.keys import METRICS
from ocpp_proxy.web.auth import auth_middleware, token_context
from ocpp_proxy.web.errors import api_middleware
from ocpp_proxy.web.events import events_context, stop_streams
from ocpp_proxy.web.keys import ROUTE_ROLES
from ocpp_proxy.web.openapi import openapi_json
from ocpp_proxy.web.routes import PREFIX, ROUTES

#: The page's files, served at ``/static/``.
STATIC_DIR = Path(__file__).parent / "static"


async def index(request: web.Request) -> web.FileResponse:
    """``GET /``: the homeowner's page."""
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def install_web(app: web.Application) -> None:
    """Add the page and the REST API to ``app`` (call after the other routes are added)."""
    app.middlewares.append(api_middleware)
    app.middlewares.append(auth_middleware)
    app.cleanup_ctx.append(token_context)
    app.cleanup_ctx.append(events_context)
    app.on_shutdown.append(stop_streams)
    app[METRICS].describe(
        "ocpp_proxy_http_requests_total", "counter", "HTTP requests, by method, route and status"
    )
    taken = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    app[ROUTE_ROLES] = {
        (route.method, path): route.role
        for route in ROUTES
        for path in (PREFIX + route.path, *route.aliases)
    }
    for route in ROUTES:
        for path in (PREFIX + route.path, *route.aliases):
            if (route.method, path) not in taken:
                app.router.add_route(route.method, path, route.handler)
                taken.add((route.method, path))
    app.router.add_get(f"{PREFIX}/openapi.json", openapi_json)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
