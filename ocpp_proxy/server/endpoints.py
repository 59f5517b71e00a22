"""The WebSocket endpoints: chargers at ``/charger[/{id}]``, inbound backends at ``/backend``."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Iterator
from typing import NoReturn

from aiohttp import WSCloseCode, web

from ocpp_proxy.config import InboundBackendConfig
from ocpp_proxy.protocol.versions import ALL_SUBPROTOCOLS, OcppVersion
from ocpp_proxy.security.charger_auth import CHALLENGE, check_charger
from ocpp_proxy.server.keys import CONFIG, LIMITER, METRICS, REGISTRY, SOCKETS, THROTTLE
from ocpp_proxy.transport.websocket import pump_frames

_LOGGER = logging.getLogger(__name__)


def offered_subprotocols(request: web.Request) -> list[str]:
    """The subprotocols a client offers in ``Sec-WebSocket-Protocol`` (RFC 6455 §4.1)."""
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def choose_subprotocol(offered: list[str], accepted: tuple[str, ...]) -> str | None:
    """The first offered subprotocol the proxy accepts (case-insensitive), or None."""
    wanted = {name.lower() for name in accepted}
    return next((p for p in offered if p.lower() in wanted), None)


async def _open(request: web.Request, subprotocol: str | None) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    ws = web.WebSocketResponse(
        protocols=(subprotocol,) if subprotocol else (),
        heartbeat=config.ping_interval,
        # Frames over the proxy's limit get a CALLERROR, not a closed socket: let aiohttp take
        # bigger ones so that the relay can answer them.
        max_msg_size=config.max_frame_bytes * 4,
    )
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    return ws


async def _refuse_subprotocol(request: web.Request, offered: list[str]) -> web.WebSocketResponse:
    # OCPP-J 1.6 §3.1.2: complete the handshake without a subprotocol, then close at once.
    _LOGGER.warning(
        "%s offered only %s: no OCPP version this proxy speaks", request.remote, offered
    )
    ws = await _open(request, None)
    await ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=b"unsupported subprotocol")
    request.app[SOCKETS].discard(ws)
    return ws


async def _auth_failed(
    request: web.Request, peer: str, who: str, reason: str, challenge: str
) -> NoReturn:
    """Log and count a failed authentication, wait out the throttle, raise HTTP 401."""
    remote = request.remote or "?"
    # Never the presented secret: only who claimed to be whom, from where, and why not.
    _LOGGER.warning("%s %r from %s refused: %s", peer, who, remote, reason)
    request.app[METRICS].inc("ocpp_proxy_auth_failures_total", peer=peer)
    delay = request.app[THROTTLE].failed(remote)
    if delay > 0:
        request.app[METRICS].inc("ocpp_proxy_limit_hits_total", limit="auth_throttle")
        # Only this request waits: no lock, other addresses and right secrets pass at once.
        await asyncio.sleep(delay)
    raise web.HTTPUnauthorized(
        text=f"{peer} refused: {reason}", headers={"WWW-Authenticate": challenge}
    )


@contextlib.contextmanager
def _connection_slot(request: web.Request) -> Iterator[None]:
    """Hold a capped connection slot for the request; HTTP 503 before the upgrade if none is free.

    A slot is held by a WebSocket, and by an attempt being authenticated (or throttled).
    """
    limiter, remote = request.app[LIMITER], request.remote or "?"
    limit = limiter.acquire(remote)
    if limit is not None:
        _LOGGER.warning("connection from %s refused: %s reached", remote, limit)
        raise web.HTTPServiceUnavailable(text=f"too many connections ({limit})")
    try:
        yield
    finally:
        limiter.release(remote)


async def charger_endpoint(request: web.Request) -> web.WebSocketResponse:
    """A charger's WebSocket (OCPP-J 1.6 §3; OCPP 2.0.1 part 4 §3).

    The OCPP version comes from the negotiated subprotocol; a charger that offers none gets
    ``ocpp_version`` from the config. With ``chargers`` configured, HTTP Basic with the charge
    point id and its password is required (security profiles 1 and 2, OCPP 2.0.1 part 2 A00):
    HTTP 401 before the upgrade otherwise. Over the connection caps: HTTP 503.
    """
    config = request.app[CONFIG]
    charge_point_id = request.match_info.get("charge_point_id") or config.charge_point_id
    # The slot is taken first: a refused attempt waiting out the throttle holds one too, so
    # one address cannot pile up more than max_connections_per_address of them.
    with _connection_slot(request):
        refused = check_charger(
            config.chargers, charge_point_id, request.headers.get("Authorization", "")
        )
        if refused is not None:
            await _auth_failed(request, "charge point", charge_point_id, refused, CHALLENGE)
        return await _serve_charger(request, charge_point_id)


async def _serve_charger(request: web.Request, charge_point_id: str) -> web.WebSocketResponse:
    config = request.app[CONFIG]
    offered = offered_subprotocols(request)
    accepted = (
        ALL_SUBPROTOCOLS if config.auto_detect_ocpp_version else (config.ocpp_version.subprotocol,)
    )
    subprotocol = choose_subprotocol(offered, accepted)
    if subprotocol is None and offered:
        return await _refuse_subprotocol(request, offered)
    version = OcppVersion.from_subprotocol(subprotocol) if subprotocol else config.ocpp_version
    assert version is not None
    ws = await _open(request, subprotocol)
    remote = request.remote or "?"
    _LOGGER.info("charge point %s connected from %s (OCPP %s)", charge_point_id, remote, version)
    hub = await request.app[REGISTRY].open(charge_point_id)
    connection = await hub.attach_charger(ws, version, remote)
    try:
        await pump_frames(ws, lambda text: hub.on_charger_text(connection, text), charge_point_id)
    finally:
        request.app[SOCKETS].discard(ws)
        _LOGGER.info("charge point %s disconnected (code %s)", charge_point_id, ws.close_code)
        await hub.detach_charger(connection)
    return ws


async def _inbound_backend(request: web.Request) -> InboundBackendConfig:
    """The configured inbound backend the request authenticates as; HTTP 401 otherwise."""
    config = request.app[CONFIG]
    backend_id = request.query.get("id", "")
    presented = request.query.get("token", "")
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    for backend in config.inbound_backends:
        if backend.enabled and backend.id == backend_id:
            if hmac.compare_digest(presented.encode(), backend.token.encode()):
                return backend
            break
    await _auth_failed(
        request, "backend", backend_id, "unknown id or wrong secret", 'Bearer realm="ocpp-proxy"'
    )


async def backend_endpoint(request: web.Request) -> web.WebSocketResponse:
    """An inbound backend's WebSocket: it plays a CSMS over a connection it opened.

    Query: ``id`` (the backend's config id), ``charge_point_id`` (optional), ``token`` (or an
    ``Authorization: Bearer`` header). Unknown id or wrong secret: HTTP 401 before the upgrade
    (repeated failures from one address wait longer and longer first); over the connection
    caps: HTTP 503.
    """
    with _connection_slot(request):  # before authentication: see charger_endpoint
        backend = await _inbound_backend(request)
        return await _serve_backend(request, backend)


async def _serve_backend(
    request: web.Request, backend: InboundBackendConfig
) -> web.WebSocketResponse:
    registry = request.app[REGISTRY]
    charge_point_id = request.query.get("charge_point_id") or registry.default_charge_point_id()
    hub = await registry.open(charge_point_id)
    offered = offered_subprotocols(request)
    # Its own version if configured (the proxy translates), else the charger's.
    version = backend.version or hub.version
    subprotocol = choose_subprotocol(offered, (version.subprotocol,))
    if subprotocol is None and offered:
        return await _refuse_subprotocol(request, offered)
    ws = await _open(request, subprotocol)
    link = hub.endpoint(backend.id)
    _LOGGER.info("backend %s connected for %s from %s", backend.id, charge_point_id, request.remote)
    await link.attach(ws)
    try:
        await pump_frames(ws, link.on_text, backend.id)
    finally:
        request.app[SOCKETS].discard(ws)
        await link.detach(f"closed (code {ws.close_code})", ws)
    return ws
