"""Real OCPP peers for the tests: a CSMS built on the ``ocpp`` library, served by ``websockets``.

Neither the WebSocket stack (``websockets``) nor the OCPP stack (``ocpp``) is the proxy's own,
so the tests exercise the proxy against independent implementations.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp import v21
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import AuthorizationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import ServerConnection, serve


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Received:
    """One frame a CSMS peer received from the charge point it serves."""

    charge_point_id: str
    message_type: int
    unique_id: str
    action: str | None
    payload: Any
    raw: str


class _Recorder:
    """Mixin for the ocpp library's ChargePoint on the CSMS side.

    The :class:`Csms` records every raw frame before the library routes it; the peer itself
    keeps each CALL it handled (``action``, camelCase payload as received) once it answered it.
    ``boot_status`` is the BootNotification answer; id tags in ``reject_id_tags`` are Invalid.
    """

    csms: Csms

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled: list[tuple[str, dict[str, Any]]] = []
        self.reject_id_tags: set[str] = set()
        self.boot_status = "Accepted"
        self._consumed: set[int] = set()
        self._handled_changed = asyncio.Condition()

    async def route_message(self, raw_msg: str) -> None:
        self.csms.record(self.id, raw_msg)  # type: ignore[attr-defined]
        gate = self.csms.gate
        if gate is not None:
            await gate.wait()
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def _handle_call(self, msg: Any) -> Any:
        payload = msg.payload
        try:
            return await super()._handle_call(msg)  # type: ignore[misc]
        finally:
            async with self._handled_changed:
                self.handled.append((msg.action, payload))
                self._handled_changed.notify_all()

    def actions(self) -> list[str]:
        """The actions of the CALLs handled, in order."""
        return [action for action, _payload in self.handled]

    def payloads(self, action: str) -> list[dict[str, Any]]:
        """The payloads of the CALLs of ``action`` handled, in order."""
        return [payload for name, payload in self.handled if name == action]

    async def wait_for(self, action: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first CALL ``action`` handled that no earlier wait took (waits for it)."""

        def first() -> int | None:
            return next(
                (
                    i
                    for i, (name, _p) in enumerate(self.handled)
                    if name == action and i not in self._consumed
                ),
                None,
            )

        async with self._handled_changed:
            await asyncio.wait_for(
                self._handled_changed.wait_for(lambda: first() is not None), timeout
            )
            index = first()
            assert index is not None
            self._consumed.add(index)
            return self.handled[index][1]


class Csms16(_Recorder, ChargePoint16):
    """An OCPP 1.6 central system that accepts everything and assigns its own transaction ids."""

    @on("BootNotification")
    def on_boot(self, **_: Any) -> result16.BootNotification:
        return result16.BootNotification(
            current_time=now_iso(), interval=self.csms.heartbeat_interval, status=self.boot_status
        )

    @on("Heartbeat")
    def on_heartbeat(self) -> result16.Heartbeat:
        return result16.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> result16.StatusNotification:
        return result16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str, **_: Any) -> result16.Authorize:
        status = "Invalid" if id_tag in self.reject_id_tags else AuthorizationStatus.accepted
        return result16.Authorize(id_tag_info={"status": status})

    @on("StartTransaction")
    def on_start(self, **_: Any) -> result16.StartTransaction:
        transaction_id = self.csms.next_transaction_id()
        return result16.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> result16.MeterValues:
        return result16.MeterValues()

    @on("StopTransaction")
    def on_stop(self, **_: Any) -> result16.StopTransaction:
        return result16.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> result16.DataTransfer:
        return result16.DataTransfer(status="Accepted")

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status(self, **_: Any) -> result16.DiagnosticsStatusNotification:
        return result16.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status(self, **_: Any) -> result16.FirmwareStatusNotification:
        return result16.FirmwareStatusNotification()


class Csms201(_Recorder, ChargePoint201):
    """An OCPP 2.0.1 CSMS that accepts everything."""

    @on("BootNotification")
    def on_boot(self, **_: Any) -> result201.BootNotification:
        return self._call_result.BootNotification(
            current_time=now_iso(), interval=self.csms.heartbeat_interval, status=self.boot_status
        )

    @on("Heartbeat")
    def on_heartbeat(self) -> result201.Heartbeat:
        return self._call_result.Heartbeat(current_time=now_iso())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> result201.StatusNotification:
        return self._call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> result201.Authorize:
        status = "Invalid" if id_token["id_token"] in self.reject_id_tags else "Accepted"
        return self._call_result.Authorize(id_token_info={"status": status})

    @on("TransactionEvent")
    def on_transaction_event(self, **kwargs: Any) -> result201.TransactionEvent:
        if "id_token" in kwargs:
            return self._call_result.TransactionEvent(id_token_info={"status": "Accepted"})
        return self._call_result.TransactionEvent()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> result201.MeterValues:
        return self._call_result.MeterValues()


class Csms21(Csms201):
    """An OCPP 2.1 CSMS: the 2.0.1 handlers, validated against the 2.1 schemas."""

    _call = v21.call
    _call_result = v21.call_result
    _ocpp_version = "2.1"


