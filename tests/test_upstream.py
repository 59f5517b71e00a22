"""The upstream client (transport/upstream.py, on picows) against a CSMS on raw ``websockets``.

The CSMS here speaks WebSocket frames, not OCPP through a library, so that each test decides
what goes on the wire: fragments, binary frames, close frames, pings left unanswered, refused
or redirected handshakes. Through the proxy where the hub's part matters; else with a stand-in
for the hub's link (``RecordingLink``) that records what the client hands it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, NamedTuple

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ocpp_proxy.config import parse_config
from ocpp_proxy.relay import sender
from ocpp_proxy.relay.backend_link import LinkState
from ocpp_proxy.relay.sender import Peer
from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.transport import upstream
from ocpp_proxy.transport.upstream import UpstreamClient
from tests.conftest import ConnectCharger, Proxy, StartProxy
from tests.peers import now_iso

#: What this CSMS answers the charger's CALLs with (others: an empty payload).
ANSWERS: dict[str, dict[str, Any]] = {
    "BootNotification": {"status": "Accepted", "currentTime": "", "interval": 300},
    "Heartbeat": {"currentTime": ""},
}


class WireCsms:
    """A CSMS on raw ``websockets``: records frames, answers CALLs, and lets a test write.

    ``respond``: the handshake's answer instead of the upgrade (a refusal, a redirect), from
    the request path; ``choose``: the subprotocol to answer with, from those offered.
    """

    def __init__(
        self,
        *,
        respond: Callable[[ServerConnection, Request], Response | None] | None = None,
        choose: Callable[[Sequence[str]], str | None] | None = None,
        answer_calls: bool = True,
    ) -> None:
        self.respond = respond
        self.choose = choose
        self.answer_calls = answer_calls
        self.connections: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self.request_headers: list[Headers] = []
        self.paths: list[str] = []
        self.received: list[str] = []
        self.opened: list[ServerConnection] = []
        self._changed = asyncio.Condition()
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def start(self) -> WireCsms:
        choose = self.choose
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=["ocpp1.6"],
            process_request=self._process_request,
            select_subprotocol=(lambda _c, offered: choose(offered)) if choose else None,
            max_size=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for connection in self.opened:
            # One that stopped reading would wait for a closing handshake it cannot see.
            connection.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.paths.append(request.path)
        self.request_headers.append(request.headers)
        return self.respond(connection, request) if self.respond else None

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections.put_nowait(connection)
        self.opened.append(connection)
        try:
            async for message in connection:
                text = message if isinstance(message, str) else message.decode()
                self.received.append(text)
                frame = json.loads(text)
                if self.answer_calls and frame[0] == 2:
                    answer = {k: v or now_iso() for k, v in ANSWERS.get(frame[2], {}).items()}
                    await connection.send(json.dumps([3, frame[1], answer]))
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    async def next_connection(self, timeout: float = 5.0) -> ServerConnection:
        return await asyncio.wait_for(self.connections.get(), timeout)

    async def wait_received(self, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
        """The first frame received that ``predicate`` accepts (waits for it)."""

        async def find() -> str:
            async with self._changed:
                while not (hits := [t for t in self.received if predicate(t)]):
                    await self._changed.wait()
                return hits[0]

        return await asyncio.wait_for(find(), timeout)


@pytest.fixture
async def start_wire_csms() -> AsyncIterator[Callable[..., Awaitable[WireCsms]]]:
    started: list[WireCsms] = []

    async def start(**kwargs: Any) -> WireCsms:
        csms = await WireCsms(**kwargs).start()
        started.append(csms)
        return csms

    yield start
    for csms in started:
        await csms.stop()


def wire_service(csms: WireCsms, **extra: Any) -> dict[str, Any]:
    return {"id": "wire", "url": csms.url, "version": "1.6", **extra}


async def link_settles(proxy: Proxy, predicate: Callable[[Any], Any], timeout: float = 5) -> Any:
    """Wait until ``predicate(link)`` holds for the proxy's link to the wire CSMS."""
    await proxy.registry.changes.wait_for(lambda: "CP_1" in [h.id for h in proxy.registry], 5)
    link = proxy.hub().links["wire"]
    await proxy.registry.changes.wait_for(lambda: predicate(link), timeout)
    return link


