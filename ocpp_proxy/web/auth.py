"""Who may use the REST API: Home Assistant ingress, or a bearer token on the direct port.

Requests through Home Assistant's ingress come from the Supervisor's ingress proxy
(:data:`INGRESS_ADDRESS`) to the ingress listener (``ingress_port``, see
:mod:`ocpp_proxy.server.listeners`); Home Assistant has already authenticated the user, so they
are trusted. On the direct port every request that changes
something needs ``Authorization: Bearer <api_token>``; read-only requests need it too unless
``api_public_read`` is on. ``GET`` requests may pass the token as ``?token=`` instead (for
server-sent events and download links, which cannot set headers).

The OCPP WebSocket endpoints, ``/health``, the page and its static files are not behind the
token: only the paths of :func:`is_protected` are.

Failed attempts are throttled per address like charger logins
(:mod:`ocpp_proxy.security.throttle`): past 5 failures within 60 s the address gets HTTP 429
with ``Retry-After`` at once, its token unchecked, for 1 s doubling up to 30 s.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ocpp_proxy.server.keys import CONFIG, METRICS, THROTTLE
from ocpp_proxy.server.listeners import INGRESS_ADDRESS, LISTENERS
from ocpp_proxy.web.keys import API_TOKEN, ApiToken

__all__ = ["INGRESS_ADDRESS", "TOKEN_FILE", "authorized", "is_ingress", "load_or_create_token"]

_LOGGER = logging.getLogger(__name__)

#: Where a generated token is kept, inside the data dir (mode 0o600).
TOKEN_FILE = "api_token"

#: Paths outside ``/api/`` that are API aliases, and so behind the token.
_ALIASES = frozenset({"/status", "/sessions", "/override", "/max_current", "/metrics"})

#: Paths that never need the token.
_OPEN = frozenset({"/api/v1/health"})

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_ingress(request: web.Request) -> bool:
    """Whether the request came through Home Assistant's ingress proxy to the ingress port."""
    listeners = request.app.get(LISTENERS)
    return listeners is not None and listeners.through_ingress(request)


def is_protected(path: str) -> bool:
    """Whether ``path`` belongs to the REST API (and so needs the token on the direct port)."""
    if path in _OPEN:
        return False
    return path.startswith("/api/") or path in _ALIASES


def presented_token(request: web.Request) -> str | None:
    """The token the request presents: ``Authorization: Bearer``, or ``?token=`` on a GET."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method in _SAFE_METHODS:
        return request.query.get("token") or None
    return None


def authorized(request: web.Request, token: str, public_read: bool) -> bool:
    """Whether ``request`` may proceed (see the module's rules)."""
    if is_ingress(request) or not is_protected(request.path):
        return True
    if public_read and request.method in _SAFE_METHODS:
        return True
    presented = presented_token(request)
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse API requests without the token with 401 (429 while locked out), JSON bodies."""
    app = request.app
    keys = (("api", request.remote or "?"),)
    throttle = app[THROTTLE]
    wait = throttle.retry_after(keys)
    if wait > 0 and is_protected(request.path) and not is_ingress(request):
        app[METRICS].inc("ocpp_proxy_limit_hits_total", limit="api_auth_throttle")
        return web.json_response(
            {"error": "too many failed attempts; try again later", "field": "Authorization"},
            status=429,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    token = app[API_TOKEN].value if API_TOKEN in app else ""
    if not authorized(request, token, app[CONFIG].api_public_read):
        app[METRICS].inc("ocpp_proxy_auth_failures_total", peer="api")
        throttle.failed(keys)
        return web.json_response(
            {"error": "missing or wrong API token", "field": "Authorization"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="ocpp-proxy"'},
        )
    return await handler(request)


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The token kept in ``data_dir``, or a new one written there (mode 0o600).

    Returns:
        The token, and whether it was generated now.
    """
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, False
    return write_new_token(data_dir), True


def write_new_token(data_dir: Path) -> str:
    """Generate a token, keep it in ``data_dir`` (mode 0o600, replacing any) and return it."""
    token = secrets.token_urlsafe(32)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / TOKEN_FILE
    partial = data_dir / (TOKEN_FILE + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    os.chmod(partial, 0o600)
    os.replace(partial, path)  # whole or not at all: a half-written token locks the owner out
    return token


async def token_context(app: web.Application) -> AsyncIterator[None]:
    """At startup: the configured ``api_token``, else the kept or a newly generated one.

    The token itself is never logged: only where it is kept and how to see it.
    """
    config = app[CONFIG]
    if config.api_token:
        app[API_TOKEN] = ApiToken(config.api_token, configured=True)
    else:
        data_dir = Path(config.data_dir)
        token, generated = await asyncio.to_thread(load_or_create_token, data_dir)
        app[API_TOKEN] = ApiToken(token, configured=False, path=data_dir / TOKEN_FILE)
        if generated:
            _LOGGER.warning(
                "Generated the REST API token and kept it in %s. See it on the page opened "
                "from Home Assistant's sidebar, or with: ocpp-proxy token --data-dir %s",
                data_dir / TOKEN_FILE,
                data_dir,
            )
    yield
