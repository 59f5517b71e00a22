"""One backend (a CSMS) as the relay sees it: its link state and its delivery queue.

To a backend the proxy is the charger, so the rule of one outstanding CALL per direction
(OCPP-J 1.6 §4.1.1; OCPP 2.0.1 part 4 §4.1.1) holds on every backend link on its own: the
charger's CALLs wait in this link's queue and go out one at a time, each after the backend
answered the previous one. A slow backend thus never delays another, and a 1.6 MeterValues
never reaches a backend before that backend answered the StartTransaction it belongs to.

Transaction-related messages stay queued while the backend is away and are delivered when it
is back; other messages are only offered to a backend that is connected or connecting.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.protocol.frames import (
    CALL,
    CALLRESULTERROR,
    SEND,
    UNANSWERED_TYPES,
    Frame,
    FrameError,
    build_call_error,
    parse_frame,
    with_unique_id,
)
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.tasks import spawn

if TYPE_CHECKING:
    from ocpp_proxy.relay.hub import PendingCall

_LOGGER = logging.getLogger(__name__)


class LinkState(StrEnum):
    """State of a backend link, as ``/status`` shows it."""

    IDLE = "idle"  # no charger connected, so no upstream link is wanted
    CONNECTING = "connecting"  # dialling, or waiting to dial again after a failure
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # an inbound backend that is not connected now
    REFUSED = "refused"  # will not be connected (e.g. it speaks another OCPP version)


class Direction(StrEnum):
    """Who opens the WebSocket: the proxy (``outbound``) or the backend (``inbound``)."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class Peer(Protocol):
    """The WebSocket of a connected peer (aiohttp's client and server sockets both fit)."""

    async def send_str(self, data: str) -> None:
        """Send one text frame."""
        ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool:
        """Close the WebSocket."""
        ...


@dataclass(slots=True, eq=False)
class Delivery:
    """A charger CALL on its way to one backend.

    ``transactional`` deliveries are kept until the backend answers them; ``pending`` is the
    charger-side call this delivery's answer may answer (None for replays);
    ``transaction_id`` is the charger-side 1.6 transaction id the frame refers to;
    ``outbox_id`` the row that keeps it in the store until the backend answers.
    """

    frame: Frame
    transactional: bool
    pending: PendingCall | None = None
    transaction_id: int | None = None
    replay: bool = False
    outbox_id: int | None = None
    enqueued_at: float = field(default_factory=time.monotonic)
    attempts: int = 0
    deadline: float = 0.0  # monotonic time by which the backend must answer (s)
    answered: bool = False
    dropped: bool = False


class LinkOwner(Protocol):
    """What a backend link needs from the charger's hub."""

    async def on_backend_call(self, link: BackendLink, frame: Frame) -> None:
        """A CALL from the backend, meant for the charger."""
        ...

    async def on_backend_send(self, link: BackendLink, frame: Frame) -> None:
        """An OCPP 2.1 SEND from the backend, meant for the charger (never answered)."""
        ...

    async def on_backend_answer(self, link: BackendLink, delivery: Delivery, frame: Frame) -> None:
        """The backend answered ``delivery`` with a CALLRESULT or CALLERROR."""
        ...

    def render(self, link: BackendLink, delivery: Delivery) -> str | None:
        """The text to send to ``link`` for ``delivery``, or None to skip it for this link."""
        ...

    def replay_for(self, link: BackendLink) -> list[Delivery]:
        """What a charger would send on reconnecting, for a link that just came up."""
        ...

    def on_delivery_dropped(self, link: BackendLink, delivery: Delivery) -> None:
        """The link gave up on a delivery without an answer (queue full, nothing to send)."""
        ...

    def log_frame(
        self,
        peer: str,
        direction: str,
        raw: str,
        head: tuple[int, str, str | None] | None = None,
    ) -> None:
        """A frame passed between the proxy and a backend (``in`` or ``out``).

        ``head`` is (message type, unique id, action) if the frame was parsed already.
        """
        ...

    def on_link_down(self, link: BackendLink) -> None:
        """The link's connection is gone."""
        ...

    def limit_hit(self, limit: str) -> None:
        """A frame from the link was refused by a limit (``max_frame_bytes``), for metrics."""
        ...


