"""What happens in the proxy, as events for other systems (webhooks): a narrow, one-way hook.

The relay (or an observer of it) calls :meth:`EventBus.publish`; it never blocks and never
raises: the event is put on each subscriber's bounded queue, or counted as dropped when that
queue is full. Subscribers (:mod:`ocpp_proxy.notify.webhooks`) take events off their queue in
their own task, so a slow or failing receiver never slows the relay.

Event names (the ``event`` field of a webhook body) are the constants below; see DOCS.md,
"Webhooks", for the fields each carries.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

CHARGER_CONNECTED: Final = "charger.connected"
CHARGER_DISCONNECTED: Final = "charger.disconnected"
SESSION_STARTED: Final = "session.started"
SESSION_STOPPED: Final = "session.stopped"
CONNECTOR_FAULTED: Final = "connector.faulted"
CONNECTOR_RECOVERED: Final = "connector.recovered"
BACKEND_DOWN: Final = "backend.down"
BACKEND_UP: Final = "backend.up"
COMMAND_REFUSED: Final = "command.refused"
OVERRIDE_CHANGED: Final = "override.changed"
SHARED_CHARGING_CHANGED: Final = "shared_charging.changed"
LIMIT_CHANGED: Final = "limit.changed"
MESSAGES_AT_RISK: Final = "messages.at_risk"
WEBHOOK_TEST: Final = "webhook.test"

#: Every event name a webhook may subscribe to.
EVENT_NAMES: Final = (
    CHARGER_CONNECTED,
    CHARGER_DISCONNECTED,
    SESSION_STARTED,
    SESSION_STOPPED,
    CONNECTOR_FAULTED,
    CONNECTOR_RECOVERED,
    BACKEND_DOWN,
    BACKEND_UP,
    COMMAND_REFUSED,
    OVERRIDE_CHANGED,
    SHARED_CHARGING_CHANGED,
    LIMIT_CHANGED,
    MESSAGES_AT_RISK,
    WEBHOOK_TEST,
)

#: The version of the webhook body's layout (the ``version`` field).
BODY_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, to be told to other systems.

    ``name`` is one of :data:`EVENT_NAMES`; ``id`` is unique; ``at`` is Unix s (UTC); the
    charge point concerned is None for the proxy as a whole;
    ``data`` (JSON values; energies in kWh, durations in s).
    """

    name: str
    charge_point_id: str | None
    data: dict[str, Any]
    at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def body(self) -> dict[str, Any]:
        """The JSON body a webhook receives (``version`` :data:`BODY_VERSION`)."""
        return {
            "version": BODY_VERSION,
            "id": self.id,
            "event": self.name,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "charge_point_id": self.charge_point_id,
            "data": self.data,
        }


class EventBus:
    """Fans events out to subscribers' bounded queues without ever blocking the publisher."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[Event]] = []
        #: Events a full subscriber queue could not take (also ``ocpp_proxy_events_dropped``).
        self.dropped = 0
        self.published = 0

    def subscribe(self, max_queue: int = 10_000) -> asyncio.Queue[Event]:
        """A new queue that gets every event published from now on (at most ``max_queue``)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(max_queue)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        """Stop feeding ``queue``."""
        if queue in self._queues:
            self._queues.remove(queue)

    def publish(self, name: str, charge_point_id: str | None = None, **data: Any) -> Event:
        """Hand an event to every subscriber; O(subscribers), never blocks, never raises."""
        event = Event(name, charge_point_id, data)
        self.published += 1
        for queue in self._queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                _LOGGER.warning("event %s dropped: a subscriber's queue is full", name)
        return event


def publish_messages_at_risk(
    bus: EventBus | None,
    charge_point_id: str,
    *,
    backend_id: str,
    queued: int,
    reason: str,
) -> None:
    """The relay's "messages at risk" alert as an event (:data:`MESSAGES_AT_RISK`).

    For the relay core to call when transaction messages kept for ``backend_id`` may be lost
    (its queue near its bound, or the durable outbox failing).

    Args:
        bus: where to publish (None: nowhere, so callers need not check).
        charge_point_id: the charge point whose messages are at risk.
        backend_id: the backend they wait for.
        queued: how many messages wait for it now.
        reason: one line for people.
    """
    if bus is not None:
        bus.publish(
            MESSAGES_AT_RISK, charge_point_id, backend_id=backend_id, queued=queued, reason=reason
        )
