"""The WebSocket endpoints: chargers at ``/charger[/{id}]``, inbound backends at ``/backend``."""

from __future__ import annotations

import contextlib
import hmac
import logging
import math
from collections.abc import Iterator
from typing import NoReturn

from aiohttp import WSCloseCode, web

from ocpp_proxy.config import InboundBackendConfig
from ocpp_proxy.protocol.versions import ALL_SUBPROTOCOLS, OcppVersion
from ocpp_proxy.security.charger_auth import CHALLENGE, certificate_problem, check_charger
from ocpp_proxy.security.identity import charge_point_id_problem
from ocpp_proxy.security.throttle import HOMES_SETTING, Key
from ocpp_proxy.server.keys import CONFIG, LIMITER, METRICS, REGISTRY, SOCKETS, THROTTLE
from ocpp_proxy.store import StoreError
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


def _refuse_if_throttled(request: web.Request, keys: tuple[Key, ...]) -> None:
    """HTTP 429 at once when one of ``keys`` is locked out (the secret is not looked at)."""
    wait = request.app[THROTTLE].retry_after(keys)
    if wait > 0:
        request.app[METRICS].inc("ocpp_proxy_limit_hits_total", limit="auth_throttle")
        raise web.HTTPTooManyRequests(
            text="too many failed attempts; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def _auth_failed(
    request: web.Request,
    keys: tuple[Key, ...],
    peer: str,
    who: str,
    reason: str,
    challenge: str,
) -> NoReturn:
    """Log, count and throttle a failed authentication; raise HTTP 401 at once."""
    remote = request.remote or "?"
    # Never the presented secret: only who claimed to be whom, from where, and why not.
    _LOGGER.warning("%s %r from %s refused: %s", peer, who[:64], remote, reason)
    request.app[METRICS].inc("ocpp_proxy_auth_failures_total", peer=peer)
    # No waiting here: a lock refuses the next attempts at once (see security.throttle), so a
    # failed login never holds a connection slot or a socket.
    request.app[THROTTLE].failed(keys)
    raise web.HTTPUnauthorized(
        text=f"{peer} refused: {reason}", headers={"WWW-Authenticate": challenge}
    )


async def _logged_in(request: web.Request, kind: str, claimed: str) -> None:
    """Note the address ``claimed`` logged in from; keep it when it is a new one.

    A store fault is logged and does not refuse the login.
    """
    throttle = request.app[THROTTLE]
    if throttle.succeeded(request.remote or "?", kind, claimed):
        try:
            await request.app[REGISTRY].store.set_setting(HOMES_SETTING, throttle.homes())
        except StoreError as err:
            _LOGGER.warning("could not keep the address %s logged in from: %s", claimed, err)


