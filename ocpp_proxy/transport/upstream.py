"""The proxy's outbound WebSocket client to one upstream CSMS (an ``ocpp_services`` entry).

To the CSMS the proxy is the charger: it connects to ``<url>/<charge point id>`` offering the
service's OCPP subprotocol (OCPP-J 1.6 §3.1.1; OCPP 2.0.1 part 4 §3.1.1), authenticates with
HTTP Basic (security profiles 1 and 2: username = charge point id) or a Bearer token, and
reconnects with exponential backoff and jitter while the charger is connected.

The WebSocket is picows' (a Cython implementation of RFC 6455): it hands every frame to
:class:`CsmsSocket` synchronously, from the event loop's read callback, and writes a frame to
the socket in the same call that sends it: about 25,000 fewer instructions per relayed call
than aiohttp's client, which read through a queue and a task (docs/benchmarks.md). What
aiohttp's client did on top of the frames is done here: reassembling fragmented messages
(RFC 6455 §5.4), answering close frames (§5.5.1), the size limit of a message, the order in
which frames reach the hub, and waiting while the socket's buffer is full.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from picows import (
    WSCloseCode,
    WSFrame,
    WSHandshakeError,
    WSInvalidStatusError,
    WSInvalidURL,
    WSListener,
    WSMsgType,
    WSProtocolError,
    WSTransport,
    ws_connect,
)

from ocpp_proxy.backoff import Backoff
from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import ServiceConfig
from ocpp_proxy.relay.backend_link import LinkState
from ocpp_proxy.relay.hub import LinkEndpoint
from ocpp_proxy.security.tls import client_ssl_context

_LOGGER = logging.getLogger(__name__)

#: Backoff between connection attempts (s): first delay, factor, cap.
BACKOFF_FIRST_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 60.0
#: A link that stayed up this long (s) starts the backoff from the beginning again.
STABLE_AFTER_S = 30.0
#: The share of each wait drawn at random: between half and all of it.
BACKOFF_JITTER = 0.5
#: Time allowed for the TCP, TLS and WebSocket handshake (s), redirects included.
CONNECT_TIMEOUT_S = 10.0
#: Time allowed for the closing handshake (s) before the socket is cut.
CLOSE_TIMEOUT_S = CONNECT_TIMEOUT_S
#: Redirects followed in one connection attempt (aiohttp's default, which the proxy used).
MAX_REDIRECTS = 10
#: The read buffer a link starts with (bytes); picows doubles it for a larger frame.
READ_BUFFER_BYTES = 4096

#: RFC 9110 §15.4: the statuses that redirect with a Location header.
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Close codes an endpoint must not send (RFC 6455 §7.4.1), or none at all (0: an empty close
#: frame, RFC 6455 §5.5.1): a close frame carrying one is answered with 1000.
_UNSENDABLE_CLOSE_CODES = frozenset({0, 1005, 1006, 1015})
#: RFC 6455 §7.1.5: the connection closed and no close frame was received.
_ABNORMAL_CLOSURE = 1006

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONTINUATION = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE


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
        return {"Authorization": _basic(username, service.password)}
    if service.auth_type == "token":
        return {"Authorization": f"Bearer {service.token}"}
    return {}


def _basic(username: str, password: str) -> str:
    """RFC 7617: ``Basic`` and the base64 of ``user:password`` in UTF-8."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def ssl_context(service: ServiceConfig) -> ssl.SSLContext | None:
    """TLS for ``wss://`` (None for ``ws://``): see ``ocpp_proxy.security.tls``.

    The server certificate is verified against the system CAs or the service's ``ca_file``
    unless ``verify_tls`` is false; ``client_certfile`` / ``client_keyfile`` are presented as
    the proxy's client certificate (security profile 3).
    """
    return client_ssl_context(service)


def _without_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its user information, and that as an RFC 7617 Basic header (or None).

    RFC 6455 §3 has no user information in a WebSocket URI and picows ignores it; aiohttp,
    which the proxy used before, sent it as HTTP Basic credentials, so a service configured
    with ``ws://user:password@host/...`` keeps authenticating.
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, _basic(unquote(parts.username), unquote(parts.password or ""))


