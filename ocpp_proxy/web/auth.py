"""Who may use the REST API, and with which role: Home Assistant ingress, or a bearer token.

Requests through Home Assistant's ingress come from the Supervisor's ingress proxy
(:data:`INGRESS_ADDRESS`) to the ingress listener (``ingress_port``, see
:mod:`ocpp_proxy.server.listeners`); Home Assistant has already authenticated the user, so they
are trusted as admin. On the direct port every request needs
``Authorization: Bearer <token>``: ``api_token`` (admin), a token of ``api_tokens`` or one
made through the API (see :mod:`ocpp_proxy.web.tokens` for the roles). Requests that need
only the ``read`` role pass without a token when ``api_public_read`` is on. ``GET`` requests
may pass the token as ``?token=`` instead (server-sent events and download links cannot set
headers). No valid token: 401; a valid token whose role is too low for the route: 403.

Every request that may change something (not GET/HEAD/OPTIONS) is written to the audit log
with the token's name before it is handled.

The OCPP WebSocket endpoints, ``/health``, the page and its static files are not behind the
token: only the paths of :func:`is_protected` are.

Failed attempts are throttled per address like charger logins
(:mod:`ocpp_proxy.security.throttle`): past 5 failures within 60 s the address gets HTTP 429
with ``Retry-After`` at once, its token unchecked, for 1 s doubling up to 30 s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from ocpp_proxy.audit import record_entry
from ocpp_proxy.security.redaction import redact
from ocpp_proxy.server.keys import CONFIG, METRICS, REGISTRY, THROTTLE
from ocpp_proxy.server.listeners import INGRESS_ADDRESS, LISTENERS
from ocpp_proxy.store import StoreError
from ocpp_proxy.web.keys import API_TOKEN, IDENTITY, ROUTE_ROLES, TOKENS, ApiToken
from ocpp_proxy.web.tokens import (
    ADMIN,
    INGRESS_NAME,
    PUBLIC_NAME,
    READ,
    Identity,
    TokenBook,
)

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


def required_role(request: web.Request) -> str | None:
    """The role the request's route needs, or None when the path is not behind the token."""
    if not is_protected(request.path):
        return None
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    roles = request.app.get(ROUTE_ROLES, {})
    return roles.get((request.method, path)) or roles.get(("GET", path)) or READ


def identify(
    request: web.Request, admin_token: str, book: TokenBook, public_read: bool, need: str
) -> Identity | None:
    """Who ``request`` is, or None when it presents no valid token.

    Ingress is admin; a presented token is its owner; with ``public_read``, a safe request
    without a valid token to a route that needs ``read`` is the public reader.
    """
    if is_ingress(request):
        return Identity(INGRESS_NAME, ADMIN)
    presented = presented_token(request)
    identity = book.resolve(presented, admin_token) if presented is not None else None
    if identity is None and public_read and need == READ and request.method in _SAFE_METHODS:
        return Identity(PUBLIC_NAME, READ)  # as before roles: a stale token does not matter
    return identity


def authorized(request: web.Request, token: str, public_read: bool) -> bool:
    """Whether ``request`` may proceed with ``token`` as the only (admin) token."""
    if not is_protected(request.path):
        return True
    identity = identify(request, token, TokenBook(), public_read, READ)
    return identity is not None and identity.may(
        ADMIN if request.method not in _SAFE_METHODS else READ
    )


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without a valid token (429 while locked out), 403 when its role is too low.

    What may change things is audited with the token's name.
    """
    need = required_role(request)
    if need is None:
        return await handler(request)
    app = request.app
    keys = (("api", request.remote or "?"),)
    throttle = app[THROTTLE]
    wait = throttle.retry_after(keys)
    if wait > 0 and not is_ingress(request):
        app[METRICS].inc("ocpp_proxy_limit_hits_total", limit="api_auth_throttle")
        return web.json_response(
            {"error": "too many failed attempts; try again later", "field": "Authorization"},
            status=429,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    # Until startup has set them: a random admin token (nobody has it), no named tokens.
    admin_token = app[API_TOKEN].value if API_TOKEN in app else secrets.token_urlsafe(32)
    book = app.get(TOKENS) or TokenBook()
    identity = identify(request, admin_token, book, app[CONFIG].api_public_read, need)
    if identity is None:
        app[METRICS].inc("ocpp_proxy_auth_failures_total", peer="api")
        throttle.failed(keys)
        return web.json_response(
            {"error": "missing or wrong API token", "field": "Authorization"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="ocpp-proxy"'},
        )
    if not identity.may(need):
        return web.json_response(
            {
                "error": f"token {identity.name!r} has the role {identity.role}; this needs {need}",
                "field": "Authorization",
                "role": need,
            },
            status=403,
        )
    request[IDENTITY] = identity
    if request.method not in _SAFE_METHODS:
        await _audit(request, identity)
    return await handler(request)


async def _audit(request: web.Request, identity: Identity) -> None:
    """Record who asked for a change (before it is made: the outcome has its own entry)."""
    if REGISTRY not in request.app:
        return
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    try:
        await record_entry(
            request.app[REGISTRY].store,
            request.match_info.get("charge_point_id"),
            actor=f"api:{identity.name}",
            action=f"{request.method} {route}",
            # redact(): a card id in the path (personal data) is masked like a secret.
            summary=f"{identity.name} ({identity.role}) {request.method} {redact(request.path)}",
            decision="requested",
        )
    except StoreError as err:  # the request is still served; the failure is visible
        _LOGGER.error("audit of %s %s by %s failed: %s", request.method, route, identity.name, err)


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
    """At startup: the tokens the API accepts.

    The configured ``api_token``, else the kept or a newly generated one; then ``api_tokens``
    and those made through the API. The tokens themselves are never logged: only where the
    generated one is kept and how to see it.
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
    stored = await app[REGISTRY].store.tokens.all() if REGISTRY in app else []
    app[TOKENS] = TokenBook(config.api_tokens, stored)
    yield
