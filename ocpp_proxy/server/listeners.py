"""Where the proxy listens: the main port, and Home Assistant's ingress port.

The main port (``port``, 9000) serves chargers, backends, the page and the REST API, over TLS
when ``ssl_certfile`` is set. The Supervisor's ingress proxy always connects over plain HTTP,
so ingress gets a listener of its own (``ingress_port``, 8099 in the app, not mapped to the
host): plain HTTP, the page and the API only, and only for the Supervisor
(:data:`INGRESS_ADDRESS`). The container itself (loopback) may read ``/health`` there, for the
image's ``HEALTHCHECK``, which cannot know whether the main port speaks TLS.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ocpp_proxy.config import ProxyConfig

_LOGGER = logging.getLogger(__name__)

#: The address Home Assistant's Supervisor proxies ingress requests from.
INGRESS_ADDRESS = "172.30.32.2"

#: Paths the container itself may read on the ingress port.
LOCAL_PATHS = frozenset({"/health", "/api/v1/health"})

_LOOPBACK = frozenset({"127.0.0.1", "::1"})

#: The OCPP WebSocket endpoints, which ingress does not serve.
_OCPP_PREFIXES = ("/charger", "/backend")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Listeners:
    """Which ports are ingress listeners, and who ingress trusts.

    ``ingress_peers`` holds the Supervisor's address (tests put a stand-in there);
    ``ingress_ports`` is filled in by :func:`start_listeners` once the port is bound.
    """

    ingress_peers: frozenset[str] = frozenset({INGRESS_ADDRESS})
    ingress_ports: set[int] = field(default_factory=set)

    def on_ingress_port(self, request: web.Request) -> bool:
        """Whether ``request`` arrived on an ingress listener."""
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return bool(sockname) and sockname[1] in self.ingress_ports

    def through_ingress(self, request: web.Request) -> bool:
        """Whether ``request`` came from the Supervisor's ingress proxy to an ingress listener.

        Home Assistant has authenticated the user then, so the request is trusted.
        """
        return request.remote in self.ingress_peers and self.on_ingress_port(request)


LISTENERS = web.AppKey("listeners", Listeners)


@web.middleware
async def ingress_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On the ingress port: the Supervisor gets the page and the API, loopback ``/health``.

    Anyone else gets HTTP 403; the OCPP endpoints are not served there (HTTP 404).
    """
    listeners = request.app[LISTENERS]
    if not listeners.on_ingress_port(request):
        return await handler(request)
    remote = request.remote or "?"
    if remote in listeners.ingress_peers:
        if request.path.startswith(_OCPP_PREFIXES):
            raise web.HTTPNotFound(text="chargers and backends connect to the main port")
        return await handler(request)
    if remote in _LOOPBACK and request.path in LOCAL_PATHS:
        return await handler(request)
    _LOGGER.warning("ingress port: refused %s %s from %s", request.method, request.path, remote)
    raise web.HTTPForbidden(text="the ingress port serves Home Assistant's Supervisor only")


async def start_listeners(
    runner: web.AppRunner,
    config: ProxyConfig,
    ssl_context: ssl.SSLContext | None,
    *,
    host: str | None = None,
    port: int | None = None,
    ingress_port: int | None = None,
) -> list[web.TCPSite]:
    """Start the main listener and, when there is one, the ingress listener.

    In: a set-up runner; host and ports default to the config's (``ingress_port`` 0 in the
    config means none; an explicit 0 here binds a free port, for tests). Out: the started sites.
    The ingress listener never uses TLS. Raises :class:`OSError` if a port cannot be bound.
    """
    host = config.host if host is None else host
    main = web.TCPSite(runner, host, config.port if port is None else port, ssl_context=ssl_context)
    await main.start()
    sites = [main]
    if ingress_port is None and config.ingress_port:
        ingress_port = config.ingress_port
    if ingress_port is not None:
        before = set(runner.addresses)
        ingress = web.TCPSite(runner, host, ingress_port)
        await ingress.start()
        bound = {address[1] for address in set(runner.addresses) - before}
        runner.app[LISTENERS].ingress_ports.update(bound or {ingress_port})
        sites.append(ingress)
    return sites