class Booted(NamedTuple):
    """A charger booted through the proxy to a wire CSMS, and the CSMS's side of the link."""

    csms: WireCsms
    proxy: Proxy
    charger: SimulatedCharger
    connection: ServerConnection
    boot: Any  # the charger's BootNotification answer


BootOnWire = Callable[..., Awaitable[Booted]]


@pytest.fixture
def boot_on_wire(
    start_wire_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> BootOnWire:
    """``boot_on_wire(csms=dict(...), **proxy_options)``: a WireCsms with ``csms``'s options,
    a proxy with one ``ocpp_services`` entry for it and ``proxy_options``, a booted charger."""

    async def boot(csms: dict[str, Any] | None = None, **proxy_options: Any) -> Booted:
        wire = await start_wire_csms(**(csms or {}))
        proxy = await start_proxy(ocpp_services=[wire_service(wire)], **proxy_options)
        charger = await connect_charger(proxy)
        answer = await charger.boot()
        return Booted(wire, proxy, charger, await wire.next_connection(), answer)

    return boot


# -- frames ----------------------------------------------------------------------------------


async def test_a_fragmented_command_is_reassembled_and_relayed(boot_on_wire: BootOnWire) -> None:
    csms, _, charger, connection, boot = await boot_on_wire()
    assert boot.interval == 300  # answered by the wire CSMS
    call = json.dumps([2, "frag-1", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
    # RFC 6455 §5.4: a text frame without FIN, continuation frames, the last with FIN.
    await connection.send([call[:10], call[10:25], call[25:]])
    assert (await charger.wait_for_command("GetConfiguration"))["key"] == ["HeartbeatInterval"]
    answer = json.loads(await csms.wait_received(lambda t: '"frag-1"' in t))
    assert answer[0] == 3 and answer[2]["configurationKey"]


async def test_binary_frames_are_read_as_utf8_and_others_dropped_with_a_warning(
    boot_on_wire: BootOnWire, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ocpp_proxy")
    csms, proxy, charger, connection, *_ = await boot_on_wire()
    await connection.send(b"\xff\xfe not UTF-8")
    await connection.send([b'[2,"bin-1","GetConfig', b'uration",{"key":["HeartbeatInterval"]}]'])
    await charger.wait_for_command("GetConfiguration")
    await csms.wait_received(lambda t: '"bin-1"' in t)
    assert any("binary frame that is not UTF-8" in r.getMessage() for r in caplog.records)
    assert proxy.hub().links["wire"].connected


async def test_a_command_many_times_the_first_read_buffer_arrives_whole(
    boot_on_wire: BootOnWire,
) -> None:
    csms, _, charger, connection, *_ = await boot_on_wire()
    data = "".join(f"{i:07d}" for i in range(30_000))  # 210 kB, no run of equal bytes
    assert len(data) > 50 * upstream.READ_BUFFER_BYTES
    await connection.send(json.dumps([2, "big-1", "DataTransfer", {"vendorId": "v", "data": data}]))
    assert (await charger.wait_for_command("DataTransfer"))["data"] == data
    answer = json.loads(await csms.wait_received(lambda t: '"big-1"' in t))
    assert answer == [3, "big-1", {"status": "Accepted", "data": data}]


@pytest.mark.parametrize("fragments", [1, 3], ids=["one frame", "fragmented"])
async def test_a_message_over_the_limit_closes_the_link_with_1009(
    boot_on_wire: BootOnWire, fragments: int
) -> None:
    # max_frame_bytes * 4 is the largest message taken: 4096 bytes here.
    csms, proxy, _, connection, *_ = await boot_on_wire(max_frame_bytes=1024)
    text = json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 5000}])
    step = -(-len(text) // fragments)
    parts = [text[i : i + step] for i in range(0, len(text), step)]
    await connection.send(parts if fragments > 1 else text)
    await asyncio.wait_for(connection.wait_closed(), 5)
    assert (
        connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 1009
    )
    link = await link_settles(proxy, lambda link: not link.connected)
    assert link.last_error == "closed (code 1009)"
    await csms.next_connection()  # and it dials again


async def test_a_close_frame_from_the_csms_is_answered_with_its_code(
    boot_on_wire: BootOnWire,
) -> None:
    csms, proxy, _, connection, *_ = await boot_on_wire()
    await asyncio.wait_for(connection.close(4001, "maintenance"), 5)
    # RFC 6455 §5.5.1: the proxy answered with a close frame of its own, echoing the code.
    assert (
        connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 4001
    )
    link = await link_settles(proxy, lambda link: not link.connected)
    assert link.last_error == "closed (code 4001)"
    await csms.next_connection()


async def test_the_csms_pings_are_answered(boot_on_wire: BootOnWire) -> None:
    connection = (await boot_on_wire()).connection
    pong = await connection.ping(b"are you there")
    assert await asyncio.wait_for(pong, 5) >= 0  # the round trip (s)


async def test_a_csms_that_stops_answering_pings_is_dropped_and_dialled_again(
    boot_on_wire: BootOnWire,
) -> None:
    csms, proxy, _, connection, *_ = await boot_on_wire(ping_interval=0.2)
    connection.transport.pause_reading()  # it reads nothing more: no pong either
    # A ping after 0.2 s without a frame, no pong within 0.1 s: closed with 1001 (going away).
    link = await link_settles(proxy, lambda link: not link.connected)
    assert link.last_error == "closed (code 1001)"
    await csms.next_connection()  # dialled again


async def test_a_csms_that_stops_reading_is_dropped_as_stalled(
    boot_on_wire: BootOnWire, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "WRITE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(upstream, "CLOSE_TIMEOUT_S", 0.5)
    _, proxy, charger, connection, *_ = await boot_on_wire(max_frame_bytes=1_000_000)
    connection.transport.pause_reading()
    # The charger echoes each DataTransfer's data: 300 kB answers that the CSMS never reads
    # pile up in the socket until the proxy's writes to it wait, then time out.
    data = "x" * 300_000
    for n in range(60):
        await connection.send(
            json.dumps([2, f"dt-{n}", "DataTransfer", {"vendorId": "v", "data": data}])
        )
    link = await link_settles(proxy, lambda link: not link.connected, timeout=20)
    assert link.last_error == "dropped: a write took longer than 0.5 s", link.last_error
    assert (await charger.heartbeat()) is not None  # the charger is answered all along


# -- the handshake ---------------------------------------------------------------------------


async def test_a_refused_handshake_reports_the_http_status(
    start_wire_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_wire_csms(
        respond=lambda connection, _r: connection.respond(HTTPStatus.UNAUTHORIZED, "no\n")
    )
    proxy = await start_proxy(ocpp_services=[wire_service(csms, auth_type="token", token="t" * 8)])
    charger = await connect_charger(proxy)
    await charger.boot()
    link = await link_settles(proxy, lambda link: link.last_error)
    assert link.last_error == "handshake refused: HTTP 401 Unauthorized"
    assert csms.request_headers[0]["Authorization"] == "Bearer " + "t" * 8


async def test_a_subprotocol_not_offered_fails_the_connection(boot_on_wire: BootOnWire) -> None:
    csms, proxy, _, connection, *_ = await boot_on_wire(
        csms=dict(choose=lambda _offered: "ocpp2.0.1")
    )
    await asyncio.wait_for(connection.wait_closed(), 5)
    assert (
        connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 1002
    )
    link = await link_settles(proxy, lambda link: link.last_error)
    assert link.last_error == "the CSMS chose subprotocol ocpp2.0.1, not ocpp1.6"
    assert csms.request_headers[0]["Sec-WebSocket-Protocol"] == "ocpp1.6"


async def test_a_csms_choosing_no_subprotocol_is_assumed_to_speak_the_offered_one(
    start_wire_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ocpp_proxy")
    csms = await start_wire_csms(choose=lambda _offered: None)
    proxy = await start_proxy(ocpp_services=[wire_service(csms)])
    charger = await connect_charger(proxy)
    assert (await charger.boot()).interval == 300
    assert any("accepted without a subprotocol" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("same_origin", [True, False], ids=["same origin", "another origin"])
async def test_a_redirect_is_followed_with_credentials_only_to_their_origin(
    start_wire_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
    same_origin: bool,
) -> None:
    target = await start_wire_csms()

    def redirect(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/moved/"):
            return None
        response = connection.respond(HTTPStatus.FOUND, "")
        elsewhere = "" if same_origin else f"ws://127.0.0.1:{target.port}"
        response.headers["Location"] = f"{elsewhere}/moved/CP_1"
        return response

    first = await start_wire_csms(respond=redirect)
    proxy = await start_proxy(
        ocpp_services=[wire_service(first, auth_type="basic", password="pw-123456")]
    )
    charger = await connect_charger(proxy)
    assert (await charger.boot()).interval == 300
    reached = first if same_origin else target
    assert reached.paths[-1] == "/moved/CP_1"
    expected = "Basic " + base64.b64encode(b"CP_1:pw-123456").decode()
    assert first.request_headers[0]["Authorization"] == expected
    assert reached.request_headers[-1].get("Authorization") == (expected if same_origin else None)


async def test_credentials_in_the_url_are_sent_as_http_basic(
    start_wire_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_wire_csms()
    url = f"ws://station:p%40ss@127.0.0.1:{csms.port}/ocpp"
    proxy = await start_proxy(ocpp_services=[{"id": "wire", "url": url}])
    charger = await connect_charger(proxy)
    await charger.boot()
    expected = "Basic " + base64.b64encode(b"station:p@ss").decode()
    assert csms.request_headers[0]["Authorization"] == expected
    assert csms.paths == ["/ocpp/CP_1"]


async def test_a_csms_that_never_answers_the_handshake_times_out(
    start_proxy: StartProxy, connect_charger: ConnectCharger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream, "CONNECT_TIMEOUT_S", 0.3)
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(reader)  # takes the connection, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy = await start_proxy(
            ocpp_services=[{"id": "wire", "url": f"ws://127.0.0.1:{port}/ocpp"}]
        )
        charger = await connect_charger(proxy)
        await charger.boot()
        link = await link_settles(proxy, lambda link: link.last_error)
        assert link.last_error == "cannot connect: no WebSocket within 0.3 s"
        # The proxy hung up on the socket it gave up on: its request, then the end of it.
        reader = await asyncio.wait_for(accepted.get(), 5)
        request = await asyncio.wait_for(reader.read(), 5)
        assert request.startswith(b"GET /ocpp/CP_1 HTTP/1.1")
    finally:
        server.close()


# -- the order of frames, with a stand-in for the hub --------------------------------------


class RecordingLink:
    """What the upstream client talks to (the hub's ``LinkEndpoint``), recording it all.

    ``on_text`` of a frame in ``gated`` waits for ``gate``; a frame starting with ``boom``
    raises, before waiting or (``slow-boom``) after.
    """

    def __init__(self) -> None:
        self.id = "wire"
        self.last_error = ""
        self.states: list[LinkState] = []
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.peers: list[Peer] = []
        self.detached: list[str] = []
        self.gate = asyncio.Event()
        self.gated = {"slow-1", "slow-boom"}
        self.changed = asyncio.Event()

    def set_state(self, state: LinkState, error: str = "", *, opening: bool = False) -> None:
        self.states.append(state)

    async def attach(self, peer: Peer) -> None:
        self.peers.append(peer)
        self.changed.set()

    async def detach(self, reason: str, peer: Peer | None = None) -> None:
        self.detached.append(reason)
        self.changed.set()

    async def on_text(self, raw: str) -> None:
        self.started.append(raw)
        self.changed.set()
        try:
            if raw == "boom":
                raise ValueError("a bad frame")
            if raw in self.gated:
                await self.gate.wait()
            if raw == "slow-boom":
                raise ValueError("a bad frame, found late")
        except asyncio.CancelledError:
            self.cancelled.append(raw)
            raise
        self.finished.append(raw)

    async def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        async def check() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(check(), timeout)


@pytest.fixture
async def start_client() -> AsyncIterator[Callable[..., Awaitable[tuple[UpstreamClient, Any]]]]:
    clients: list[UpstreamClient] = []

    async def start(csms: WireCsms, **options: Any) -> tuple[UpstreamClient, RecordingLink]:
        config = parse_config({"ocpp_services": [wire_service(csms)], **options})
        link = RecordingLink()
        client = UpstreamClient(
            link,  # type: ignore[arg-type]
            config.ocpp_services[0],
            "CP_1",
            ping_interval=config.ping_interval,
            max_frame_bytes=config.max_frame_bytes,
        )
        client.start()
        clients.append(client)
        await link.wait(lambda: link.peers)
        return client, link

    yield start
    for client in clients:
        await client.stop()


async def everything_read(connection: ServerConnection) -> None:
    """Once the client answered a ping sent after them, it has read every frame before it."""
    await asyncio.wait_for(await connection.ping(), 5)


async def test_frames_reach_the_hub_in_order_when_one_waits(
    start_wire_csms: Any, start_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    csms = await start_wire_csms(answer_calls=False)
    client, link = await start_client(csms)
    connection = await csms.next_connection()
    for text in ("1", "slow-1", "2", "boom", "3", "slow-boom", "4"):
        await connection.send(text)
    await everything_read(connection)
    # "slow-1" waits: the frames behind it have arrived, and wait too.
    assert link.started == ["1", "slow-1"]
    link.gate.set()
    await link.wait(lambda: link.started[-1:] == ["4"] and "4" in link.finished)
    assert link.started == ["1", "slow-1", "2", "boom", "3", "slow-boom", "4"]
    assert link.finished == ["1", "slow-1", "2", "3", "4"]
    # A frame that raised, at once or after waiting, is logged; the link stays up.
    errors = [r.getMessage() for r in caplog.records if "error while relaying" in r.getMessage()]
    assert errors == [
        "wire: error while relaying a frame: boom",
        "wire: error while relaying a frame: slow-boom",
    ]
    assert link.detached == []
    # Once nothing waits, frames are handled in the read callback again, one by one.
    await connection.send("5")
    await link.wait(lambda: "5" in link.finished)
    await client.stop()
    assert link.detached == ["closed (code 1000)"]
    await asyncio.wait_for(connection.wait_closed(), 5)
    assert (
        connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 1000
    )


async def test_frames_that_arrive_before_the_hub_attached_wait_for_it(
    start_wire_csms: Any, start_client: Any
) -> None:
    csms = await start_wire_csms(answer_calls=False)

    class SlowAttach(RecordingLink):
        async def attach(self, peer: Peer) -> None:
            await self.gate.wait()
            await super().attach(peer)

    config = parse_config({"ocpp_services": [wire_service(csms)]})
    link = SlowAttach()
    link.gated = set()
    client = UpstreamClient(
        link,  # type: ignore[arg-type]
        config.ocpp_services[0],
        "CP_1",
        ping_interval=config.ping_interval,
        max_frame_bytes=config.max_frame_bytes,
    )
    client.start()
    try:
        connection = await csms.next_connection()
        await connection.send("1")
        await connection.send("2")
        await everything_read(connection)
        assert link.started == []  # the hub is not attached yet
        link.gate.set()
        await link.wait(lambda: link.finished == ["1", "2"])
    finally:
        await client.stop()


async def test_stop_cancels_a_frame_that_waits(start_wire_csms: Any, start_client: Any) -> None:
    csms = await start_wire_csms(answer_calls=False)
    client, link = await start_client(csms)
    connection = await csms.next_connection()
    await connection.send("slow-1")
    await connection.send("2")
    await link.wait(lambda: link.started == ["slow-1"])
    await client.stop()
    # The waiting frame's handler saw the cancellation where it waited; the one behind it
    # never started; the link was detached once.
    assert link.cancelled == ["slow-1"]
    assert link.started == ["slow-1"]
    assert link.detached == ["closed (code 1000)"]


async def test_writes_go_out_at_once_and_fail_once_closed(
    start_wire_csms: Any, start_client: Any
) -> None:
    csms = await start_wire_csms(answer_calls=False)
    _client, link = await start_client(csms)
    connection = await csms.next_connection()
    peer = link.peers[0]
    write = peer.send_str('[2,"w-1","Heartbeat",{}]')
    with pytest.raises(StopIteration):  # finished in the call: the socket took the frame
        write.send(None)
    await csms.wait_received(lambda t: '"w-1"' in t)
    assert await peer.close() is True
    assert await peer.close() is False  # closed already
    with pytest.raises(ConnectionResetError):
        await peer.send_str('[2,"w-2","Heartbeat",{}]')
    await link.wait(lambda: link.detached)
    assert link.detached == ["closed (code 1000)"]
    assert (
        connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 1000
    )
