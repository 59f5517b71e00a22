"""The one durable step on a charger CALL's path: outbox rows for backends still waiting.

A charger keeps a transaction message until it is answered and sends it again after a
reconnect (OCPP 1.6 §4.9; 2.0.1 E11): until its answer the charger is the message's durable
copy. Once the charger has its answer, the proxy is, for every backend that has not confirmed
the message (its link up, opening or down), so those rows are written (and committed) just
before that answer goes out. A backend that answered in time costs no write at all.

When the store fails, the answer waits for the connected backends' confirmations instead (up to
``response_timeout``); what stays unconfirmed then is at risk (see
:class:`~ocpp_proxy.relay.store_health.StoreHealth`), and its rows are written as soon as the
store works again (tried every :data:`STORE_RETRY_S`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from ocpp_proxy.clock import Clock
from ocpp_proxy.protocol.messages import session_label
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.backend_link import BackendLink, Delivery
from ocpp_proxy.relay.journal import Journal
from ocpp_proxy.relay.pending import PendingCall
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

#: How often rows that could not be written while the store failed are tried again (s).
STORE_RETRY_S = 5.0


def waiting(pending: PendingCall) -> dict[str, Delivery]:
    """The deliveries of ``pending`` no backend confirmed and no row keeps, by backend id."""
    return {
        backend_id: delivery
        for backend_id, delivery in pending.deliveries.items()
        if delivery.live and delivery.outbox_id is None
    }


def confirmed(pending: PendingCall) -> None:
    """A backend confirmed a delivery of ``pending``: wake an answer waiting for that."""
    if pending.confirmed is not None:
        pending.confirmed.set()


class UnconfirmedKeeper:
    """Keeps the transaction messages of one charge point that backends have not confirmed.

    Args:
        charge_point_id: the charge point, for log lines.
        journal: where the rows are written (store faults come back as None).
        links: the backend links by id (whether one is connected decides what is awaited).
        clock: the deadline of a held answer, the retry interval.
        tasks: the hub's task set; the retry of rows owed runs there.
        response_timeout_s: how long an answer is held for confirmations (s).
        version: the charge point's OCPP version now (for the session named in log lines).
        forget_row: forgets the row of a delivery confirmed while its row was written.
    """

    def __init__(
        self,
        charge_point_id: str,
        journal: Journal,
        links: Mapping[str, BackendLink],
        *,
        clock: Clock,
        tasks: TaskSet,
        response_timeout_s: float,
        version: Callable[[], OcppVersion],
        forget_row: Callable[[Delivery], None],
    ) -> None:
        self.id = charge_point_id
        self.journal = journal
        self.health = journal.health
        self.links = links
        self.clock = clock
        self.tasks = tasks
        self.response_timeout_s = response_timeout_s
        self.version = version
        self.forget_row = forget_row
        # Transaction messages answered while the store failed: their rows are still owed.
        self._owed: list[PendingCall] = []
        self.retrying: asyncio.Task[None] | None = None
        self.health.on_recovered(self._store_recovered)

    def close(self) -> None:
        """Stop hearing of the store's recovery (the hub closes)."""
        self.health.forget(self._store_recovered)

    def owes(self, pending: PendingCall) -> bool:
        """Whether rows of ``pending`` are still to be written once the store works."""
        return bool(self._owed) and pending in self._owed

    async def keep(self, pending: PendingCall) -> None:
        """Keep ``pending`` for each backend that has not confirmed it; return when kept.

        Call it just before the charger gets its answer. On a store fault it returns once the
        connected backends confirmed, or ``response_timeout`` passed.
        """
        owed = waiting(pending)
        if not owed:
            return
        if await self._write(pending, owed):
            return
        await self._await_confirmations(pending)
        if waiting(pending):
            self._owed.append(pending)
            if self.retrying is None:
                self.retrying = self.tasks.spawn(self._retry_owed())

    async def _write(self, pending: PendingCall, owed: dict[str, Delivery]) -> bool:
        frame = pending.frame
        rows = await self.journal.outbox_add(
            list(owed), frame.action or "", frame.raw, pending.transaction_id
        )
        if rows is None:
            return False
        for backend_id, delivery in owed.items():
            delivery.outbox_id = rows.get(backend_id)
            if not delivery.live:  # confirmed or dropped while the row was written
                self.forget_row(delivery)
        return True

    async def _await_confirmations(self, pending: PendingCall) -> None:
        event = asyncio.Event()
        pending.confirmed = event
        deadline = self.clock.monotonic() + self.response_timeout_s
        timer = self.clock.call_at(deadline, event.set)
        try:
            while any(
                d.live and self.links[backend_id].connected
                for backend_id, d in pending.deliveries.items()
            ):
                event.clear()
                await event.wait()
                if self.clock.monotonic() >= deadline:
                    break
        finally:
            timer.cancel()
            pending.confirmed = None
        unconfirmed = sorted(waiting(pending))
        if unconfirmed:
            frame = pending.frame
            self.health.lost_durability(
                self.id,
                session_label(
                    self.version(), frame.action or "", frame.payload or {}, pending.transaction_id
                ),
                frame.action or "",
                unconfirmed,
            )

    def _store_recovered(self) -> None:
        if self._owed and self.retrying is None:
            self.retrying = self.tasks.spawn(self._retry_owed())

    async def _retry_owed(self) -> None:
        # Rows owed since the store failed, written in order once it works again.
        try:
            while self._owed:
                pending = self._owed[0]
                owed = waiting(pending)
                if owed and not await self._write(pending, owed):
                    await self.clock.sleep(STORE_RETRY_S)
                    continue
                self._owed.pop(0)
            _LOGGER.warning("%s: the messages held while the store failed are kept now", self.id)
        finally:
            self.retrying = None
