"""The proxy's outbound WebSocket client to one upstream CSMS (an ``ocpp_services`` entry).

To the CSMS the proxy is the charger: it connects to ``<url>/<charge point id>`` offering the
service's OCPP subprotocol (OCPP-J 1.6 §3.1.1; OCPP 2.0.1 part 4 §3.1.1), authenticates with
HTTP Basic (security profiles 1 and 2: username = charge point id) or a Bearer token, and
reconnects with exponential backoff and jitter while the charger is connected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
from urllib.parse import quote

import aiohttp

from ocpp_proxy.backoff import Backoff
from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import ServiceConfig
from ocpp_proxy.relay.backend_link import LinkState
from ocpp_proxy.relay.hub import LinkEndpoint
from ocpp_proxy.security.tls import client_ssl_context
from ocpp_proxy.transport.websocket import pump_frames

_LOGGER = logging.getLogger(__name__)

#: Backoff between connection attempts (s): first delay, factor, cap.
BACKOFF_FIRST_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 60.0
#: A link that stayed up this long (s) starts the backoff from the beginning again.
STABLE_AFTER_S = 30.0
#: The share of each wait drawn at random: between half and all of it.
BACKOFF_JITTER = 0.5
#: Time allowed for the TCP, TLS and WebSocket handshake (s).
CONNECT_TIMEOUT_S = 10.0


def service_url(service: ServiceConfig, charge_point_id: str) -> str:
    """The URL to dial: ``{charge_point_id}`` substituted, else the id appended as a path part."""
    cp = quote(charge_point_id, safe="")
    if "{charge_point_id}" in service.url:
        return service.url.replace("{charge_point_id}", cp)
    return service.url.rstrip("/") + "/" + cp


def auth_headers(service: ServiceConfig, charge_point_id: str) -> dict[str, str]:
    """HTTP headers that authenticate the proxy to the service.

    ``basic``: HTTP Basic with the service's username, or the charge point id if none is set
    (OCPP 1.6 security whitepaper / 2.0.1 part 2 A00, security profiles 1 and 2). ``token``:
    ``Authorization: Bearer <token>``.
    """
    if service.auth_type == "basic":
        username = service.username or charge_point_id
        # RFC 7617: base64 of "user:password" in UTF-8.
        credentials = base64.b64encode(f"{username}:{service.password}".encode()).decode()
        return {"Authorization": f"Basic {credentials}"}
    if service.auth_type == "token":
        return {"Authorization": f"Bearer {service.token}"}
    return {}


def ssl_context(service: ServiceConfig) -> ssl.SSLContext | None:
    """TLS for ``wss://`` (None for ``ws://``): see ``ocpp_proxy.security.tls``.

    The server certificate is verified against the system CAs or the service's ``ca_file``
    unless ``verify_tls`` is false; ``client_certfile`` / ``client_keyfile`` are presented as
    the proxy's client certificate (security profile 3).
    """
    return client_ssl_context(service)


class UpstreamClient:
    """Keeps one service's WebSocket up while the charger is connected.

    Args:
        link: the backend link the frames go to and come from.
        service: the service's configuration.
        charge_point_id: the id the proxy presents to the service.
        session: the aiohttp client session to dial with.
        ping_interval: WebSocket ping interval (s); a link without pong is closed.
        max_frame_bytes: the largest frame accepted (bytes).
        clock: the clock the waits between attempts are slept on.
    """

    def __init__(
        self,
        link: LinkEndpoint,
        service: ServiceConfig,
        charge_point_id: str,
        *,
        session: aiohttp.ClientSession,
        ping_interval: float,
        max_frame_bytes: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.link = link
        self.service = service
        self.url = service_url(service, charge_point_id)
        self._headers = auth_headers(service, charge_point_id)
        self._ssl: ssl.SSLContext | None = None
        self._ssl_error = ""
        try:
            self._ssl = ssl_context(service)
        except (OSError, ssl.SSLError) as err:
            # A missing or mismatched certificate file fails this link, not the charger's hub.
            self._ssl_error = f"cannot load the TLS files: {err}"
        self._session = session
        self._ping_interval = ping_interval
        # Frames over the proxy's limit get a CALLERROR, not a closed socket: let aiohttp
        # take bigger ones so that the relay can answer them.
        self._max_msg_size = max_frame_bytes * 4
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._backoff = Backoff(
            BACKOFF_FIRST_S,
            BACKOFF_FACTOR,
            BACKOFF_MAX_S,
            jitter=BACKOFF_JITTER,
            stable_after_s=STABLE_AFTER_S,
            clock=clock,
        )

    def start(self) -> None:
        """Start the connect loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Close the WebSocket and end the connect loop."""
        task, self._task = self._task, None
        if self._ws is not None:
            await self._ws.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        first = True
        while True:
            self.link.set_state(LinkState.CONNECTING, opening=first)
            await self._connect_once()
            first = False
            wait = self._backoff.next_delay()
            self.link.set_state(LinkState.CONNECTING, self.link.last_error)
            _LOGGER.info("%s: next connection attempt in %.1f s", self.link.id, wait)
            await self._backoff.wait(wait)

    async def _connect_once(self) -> None:
        """One connection: dial, relay until closed."""
        subprotocol = self.service.version.subprotocol
        if self._ssl_error:
            self._failed(self._ssl_error)
            return
        if self._ssl is not None and not self.service.verify_tls:
            # Said at every connect, not once: an unverified link is open to interception.
            _LOGGER.warning(
                "%s: verify_tls is false: the certificate of %s is not checked",
                self.link.id,
                self.url,
            )
        try:
            ws = await self._session.ws_connect(
                self.url,
                protocols=(subprotocol,),
                headers=self._headers,
                heartbeat=self._ping_interval,
                ssl=self._ssl if self._ssl is not None else True,
                max_msg_size=self._max_msg_size,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT_S),
            )
        except aiohttp.WSServerHandshakeError as err:
            self._failed(f"handshake refused: HTTP {err.status} {err.message}")
            return
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            self._failed(f"cannot connect: {err or type(err).__name__}")
            return
        if ws.protocol not in (subprotocol, None):
            await ws.close()
            self._failed(f"the CSMS chose subprotocol {ws.protocol}, not {subprotocol}")
            return
        if ws.protocol is None:
            _LOGGER.warning("%s accepted without a subprotocol; assuming %s", self.url, subprotocol)
        _LOGGER.info("%s: connected to %s", self.link.id, self.url)
        self._backoff.connected()
        self._ws = ws
        try:
            await self.link.attach(ws)
            await pump_frames(ws, self.link.on_text, self.link.id)
        finally:
            self._ws = None
            reason = f"closed (code {ws.close_code})" if ws.close_code else "closed"
            await self.link.detach(reason, ws)

    def _failed(self, reason: str) -> None:
        _LOGGER.warning("%s: %s (%s)", self.link.id, reason, self.url)
        self.link.last_error = reason