@contextlib.contextmanager
def _connection_slot(request: web.Request) -> Iterator[None]:
    """Hold a capped connection slot for an authenticated peer; HTTP 503 if none is free.

    Taken only once the peer has authenticated: refused and throttled attempts hold none, so
    an authenticated charger always gets in while fewer than ``max_connections`` are open.
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


def _valid_charge_point_id(charge_point_id: str) -> str:
    """``charge_point_id`` (decoded once, by aiohttp) if valid; HTTP 400 otherwise."""
    problem = charge_point_id_problem(charge_point_id)
    if problem is not None:
        _LOGGER.warning("refused the charge point id %r: %s", charge_point_id[:64], problem)
        raise web.HTTPBadRequest(text=f"invalid charge point id: {problem}")
    return charge_point_id


async def charger_endpoint(request: web.Request) -> web.WebSocketResponse:
    """A charger's WebSocket (OCPP-J 1.6 §3; OCPP 2.0.1 part 4 §3).

    The OCPP version comes from the negotiated subprotocol; a charger that offers none gets
    ``ocpp_version`` from the config. The charge point id must be valid (HTTP 400, see
    :mod:`ocpp_proxy.security.identity`). With ``chargers`` configured, HTTP Basic with the
    charge point id and its password is required (security profiles 1 and 2, OCPP 2.0.1 part 2
    A00); with ``ssl_client_ca`` the client certificate must name the charge point (profile
    3): HTTP 401 before the upgrade otherwise, HTTP 429 while locked out after failures. In
    open mode a second connection for an online id may be refused (HTTP 409, see
    :func:`ocpp_proxy.relay.registry.HubRegistry.may_replace`). Over the connection caps: 503.
    """
    config = request.app[CONFIG]
    charge_point_id = _valid_charge_point_id(
        request.match_info.get("charge_point_id") or config.charge_point_id
    )
    remote = request.remote or "?"
    throttle = request.app[THROTTLE]
    keys = throttle.keys(remote, "charge point", charge_point_id)
    if config.chargers or config.ssl_client_ca:
        _refuse_if_throttled(request, keys)
        refused = check_charger(
            config.chargers, charge_point_id, request.headers.get("Authorization", "")
        ) or certificate_problem(
            request.transport.get_extra_info("peercert") if request.transport else None,
            charge_point_id,
            config.ssl_client_ca,
            config.client_certificate_id,
        )
        if refused is not None:
            _auth_failed(request, keys, "charge point", charge_point_id, refused, CHALLENGE)
        await _logged_in(request, "charge point", charge_point_id)
    registry = request.app[REGISTRY]
    refused = registry.may_replace(charge_point_id, remote)
    if refused is not None:
        _LOGGER.warning("charge point %s from %s refused: %s", charge_point_id, remote, refused)
        raise web.HTTPConflict(text=f"charge point {charge_point_id} refused: {refused}")
    with _connection_slot(request):
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
    registry = request.app[REGISTRY]
    hub = await registry.open(charge_point_id)
    registry.replacing(hub, remote)
    connection = await hub.attach_charger(ws, version, remote)
    try:
        await pump_frames(ws, lambda text: hub.on_charger_text(connection, text), charge_point_id)
    finally:
        request.app[SOCKETS].discard(ws)
        _LOGGER.info("charge point %s disconnected (code %s)", charge_point_id, ws.close_code)
        await hub.detach_charger(connection)
    return ws


async def _inbound_backend(request: web.Request) -> InboundBackendConfig:
    """The configured inbound backend the request authenticates as; HTTP 401 / 429 otherwise."""
    config = request.app[CONFIG]
    backend_id = request.query.get("id", "")
    remote = request.remote or "?"
    throttle = request.app[THROTTLE]
    keys = throttle.keys(remote, "backend", backend_id[:64])
    _refuse_if_throttled(request, keys)
    presented = request.query.get("token", "")
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    for backend in config.inbound_backends:
        if backend.enabled and backend.id == backend_id:
            if hmac.compare_digest(presented.encode(), backend.token.encode()):
                await _logged_in(request, "backend", backend_id)
                return backend
            break
    _auth_failed(
        request,
        keys,
        "backend",
        backend_id,
        "unknown id or wrong secret",
        'Bearer realm="ocpp-proxy"',
    )


async def backend_endpoint(request: web.Request) -> web.WebSocketResponse:
    """An inbound backend's WebSocket: it plays a CSMS over a connection it opened.

    Query: ``id`` (the backend's config id), ``charge_point_id`` (optional), ``token`` (or an
    ``Authorization: Bearer`` header). Unknown id or wrong secret: HTTP 401 before the upgrade
    (after repeated failures, HTTP 429 at once until the lock ends); a charge point that is
    neither configured nor ever seen: HTTP 404; over the connection caps: HTTP 503.
    """
    backend = await _inbound_backend(request)
    registry = request.app[REGISTRY]
    charge_point_id = _valid_charge_point_id(
        request.query.get("charge_point_id") or registry.default_charge_point_id()
    )
    if not await registry.exists(charge_point_id):
        # A hub per id a backend names would be memory (and /status rows) for the asking.
        _LOGGER.warning(
            "backend %s asked for charge point %r, which is neither configured nor seen",
            backend.id,
            charge_point_id,
        )
        raise web.HTTPNotFound(text=f"unknown charge point {charge_point_id}")
    with _connection_slot(request):
        return await _serve_backend(request, backend, charge_point_id)


async def _serve_backend(
    request: web.Request, backend: InboundBackendConfig, charge_point_id: str
) -> web.WebSocketResponse:
    hub = await request.app[REGISTRY].open(charge_point_id)
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