def _redirect_target(url: str, location: str) -> str | None:
    """Where a redirect from ``url`` to ``location`` leads (a ws/wss URL), or None.

    A relative ``Location`` is resolved against ``url`` (RFC 9110 §10.2.2); ``http`` and
    ``https`` are taken for ``ws`` and ``wss`` (RFC 6455 §3 builds them on HTTP). A redirect
    from ``wss://`` to ``ws://`` is not followed: it would send the credentials in clear text.
    """
    target = urljoin(url, location)
    scheme, _, rest = target.partition(":")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("ws", "wss") or (url.startswith("wss:") and scheme == "ws"):
        return None
    return f"{scheme}:{rest}"


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class _WireLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """picows' log lines for one link: prefixed with the link's id, demoted where they repeat.

    picows says at INFO when each connection opens and closes, which the client says already,
    and at ERROR when a CSMS breaks the protocol, which is the CSMS's fault, not the proxy's:
    those become DEBUG and WARNING. Lines with a traceback (a fault in the proxy) stay ERROR.
    """

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Put the link's id in front of the message."""
        return f"{self.extra['link']}: {msg}", kwargs  # type: ignore[index]

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log at ``level``, demoted as the class says."""
        if level == logging.INFO:
            level = logging.DEBUG
        elif level == logging.ERROR and not kwargs.get("exc_info"):
            level = logging.WARNING
        super().log(level, msg, *args, **kwargs)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Run ``coro``, started by hand and suspended on ``waiting``, to its end in the caller.

    What ``coro`` waits on is handed to the task that awaits this, as ``await`` would hand it;
    so the task resumes ``coro`` when it is done, and a cancellation reaches ``coro`` where it
    waits, as if the task had run it from the start.
    """
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:  # thrown in by the task (a cancellation): forward it
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration:
                return