class BackendLink:
    """A backend's link state and the queue of charger CALLs waiting for it.

    Args:
        backend_id: the backend's config id.
        direction: whether the proxy dials it or it dials in.
        owner: the charger hub the link belongs to.
        response_timeout: seconds to wait for the backend's answer to one CALL (s).
        version: the OCPP version spoken on this link.
        max_frame_bytes: longest frame accepted from the backend (bytes).
        max_queue: the most deliveries kept; past it the oldest MeterValues are dropped first.
    """

    def __init__(
        self,
        backend_id: str,
        direction: Direction,
        owner: LinkOwner,
        *,
        response_timeout: float,
        version: OcppVersion,
        max_frame_bytes: int,
        max_queue: int = 100_000,
        on_change: Callable[[BackendLink], None] | None = None,
    ) -> None:
        self.id = backend_id
        self.direction = direction
        self.owner = owner
        self.response_timeout = response_timeout
        self.max_queue = max_queue
        self.version = version
        self.max_frame_bytes = max_frame_bytes
        self.state = LinkState.IDLE if direction is Direction.OUTBOUND else LinkState.DISCONNECTED
        self.opening = False  # first connection attempt since the charger came, in progress
        self.last_error = ""
        self.last_message_at: float | None = None
        self.connected_since: float | None = None
        self.dropped = 0
        self._on_change = on_change
        self._peer: Peer | None = None
        self._queue: deque[Delivery] = deque()
        self._in_flight: Delivery | None = None
        self._attempt_ids: dict[str, Delivery] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- state -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the backend's WebSocket is open."""
        return self._peer is not None

    @property
    def queue_depth(self) -> int:
        """How many charger CALLs wait for this backend (the one in flight included)."""
        return len(self._queue)

    def set_state(self, state: LinkState, error: str = "", *, opening: bool = False) -> None:
        """Record a state change that does not attach or detach a peer.

        ``opening`` marks the first connection attempt since the charger came: charger CALLs
        wait for such a link. When that attempt fails, calls waiting for it are re-routed.
        """
        was_opening = self.opening
        self.state = state
        self.opening = opening
        if error:
            self.last_error = error
        if self._peer is None and not opening:
            self._purge_untransactional()
        if was_opening and not opening and self._peer is None:
            self.owner.on_link_down(self)
        self._changed()

    async def attach(self, peer: Peer) -> None:
        """The backend's WebSocket is open: replay the charger's state, then send the queue."""
        if self._peer is not None:
            await self.detach("replaced by a new connection")
        self._peer = peer
        self.state = LinkState.CONNECTED
        self.opening = False
        self.last_error = ""
        self.connected_since = time.time()
        queued_actions = {(d.frame.action, _connector_key(d.frame)) for d in self._queue}
        replay = [
            d
            for d in self.owner.replay_for(self)
            if (d.frame.action, _connector_key(d.frame)) not in queued_actions
        ]
        self._queue.extendleft(reversed(replay))
        self._changed()
        await self._pump()

    async def detach(self, reason: str, peer: Peer | None = None) -> None:
        """The backend's WebSocket is gone (closed by either side, or replaced).

        With ``peer`` given, only that connection is detached: a connection that was already
        replaced by a newer one leaves the newer one alone.
        """
        if peer is not None and peer is not self._peer:
            return
        peer, self._peer = self._peer, None
        if peer is None:
            return
        self._cancel_timer()
        self._in_flight = None
        self._attempt_ids.clear()
        self.state = (
            LinkState.CONNECTING if self.direction is Direction.OUTBOUND else LinkState.DISCONNECTED
        )
        self.last_error = reason
        self.connected_since = None
        self._purge_untransactional()
        self.owner.on_link_down(self)
        self._changed()
        await peer.close()

    # -- charger -> backend ------------------------------------------------------------

    def wants(self, transactional: bool) -> bool:
        """Whether a new charger CALL should be queued for this backend.

        Transaction messages are kept for every backend that is not refused, connected or
        not: that is the outbox (OCPP 1.6 §4.9 asks the same of a charger).
        """
        if self.state is LinkState.REFUSED:
            return False
        if transactional:
            return True
        # Other messages only while the link is up or opening for the first time: a link
        # that comes up later gets the charger's state replayed instead.
        return self._peer is not None or self.opening

    def restore(self, delivery: Delivery) -> None:
        """Queue a delivery kept from before a restart (sent when the link is up)."""
        self._queue.append(delivery)
        self._idle.clear()

    async def offer(self, delivery: Delivery) -> None:
        """Queue a charger CALL for this backend and send it if the link is free."""
        self._queue.append(delivery)
        if len(self._queue) > self.max_queue:
            self._shed()
        self._idle.clear()
        if self._in_flight is None and self._peer is not None:
            await self._pump()

    async def drained(self, within_s: float) -> bool:
        """Wait until nothing is in flight or deliverable, at most ``within_s`` s."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            return False
        return True

    async def _pump(self) -> None:
        # Sends the head of the queue if nothing is in flight. Called from several tasks:
        # ``_in_flight`` is set before the await so that only one of them sends.
        now = time.monotonic()
        while self._peer is not None and self._in_flight is None and self._queue:
            delivery = self._queue[0]
            if not delivery.transactional and now - delivery.enqueued_at > self.response_timeout:
                self._queue.popleft()  # stale: the charger got its answer long ago
                continue
            text = self.owner.render(self, delivery)
            if text is None:
                self._queue.popleft()
                self.owner.on_delivery_dropped(self, delivery)
                continue
            if delivery.attempts or delivery.replay:
                unique_id = str(uuid.uuid4())
                text = with_unique_id(text, unique_id)
            else:
                unique_id = delivery.frame.unique_id
            delivery.attempts += 1
            loop = asyncio.get_running_loop()
            delivery.deadline = loop.time() + self.response_timeout
            self._in_flight = delivery
            self._attempt_ids[unique_id] = delivery
            if self._timer is None:
                # One lazy timer per link, re-armed only when it fires: arming and cancelling
                # a timer for every frame would churn the event loop's heap.
                self._timer = loop.call_at(delivery.deadline, self._on_deadline)
            await self._send(text)
            return
        if self._in_flight is None and (not self._queue or self._peer is None):
            self._idle.set()

    def _on_deadline(self) -> None:
        self._timer = None
        delivery = self._in_flight
        if delivery is None or delivery.answered:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < delivery.deadline:
            self._timer = loop.call_at(delivery.deadline, self._on_deadline)
            return
        self._in_flight = None
        action = delivery.frame.action
        if delivery.transactional:
            # Kept at the head and sent again; an answer to an earlier attempt still counts.
            _LOGGER.warning(
                "%s did not answer %s within %ss; sending it again",
                self.id,
                action,
                self.response_timeout,
            )
        else:
            _LOGGER.info("%s did not answer %s within %ss", self.id, action, self.response_timeout)
            self._queue.popleft()
            self._attempt_ids.clear()
        spawn(self._pump())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _purge_untransactional(self) -> None:
        if any(not d.transactional for d in self._queue):
            self._queue = deque(d for d in self._queue if d.transactional)
        if not self._queue:
            self._idle.set()

    def _shed(self) -> None:
        # Over the bound: drop the oldest MeterValues, then the oldest message that is neither
        # a start nor a stop. Starts and stops are never dropped.
        for keep_order in ("MeterValues", None):
            for index, delivery in enumerate(self._queue):
                if delivery is self._in_flight:
                    continue
                action = delivery.frame.action
                if (keep_order is None and action not in _NEVER_DROP) or action == keep_order:
                    del self._queue[index]
                    self.owner.on_delivery_dropped(self, delivery)
                    self.dropped += 1
                    _LOGGER.warning("%s: queue full, dropped a queued %s", self.id, action)
                    return

    # -- backend -> proxy --------------------------------------------------------------

    async def on_text(self, raw: str) -> None:
        """Handle one text frame from the backend (OCPP-J 1.6 §4)."""
        self.last_message_at = time.time()
        try:
            frame = parse_frame(
                raw, self.max_frame_bytes, self.version.facts.message_types, unique_keys=True
            )
        except FrameError as err:
            self.owner.log_frame(self.id, "in", raw)
            await self._reject(err, raw)
            return
        kind = frame.message_type
        self.owner.log_frame(self.id, "in", raw, (kind, frame.unique_id, frame.action))
        if kind == CALL:
            await self.owner.on_backend_call(self, frame)
            return
        if kind == SEND:
            await self.owner.on_backend_send(self, frame)
            return
        if kind == CALLRESULTERROR:
            _LOGGER.warning("%s reports a bad CALLRESULT: %s", self.id, frame.error)
            return
        delivery = self._attempt_ids.get(frame.unique_id)
        if delivery is None:
            _LOGGER.info("%s answered unknown unique id %s; dropped", self.id, frame.unique_id)
            return
        if self._queue and self._queue[0] is delivery:
            # Held as in flight while the answer is written down, so that neither the timer
            # nor another task sends anything meanwhile, and /status counts it until it is.
            self._in_flight = delivery
            delivery.answered = True
            self._attempt_ids.clear()
            try:
                await self.owner.on_backend_answer(self, delivery, frame)
            finally:
                if self._queue and self._queue[0] is delivery:
                    self._queue.popleft()
                self._in_flight = None
        else:
            await self.owner.on_backend_answer(self, delivery, frame)
        await self._pump()

    async def _reject(self, err: FrameError, raw: str) -> None:
        _LOGGER.warning("%s sent a malformed frame (%s): %.200s", self.id, err.reason, raw)
        if err.limit is not None:
            self.owner.limit_hit(err.limit)
        if err.unique_id is not None and (
            err.unknown_type or err.message_type not in UNANSWERED_TYPES
        ):
            code = self.version.facts.malformed_code(err.unknown_type)
            await self.send(build_call_error(err.unique_id, code, err.reason))

    async def send(self, text: str) -> bool:
        """Send a frame to the backend if it is connected; return whether it was sent."""
        if self._peer is None:
            return False
        return await self._send(text)

    async def _send(self, text: str) -> bool:
        peer = self._peer
        if peer is None:
            return False
        self.owner.log_frame(self.id, "out", text)
        try:
            await peer.send_str(text)
        except (ConnectionError, RuntimeError) as err:
            # The socket closed under us; the reader notices and detaches the link.
            _LOGGER.info("%s: send failed: %s", self.id, err)
            return False
        return True

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    def snapshot(self) -> dict[str, Any]:
        """Return the link as ``/status`` shows it."""
        return {
            "id": self.id,
            "direction": self.direction.value,
            "state": self.state.value,
            "last_error": self.last_error,
            "connected_since": iso_utc(self.connected_since),
            "last_message_at": iso_utc(self.last_message_at),
            "queue_depth": self.queue_depth,
            "dropped": self.dropped,
        }


_NEVER_DROP = frozenset({"StartTransaction", "StopTransaction", "TransactionEvent"})


def _connector_key(frame: Frame) -> Any:
    """Which connector a StatusNotification is about (so one per connector is replayed)."""
    payload = frame.payload or {}
    return (payload.get("evseId"), payload.get("connectorId"))
