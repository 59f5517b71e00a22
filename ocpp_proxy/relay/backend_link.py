"""One backend (a CSMS) as the relay sees it: its link state and its bounded delivery queue.

To a backend the proxy is the charger, so the rule of one outstanding CALL per direction
(OCPP-J 1.6 §4.1.1; OCPP 2.0.1 part 4 §4.1.1) holds on every backend link on its own: the
charger's CALLs wait in this link's queue and go out one at a time, each after the backend
answered the previous one. A slow backend thus never delays another, and a 1.6 MeterValues
never reaches a backend before that backend answered the StartTransaction it belongs to.

A link knows nothing of the hub: the hub puts deliveries in, takes the next one out to send
(:meth:`BackendLink.next_to_send`), and hands it the backend's answers. The one call back is
``on_ready``: the link can send again after a deadline or a backoff passed.

Retries, as a charger does them (OCPP 1.6 TransactionMessageAttempts / RetryInterval): a
transaction message the backend does not answer on a live connection is never sent again on
that connection; after the link is re-established it is sent again, at most ``max_attempts``
times in all, waiting ``retry_interval_s`` times the attempts made so far minus one first.

The queue is bounded by construction: past ``max_queue`` deliveries the oldest message that
is not kept goes first, then the oldest reading (1.6 MeterValues, 2.x TransactionEvent
Updated), and failing both the oldest queued message of any kind (counted and logged as an
ERROR): each in O(1) amortized.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ocpp_proxy.clock import Clock, Timer, iso_utc
from ocpp_proxy.protocol.frames import Frame, with_unique_id
from ocpp_proxy.protocol.messages import Keep, MessageRule, state_key
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.sender import PeerSender

if TYPE_CHECKING:
    from ocpp_proxy.relay.pending import PendingCall

_LOGGER = logging.getLogger(__name__)

#: Sends of one transaction message in all, across reconnects (TransactionMessageAttempts).
MAX_ATTEMPTS = 5
#: Wait before a resend after a reconnect, per earlier resend (TransactionMessageRetryInterval, s).
RETRY_INTERVAL_S = 10.0


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


@dataclass(slots=True, eq=False)
class Delivery:
    """A charger CALL on its way to one backend.

    ``rule`` says whether it is kept (a transaction message) and whether it is shed first;
    ``pending`` is the charger-side call this delivery's answer may answer (None for replays
    and restored messages); ``transaction_id`` is the charger-side 1.6 transaction id the
    frame refers to; ``outbox_id`` the row that keeps it in the store until the backend
    answers. Times are the clock's monotonic seconds.
    """

    frame: Frame
    rule: MessageRule
    pending: PendingCall | None = None
    transaction_id: int | None = None
    replay: bool = False
    outbox_id: int | None = None
    enqueued_at: float = 0.0
    attempts: int = 0
    deadline: float = 0.0
    not_before: float = 0.0
    overdue: bool = False
    answered: bool = False
    dropped: bool = False

    @property
    def kept(self) -> bool:
        """Whether the backend must get it even if it is down now (a transaction message)."""
        return self.rule.keep is Keep.TRANSACTION

    @property
    def live(self) -> bool:
        """Still to be delivered (neither answered nor dropped)."""
        return not (self.answered or self.dropped)


class BackendLink:
    """A backend's link state and the queue of charger CALLs waiting for it.

    Args:
        backend_id: the backend's config id.
        direction: whether the proxy dials it or it dials in.
        version: the OCPP version spoken on this link.
        clock: deadlines and backoff.
        response_timeout: seconds to wait for the backend's answer to one CALL (s).
        max_queue: the most deliveries kept (see the module docstring for what goes first).
        max_attempts: sends of one transaction message in all, across reconnects.
        retry_interval_s: backoff step before a resend after a reconnect (s).
        on_ready: called when the link may send again (a deadline or a backoff passed).
        on_change: called when something ``/status`` shows has changed.
    """

    def __init__(
        self,
        backend_id: str,
        direction: Direction,
        *,
        version: OcppVersion,
        clock: Clock,
        response_timeout: float,
        max_queue: int = 100_000,
        max_attempts: int = MAX_ATTEMPTS,
        retry_interval_s: float = RETRY_INTERVAL_S,
        on_ready: Callable[[BackendLink], None] | None = None,
        on_change: Callable[[BackendLink], None] | None = None,
    ) -> None:
        self.id = backend_id
        self.direction = direction
        self.version = version
        self.response_timeout = response_timeout
        self.max_queue = max_queue
        self.max_attempts = max_attempts
        self.retry_interval_s = retry_interval_s
        self.state = LinkState.IDLE if direction is Direction.OUTBOUND else LinkState.DISCONNECTED
        self.opening = False  # first connection attempt since the charger came, in progress
        self.last_error = ""
        self.last_message_at: float | None = None
        self.connected_since: float | None = None
        self.dropped = 0  # deliveries shed because the queue was over its bound
        self.given_up = 0  # transaction messages dropped after max_attempts sends
        self.sender: PeerSender | None = None
        self._clock = clock
        self._on_ready = on_ready
        self._on_change = on_change
        self._queue: deque[Delivery] = deque()  # answered/dropped ones are skipped, then purged
        self._sheddable: deque[Delivery] = deque()  # not kept, or readings: shed first
        self._live = 0
        self._in_flight: Delivery | None = None
        self._in_flight_id: str | None = None
        self._timer: Timer | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- state -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the backend's WebSocket is open."""
        return self.sender is not None

    @property
    def queue_depth(self) -> int:
        """How many charger CALLs wait for this backend (the one in flight included)."""
        return self._live

    @property
    def in_flight(self) -> Delivery | None:
        """The delivery sent and not answered yet, if any."""
        return self._in_flight

    def set_state(self, state: LinkState, error: str = "", *, opening: bool = False) -> bool:
        """Record a state change that does not attach or detach a peer.

        ``opening`` marks the first connection attempt since the charger came: charger CALLs
        wait for such a link. Returns True when that attempt just failed (calls waiting for
        the link must be answered by someone else).
        """
        was_opening = self.opening
        self.state = state
        self.opening = opening
        if error:
            self.last_error = error
        if self.sender is None and not opening:
            self._drop_unkept()
        self._changed()
        return was_opening and not opening and self.sender is None

    def attach(self, sender: PeerSender, replay: list[Delivery]) -> list[Delivery]:
        """The backend's WebSocket is open; ``replay`` goes before the queue.

        ``replay`` is what a charger would send on reconnecting (boot, statuses); one of a
        kind that is queued already is left out. Returns the deliveries given up on because
        they were sent ``max_attempts`` times already (their rows are to be forgotten).
        """
        self.sender = sender
        self.state = LinkState.CONNECTED
        self.opening = False
        self.last_error = ""
        self.connected_since = self._clock.time()
        queued = {
            state_key(d.frame.action or "", d.frame.payload or {}) for d in self._queue if d.live
        }
        for delivery in reversed(replay):
            if state_key(delivery.frame.action or "", delivery.frame.payload or {}) in queued:
                continue
            delivery.enqueued_at = self._clock.monotonic()
            self._queue.appendleft(delivery)
            self._live += 1
        given_up = self._settle_head_retries()
        self._changed()
        return given_up

    def detach(self, reason: str) -> PeerSender | None:
        """The backend's WebSocket is gone: return its sender (to close), or None if none."""
        sender, self.sender = self.sender, None
        if sender is None:
            return None
        self._cancel_timer()
        self._in_flight = None
        self._in_flight_id = None
        self.state = (
            LinkState.CONNECTING if self.direction is Direction.OUTBOUND else LinkState.DISCONNECTED
        )
        self.last_error = reason
        self.connected_since = None
        self._drop_unkept()
        self._changed()
        return sender

    # -- charger -> backend ------------------------------------------------------------

    def wants(self, rule: MessageRule) -> bool:
        """Whether a new charger CALL should be queued for this backend.

        Transaction messages are kept for every backend that is not refused, up or not: that
        is the outbox (OCPP 1.6 §4.9 asks the same of a charger). Others only while the link
        is up or opening for the first time: a link that comes up later gets the charger's
        state replayed instead.
        """
        if self.state is LinkState.REFUSED:
            return False
        return rule.keep is Keep.TRANSACTION or self.sender is not None or self.opening

    def add(self, delivery: Delivery) -> list[Delivery]:
        """Queue ``delivery``; return what was shed to keep the bound (at most one)."""
        delivery.enqueued_at = self._clock.monotonic()
        self._queue.append(delivery)
        self._live += 1
        if not delivery.kept or delivery.rule.shed_first:
            self._sheddable.append(delivery)
            if len(self._sheddable) > 2 * self._live + 16:
                self._compact()
        self._idle.clear()
        if self._live <= self.max_queue:
            return []
        shed = self._shed()
        return [shed] if shed is not None else []

    def next_to_send(self) -> Delivery | None:
        """The delivery to send now, or None (nothing, busy, down, or a backoff running).

        Skips what was answered or dropped, and drops a message that is not kept and waited
        longer than ``response_timeout`` (the charger got its answer long ago).
        """
        if self.sender is None or self._in_flight is not None:
            self._update_idle()
            return None
        queue = self._queue
        now = self._clock.monotonic() if queue else 0.0
        while queue:
            delivery = queue[0]
            if not delivery.live:
                queue.popleft()
                continue
            if now - delivery.enqueued_at > self.response_timeout and not delivery.kept:
                queue.popleft()
                self._forget(delivery)
                continue
            if delivery.not_before > now:
                self._arm(delivery.not_before)
                return None
            return delivery
        self._update_idle()
        return None

    def sent(self, delivery: Delivery, text: str) -> str:
        """Send ``delivery`` (the head of the queue) as ``text``; return the text sent.

        A resend or a replay goes under a fresh unique id, so that no answer to an earlier
        attempt is taken for it.
        """
        if delivery.attempts or delivery.replay:
            unique_id = str(uuid.uuid4())
            text = with_unique_id(text, unique_id)
        else:
            unique_id = delivery.frame.unique_id
        delivery.attempts += 1
        delivery.deadline = self._clock.monotonic() + self.response_timeout
        self._in_flight = delivery
        self._in_flight_id = unique_id
        self._idle.clear()
        self._arm(delivery.deadline)
        assert self.sender is not None
        self.sender.send(text)
        return text

    @property
    def in_flight_id(self) -> str | None:
        """The unique id the delivery in flight was sent under (None: none in flight)."""
        return self._in_flight_id

    def withdraw(self, delivery: Delivery) -> bool:
        """Take back ``delivery`` if it was never sent; return whether it was taken back."""
        if not delivery.live or delivery.attempts or delivery is self._in_flight:
            return False
        self._forget(delivery)
        self._compact()
        self._update_idle()
        return True

    def skip(self, delivery: Delivery) -> None:
        """Drop the head delivery without sending it (nothing to send to this backend)."""
        if self._queue and self._queue[0] is delivery:
            self._queue.popleft()
        if delivery.live:
            self._forget(delivery)

    # -- backend -> proxy --------------------------------------------------------------

    def take_answer(self, unique_id: str) -> Delivery | None:
        """The delivery the backend's CALLRESULT/CALLERROR ``unique_id`` answers, or None.

        It stays in flight (nothing else is sent) until :meth:`finish`.
        """
        delivery = self._in_flight
        if delivery is None or unique_id != self._in_flight_id or delivery.answered:
            return None
        delivery.answered = True
        self._live -= 1
        return delivery

    def answered_in_place(self, delivery: Delivery) -> None:
        """The head delivery is answered without being sent (the proxy answers for the backend).

        As after :meth:`take_answer`, nothing else is sent until :meth:`finish`.
        """
        self._in_flight = delivery
        self._in_flight_id = None
        delivery.answered = True
        self._live -= 1
        self._idle.clear()

    def finish(self, delivery: Delivery) -> None:
        """The answer to ``delivery`` is written down: the link may send the next one."""
        if self._in_flight is delivery:
            # The timer stays: it re-checks what is due when it fires (arming and cancelling
            # one per frame would churn the event loop's heap).
            self._in_flight = None
            self._in_flight_id = None
        if self._queue and self._queue[0] is delivery:
            self._queue.popleft()
        if delivery.overdue:
            self.last_error = ""
            self._changed()
        self._update_idle()

    async def drained(self, within_s: float) -> bool:
        """Wait until nothing is in flight or deliverable, at most ``within_s`` s."""
        try:
            await asyncio.wait_for(self._idle.wait(), within_s)
        except TimeoutError:
            return False
        return True

    # -- inside ------------------------------------------------------------------------

    def _settle_head_retries(self) -> list[Delivery]:
        # What was sent on an earlier connection and never answered: resend after a backoff,
        # or give up after max_attempts.
        given_up: list[Delivery] = []
        now = self._clock.monotonic()
        while self._queue:
            head = self._queue[0]
            if not head.live:
                self._queue.popleft()
                continue
            if head.attempts == 0:
                break
            if head.attempts >= self.max_attempts:
                self._queue.popleft()
                self._forget(head)
                self.given_up += 1
                given_up.append(head)
                continue
            head.overdue = False
            head.not_before = now + self.retry_interval_s * (head.attempts - 1)
            break
        return given_up

    def _shed(self) -> Delivery | None:
        while self._sheddable:
            candidate = self._sheddable.popleft()
            if candidate.live and candidate is not self._in_flight:
                self._shed_one(candidate)
                if candidate.kept:
                    _LOGGER.warning(
                        "%s: queue full, dropped a queued %s", self.id, candidate.frame.action
                    )
                return candidate
        for candidate in self._queue:  # dead entries are purged by _compact, so this is short
            if candidate.live and candidate is not self._in_flight:
                _LOGGER.error(
                    "%s: queue over its bound (%d) with only transaction starts and ends: "
                    "dropped the oldest (%s)",
                    self.id,
                    self.max_queue,
                    candidate.frame.action,
                )
                self._shed_one(candidate)
                return candidate
        return None

    def _shed_one(self, delivery: Delivery) -> None:
        self._forget(delivery)
        self.dropped += 1
        self._compact()

    def _forget(self, delivery: Delivery) -> None:
        delivery.dropped = True
        self._live -= 1

    def _compact(self) -> None:
        # Dropped entries stay in the deques until they reach the head; when they outnumber
        # the live ones, rebuild once (amortized O(1) per delivery).
        if len(self._queue) > 2 * self._live + 16:
            self._queue = deque(d for d in self._queue if d.live)
        if len(self._sheddable) > 2 * self._live + 16:
            self._sheddable = deque(d for d in self._sheddable if d.live)

    def _drop_unkept(self) -> None:
        for delivery in self._queue:
            if delivery.live and not delivery.kept:
                self._forget(delivery)
        self._compact()
        self._update_idle()

    def _arm(self, when: float) -> None:
        # One lazy timer per link: it re-checks what is due when it fires.
        if self._timer is None:
            self._timer = self._clock.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        delivery = self._in_flight
        now = self._clock.monotonic()
        if delivery is not None:
            if now < delivery.deadline:
                self._arm(delivery.deadline)
                return
            if delivery.kept:
                # Not sent again on this connection (no duplicate at the backend); the answer
                # may still come. A resend waits for the link to be re-established.
                if not delivery.overdue:
                    delivery.overdue = True
                    self.last_error = f"no answer to {delivery.frame.action} yet"
                    _LOGGER.warning(
                        "%s did not answer %s within %ss; waiting for its answer",
                        self.id,
                        delivery.frame.action,
                        self.response_timeout,
                    )
                    self._changed()
                return
            _LOGGER.info(
                "%s did not answer %s within %ss",
                self.id,
                delivery.frame.action,
                self.response_timeout,
            )
            self._in_flight = None
            self._in_flight_id = None
            if self._queue and self._queue[0] is delivery:
                self._queue.popleft()
            self._forget(delivery)
        if self._on_ready is not None:
            self._on_ready(self)

    def _update_idle(self) -> None:
        if self._in_flight is None and (self._live == 0 or self.sender is None):
            self._idle.set()

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
            "given_up": self.given_up,
        }