class CsmsSocket(WSListener):
    """One WebSocket to a CSMS: picows' listener for its frames, and the hub's ``Peer``.

    Frames reach ``on_text`` in the order they arrived. Each is handled at once, inside
    picows' read callback, when its coroutine does not wait (the usual case: the hub routes a
    frame without waiting); one that waits holds back the frames behind it, which a task
    finishes in order. Until :meth:`release` (the hub is attached) every frame waits.

    Writes (:meth:`send_str`) go to the socket in the call; a write waits only while the
    socket's buffer is over its high-water mark (asyncio's flow control: ``pause_writing``),
    so a CSMS that stops reading holds up its own sender, which reports it stalled.

    Args:
        name: the link's id, for log lines.
        on_text: the hub's handler of one text frame.
        max_message_bytes: the largest message taken; a larger one closes the socket with
            1009 (RFC 6455 §7.4.1).
    """

    def __init__(
        self,
        name: str,
        on_text: Callable[[str], Coroutine[Any, Any, None]],
        max_message_bytes: int,
    ) -> None:
        super().__init__()
        self.name = name
        self.transport: WSTransport | None = None
        #: The connection's close code once it closed (see :meth:`on_ws_disconnected`).
        self.close_code: int | None = None
        #: Set when the dial was given up: a handshake that completes late is closed at once.
        self.abandoned = False
        self._on_text = on_text
        self._max_message_bytes = max_message_bytes
        self._loop = asyncio.get_running_loop()
        # A fragmented message being reassembled (RFC 6455 §5.4): its opcode and parts.
        self._fragment_type: WSMsgType = _TEXT
        self._fragments: list[bytes] | None = None
        self._fragment_bytes = 0
        # Frames that wait for the one before them, and whether new ones must queue.
        self._backlog: deque[str] = deque()
        self._held = True
        self._relaying: asyncio.Task[None] | None = None
        # Writers waiting for the socket's buffer to drain (asyncio flow control).
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        # Ends when the socket closed (started with the connection).
        self._gone: asyncio.Task[None] | None = None

    # -- picows' callbacks -----------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        """The handshake completed."""
        self.transport = transport
        self._gone = self._loop.create_task(self._until_disconnected(transport))
        if self.abandoned:  # the dial timed out or was cancelled meanwhile: nobody owns this
            transport.disconnect()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """One frame from the CSMS (PINGs are answered by picows, PONGs taken by its pinger)."""
        kind = frame.msg_type
        if transport.is_close_frame_sent:
            # The proxy closes (RFC 6455 §7.1.2) or failed the connection (§7.1.7: process no
            # more data; picows parses what it has already read before it hangs up): only the
            # CSMS's close frame still matters, as the end of the closing handshake.
            if kind is _CLOSE:
                transport.disconnect()
            return
        # RFC 6455 §5.2: no extension was negotiated, so a reserved bit set is an error.
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "a frame with a reserved bit set")
        if kind is _TEXT and frame.fin and self._fragments is None:  # the usual frame
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                raise self._invalid_text() from None
            self._relay(text)
        elif kind is _TEXT or kind is _BINARY or kind is _CONTINUATION:
            self._reassemble(kind, frame)
        elif kind is _CLOSE:
            self._answer_close(transport, frame.get_close_code())
        # An unsolicited PONG needs no answer (RFC 6455 §5.5.3).

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """The socket closed: its close code is settled and waiting writers fail."""
        handshake = transport.close_handshake
        if handshake is not None and handshake.recv is not None:
            self.close_code = int(handshake.recv.code)  # the CSMS's close frame
        elif handshake is not None and handshake.sent is not None:
            # The proxy failed or closed the connection and had no answer: its own code, as
            # aiohttp reported it too, says why (1009: a message too large, ...).
            self.close_code = int(handshake.sent.code)
            if handshake.sent.reason:
                _LOGGER.info(
                    "%s: closed by the proxy (code %d: %s)",
                    self.name,
                    self.close_code,
                    handshake.sent.reason,
                )
        else:
            self.close_code = _ABNORMAL_CLOSURE
        self._wake_writers()  # to find the socket closed

    def pause_writing(self) -> None:
        """The socket's write buffer is over its high-water mark: writers wait."""
        self._paused = True

    def resume_writing(self) -> None:
        """The buffer drained below its low-water mark: waiting writers go on."""
        self._paused = False
        self._wake_writers()

    # -- the hub's Peer ----------------------------------------------------------------------

    async def send_str(self, data: str) -> None:
        """Send one text frame: written at once; waits while the socket's buffer is full."""
        transport = self.transport
        if transport is None or transport.is_close_frame_sent or transport.is_disconnected:
            # picows drops such a frame silently; the hub's sender must know it was not sent.
            raise ConnectionResetError("the WebSocket to the CSMS is closed")
        transport.send(_TEXT, data)  # picows encodes a str as UTF-8 itself
        if self._paused:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
            if transport.is_disconnected:  # woken by the end of the socket: the frame is lost
                raise ConnectionResetError("the WebSocket to the CSMS closed")

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        """Close the WebSocket (RFC 6455 §7.1.2) and wait for the CSMS's answer.

        Waits at most :data:`CLOSE_TIMEOUT_S` for the CSMS's close frame, then cuts the
        socket. Returns False if it was closed or closing already.
        """
        transport, gone = self.transport, self._gone
        if transport is None or gone is None or transport.is_disconnected:
            return False
        first = not transport.is_close_frame_sent
        if first:
            transport.send_close(code, message)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.shield(gone)
        except TimeoutError:
            transport.disconnect(graceful=False)
        return first

    # -- for the client ------------------------------------------------------------------------

    async def release(self) -> None:
        """Relay the frames that wait, in order; then let the next ones through at once."""
        while self._backlog:
            text = self._backlog.popleft()
            try:
                await self._on_text(text)
            except Exception:
                _LOGGER.exception("%s: error while relaying a frame: %.200s", self.name, text)
        self._held = False

    async def closed(self) -> None:
        """Wait until the socket closed and every frame it brought was relayed."""
        if self._gone is not None:
            await asyncio.shield(self._gone)
        while self._relaying is not None:
            await self._relaying

    def abandon(self) -> None:
        """The client gives the socket up (cancelled): cut it, stop relaying."""
        self.abandoned = True
        if self._relaying is not None:
            self._relaying.cancel()
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.disconnect(graceful=False)

    async def _until_disconnected(self, transport: WSTransport) -> None:
        # picows keeps the error it failed a connection for (a protocol error, logged already)
        # for whoever waits: taken here, or asyncio would log it again as never retrieved.
        with contextlib.suppress(Exception):
            await transport.wait_disconnected()

    # -- frames ------------------------------------------------------------------------------

    def _relay(self, text: str) -> None:
        """Hand one message to the hub, behind those that wait."""
        if self._held:
            self._backlog.append(text)
            return
        coro = self._on_text(text)
        try:
            waiting = coro.send(None)  # run the handler until it ends or must wait
        except StopIteration:
            return
        except Exception:  # one bad frame never drops the link (as transport/websocket.py)
            _LOGGER.exception("%s: error while relaying a frame: %.200s", self.name, text)
            return
        self._held = True  # frames behind this one wait for it
        self._relaying = self._loop.create_task(self._finish(text, coro, waiting))

    async def _finish(self, text: str, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        try:
            await _resume(coro, waiting)
        except Exception:
            _LOGGER.exception("%s: error while relaying a frame: %.200s", self.name, text)
        await self.release()
        self._relaying = None

    def _reassemble(self, kind: WSMsgType, frame: WSFrame) -> None:
        """A fragment, or a whole binary message (RFC 6455 §5.4)."""
        if kind is _CONTINUATION:
            if self._fragments is None:
                raise WSProtocolError(
                    WSCloseCode.PROTOCOL_ERROR, "a continuation frame without a message"
                )
        elif self._fragments is not None:
            raise WSProtocolError(
                WSCloseCode.PROTOCOL_ERROR, "a new message before the last one's final frame"
            )
        else:
            self._fragment_type = kind
            self._fragments = []
            self._fragment_bytes = 0
        size = self._fragment_bytes + frame.payload_size
        if size > self._max_message_bytes:
            self._fragments = None
            raise WSProtocolError(
                WSCloseCode.MESSAGE_TOO_BIG,
                f"a message of more than {self._max_message_bytes} bytes",
            )
        self._fragments.append(frame.get_payload_as_bytes())  # the frame's memory is reused
        self._fragment_bytes = size
        if not frame.fin:
            return
        payload = b"".join(self._fragments)
        self._fragments = None
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            if self._fragment_type is _TEXT:
                raise self._invalid_text() from None
            # OCPP-J uses text frames (OCPP-J 1.6 §3.2); binary ones are read as UTF-8 for
            # peers that send them anyway, as from chargers (transport/websocket.py).
            _LOGGER.warning("%s sent a binary frame that is not UTF-8; dropped", self.name)
            return
        self._relay(text)

    @staticmethod
    def _invalid_text() -> WSProtocolError:
        # RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007.
        return WSProtocolError(WSCloseCode.INVALID_TEXT, "a text message that is not UTF-8")

    @staticmethod
    def _answer_close(transport: WSTransport, code: int) -> None:
        """RFC 6455 §5.5.1: answer a close frame with one (echoing its code), then hang up.

        Only for a close the CSMS began: the answer to the proxy's own close frame is taken
        in :meth:`on_ws_frame` before this.
        """
        transport.send_close(1000 if code in _UNSENDABLE_CLOSE_CODES else code)
        transport.disconnect()

    def _wake_writers(self) -> None:
        # A result, never an exception: a writer given up on (its coroutine closed by the
        # hub's sender) no longer reads it, and asyncio would log an unread exception.
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():  # done: its writer was cancelled (timed out)
                waiter.set_result(None)


class _Refused(Exception):
    """A connection attempt failed; the message is the link's ``last_error``."""


class UpstreamClient:
    """Keeps one service's WebSocket up while the charger is connected.

    Args:
        link: the backend link the frames go to and come from.
        service: the service's configuration.
        charge_point_id: the id the proxy presents to the service.
        ping_interval: WebSocket ping interval (s): a ping goes out after this long without a
            frame from the CSMS, and a link without pong within half of it is closed.
        max_frame_bytes: the largest frame accepted (bytes).
        clock: the clock the waits between attempts are slept on.
    """

    def __init__(
        self,
        link: LinkEndpoint,
        service: ServiceConfig,
        charge_point_id: str,
        *,
        ping_interval: float,
        max_frame_bytes: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.link = link
        self.service = service
        self.url = service_url(service, charge_point_id)
        self._dial_url, url_auth = _without_credentials(self.url)
        self._headers = auth_headers(service, charge_point_id)
        if url_auth is not None and "Authorization" not in self._headers:
            self._headers["Authorization"] = url_auth
        self._ssl: ssl.SSLContext | None = None
        self._ssl_error = ""
        try:
            self._ssl = ssl_context(service)
        except (OSError, ssl.SSLError) as err:
            # A missing or mismatched certificate file fails this link, not the charger's hub.
            self._ssl_error = f"cannot load the TLS files: {err}"
        self._ping_interval = ping_interval
        # Frames over the proxy's limit get a CALLERROR, not a closed socket: take bigger
        # messages so that the relay can answer them.
        self._max_msg_size = max_frame_bytes * 4
        self._task: asyncio.Task[None] | None = None
        self._socket: CsmsSocket | None = None
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
        if self._socket is not None:
            await self._socket.close()
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
        socket = CsmsSocket(self.link.id, self.link.on_text, self._max_msg_size)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                transport = await self._dial(socket, subprotocol)
        except _Refused as err:
            socket.abandon()
            self._failed(str(err))
            return
        except TimeoutError:
            socket.abandon()
            self._failed(f"cannot connect: no WebSocket within {CONNECT_TIMEOUT_S:g} s")
            return
        except BaseException:  # cancelled (stop): a handshake finishing later is closed
            socket.abandon()
            raise
        chosen = transport.response.headers.get("Sec-WebSocket-Protocol")
        if chosen not in (subprotocol, None):
            # RFC 6455 §4.1: a subprotocol the client did not offer fails the connection.
            await socket.close(code=1002)  # protocol error
            self._failed(f"the CSMS chose subprotocol {chosen}, not {subprotocol}")
            return
        if chosen is None:
            _LOGGER.warning("%s accepted without a subprotocol; assuming %s", self.url, subprotocol)
        _LOGGER.info("%s: connected to %s", self.link.id, self.url)
        self._backoff.connected()
        self._socket = socket
        try:
            await self.link.attach(socket)
            await socket.release()
            await socket.closed()
        finally:
            self._socket = None
            socket.abandon()  # a no-op unless cancelled: nothing may outlive the attempt
            code = socket.close_code
            await self.link.detach(f"closed (code {code})" if code else "closed", socket)

    async def _dial(self, socket: CsmsSocket, subprotocol: str) -> WSTransport:
        """Open the WebSocket, following redirects as aiohttp did; raise :class:`_Refused`."""
        url, headers = self._dial_url, self._headers
        for _ in range(MAX_REDIRECTS + 1):
            try:
                transport, listener = await ws_connect(
                    lambda _request, _response: socket,
                    url,
                    ssl_context=self._ssl,
                    websocket_handshake_timeout=CONNECT_TIMEOUT_S,
                    logger_name=_WireLog(_LOGGER, {"link": self.link.id.replace("%", "%%")}),
                    enable_auto_ping=True,
                    auto_ping_idle_timeout=self._ping_interval,
                    # aiohttp's heartbeat waited half the interval for the pong, too.
                    auto_ping_reply_timeout=self._ping_interval / 2,
                    max_frame_size=self._max_msg_size,
                    extra_headers={**headers, "Sec-WebSocket-Protocol": subprotocol},
                    max_redirects=0,  # followed here, to keep credentials to their origin
                    # OCPP frames are mostly under 4 KB; picows grows the buffer for larger
                    # ones. Its 16 KB default cost about 10 KB of RSS per link (2,000 links:
                    # 20 MB).
                    read_buffer_init_size=READ_BUFFER_BYTES,
                )
            except WSInvalidStatusError as err:
                response = err.response
                assert response is not None  # a status error always has the response
                status = response.status
                location = response.headers.get("Location")
                target = None
                if status in _REDIRECT_STATUSES and location:
                    target = _redirect_target(url, location)
                if target is None:
                    raise _Refused(
                        f"handshake refused: HTTP {status.value} {status.phrase}"
                    ) from err
                if _origin(target) != _origin(url):
                    # As aiohttp and browsers do: credentials stay with the origin they are for.
                    headers = {k: v for k, v in headers.items() if k != "Authorization"}
                _LOGGER.info("%s: redirected to %s (HTTP %d)", self.link.id, target, status)
                url = target
                continue
            except WSHandshakeError as err:
                # Not an answer RFC 6455 §4.1 accepts (the upgrade, the accept key, ...).
                status = "" if err.response is None else f"HTTP {err.response.status.value} "
                raise _Refused(f"handshake refused: {status}{err}") from err
            except (OSError, EOFError, WSInvalidURL) as err:  # ssl.SSLError is an OSError
                raise _Refused(f"cannot connect: {err or type(err).__name__}") from err
            if listener is None or transport.is_disconnected:
                # picows returns without a listener when the socket closed before the 101.
                raise _Refused("cannot connect: the connection closed during the handshake")
            return transport
        raise _Refused(f"handshake refused: more than {MAX_REDIRECTS} redirects")

    def _failed(self, reason: str) -> None:
        _LOGGER.warning("%s: %s (%s)", self.link.id, reason, self.url)
        self.link.last_error = reason