#: The CSMS peer of each OCPP version.
CSMS_PEERS: dict[str, type[_Recorder]] = {"1.6": Csms16, "2.0.1": Csms201, "2.1": Csms21}


class Csms:
    """A CSMS peer on 127.0.0.1: serves charge points, records what they send.

    ``gate``: when set to an unset ``asyncio.Event``, the CSMS holds every frame until the
    event is set (a CSMS that is slow to answer). ``peer_class`` replaces the version's peer
    (a test's CSMS with other answers); ``accept_without_subprotocol`` accepts a charge point
    that offers no subprotocol (to observe it). Use it started (:meth:`start`) or as an async
    context manager.
    """

    def __init__(
        self,
        name: str,
        version: str = "1.6",
        *,
        first_transaction_id: int = 1,
        heartbeat_interval: int = 300,
        ssl_context: ssl.SSLContext | None = None,
        peer_class: type[_Recorder] | None = None,
        accept_without_subprotocol: bool = False,
    ) -> None:
        self.name = name
        self.peer_class = peer_class or CSMS_PEERS[version]
        self.accept_without_subprotocol = accept_without_subprotocol
        self.offered: list[str | None] = []  # Sec-WebSocket-Protocol of each connection
        self.negotiated: list[str | None] = []
        self._peers: asyncio.Queue[Any] = asyncio.Queue()
        self.ssl_context = ssl_context  # serve wss:// with it
        self.heartbeat_interval = heartbeat_interval
        self.version = version
        self.received: list[Received] = []
        self.connections: dict[str, Any] = {}
        self.paths: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self.connects = 0
        self.gate: asyncio.Event | None = None
        self.port = 0
        self._next_transaction_id = first_transaction_id
        self._assigned: list[int] = []
        self._server: Any = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        """The URL a proxy service entry points at (the charge point id is appended)."""
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{self.port}/ocpp"

    @property
    def assigned_transaction_ids(self) -> list[int]:
        return list(self._assigned)

    def next_transaction_id(self) -> int:
        transaction_id = self._next_transaction_id
        self._next_transaction_id += 1
        self._assigned.append(transaction_id)
        return transaction_id

    def record(self, charge_point_id: str, raw: str) -> None:
        message = json.loads(raw)
        action = message[2] if message[0] == 2 else None
        payload = message[3] if message[0] == 2 else message[2]
        self.received.append(
            Received(charge_point_id, message[0], message[1], action, payload, raw)
        )
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def calls(self, action: str | None = None) -> list[Received]:
        """The CALLs received, optionally of one action, in order."""
        return [r for r in self.received if r.message_type == 2 and action in (None, r.action)]

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every frame and connection)."""

        async def check() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(check(), timeout)

    async def wait_for_call(
        self, action: str, count: int = 1, timeout: float = 5.0
    ) -> list[Received]:
        """Wait until ``count`` CALLs of ``action`` arrived; return them all."""
        return await self.wait_until(
            lambda: (c := self.calls(action)) and len(c) >= count and c, timeout
        )

    async def wait_connected(self, charge_point_id: str, timeout: float = 5.0) -> Any:
        return await self.wait_until(lambda: self.connections.get(charge_point_id), timeout)

    async def _handle(self, connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else "/"
        charge_point_id = path.rstrip("/").rsplit("/", 1)[-1]
        self.paths.append(path)
        headers = connection.request.headers if connection.request else {}
        self.request_headers.append({k.lower(): v for k, v in headers.items()})
        self.offered.append(headers.get("Sec-WebSocket-Protocol"))
        self.negotiated.append(connection.subprotocol)
        charge_point = self.peer_class(charge_point_id, connection, response_timeout=5)
        charge_point.csms = self
        self.connections[charge_point_id] = charge_point
        self._peers.put_nowait(charge_point)
        self.connects += 1
        await self._notify()
        try:
            await charge_point.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.connections.get(charge_point_id) is charge_point:
                del self.connections[charge_point_id]
            await self._notify()

    async def start(self) -> Csms:
        """Start serving (on the same port as before, after a :meth:`stop`)."""
        lenient = {"select_subprotocol": self._select} if self.accept_without_subprotocol else {}
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self.port,
            subprotocols=[f"ocpp{self.version}"],
            ssl=self.ssl_context,
            **lenient,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _select(self, connection: ServerConnection, offered: Sequence[str]) -> str | None:
        subprotocol = f"ocpp{self.version}"
        return subprotocol if subprotocol in offered else None

    async def next_peer(self, timeout: float = 5.0) -> Any:
        """The CSMS-side peer of the next charge point that connects (waits for it)."""
        return await asyncio.wait_for(self._peers.get(), timeout)

    async def __aenter__(self) -> Csms:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop serving and close every connection (a CSMS going down)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def call(self, charge_point_id: str, payload: Any, timeout: float = 5.0) -> Any:
        """Send a command to the charge point through whatever connected as it."""
        charge_point = await self.wait_connected(charge_point_id, timeout)
        return await charge_point.call(payload, suppress=False)
