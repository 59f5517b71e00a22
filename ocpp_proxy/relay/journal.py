"""What the relay of one charge point writes down: the outbox, the message log, the charger.

The hub speaks to the store only through its journal, which applies the config's switches
(``durable_outbox``, ``message_log``) in one place, and turns every store fault into a report
to :class:`~ocpp_proxy.relay.store_health.StoreHealth` instead of an exception on the frame's
path. Records that need not be on the path (sessions, the charger's state) are written behind,
in order, by the journal's own task (:meth:`Journal.later`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ocpp_proxy.clock import Clock, SystemClock
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.protocol.frames import frame_head
from ocpp_proxy.relay.store_health import StoreHealth
from ocpp_proxy.store import OutboxRow, Store, StoreError
from ocpp_proxy.tasks import TaskSet

_T = TypeVar("_T")

_LOGGER = logging.getLogger(__name__)

#: The peer name of the charger in the message log (backends go by their config id).
CHARGER = "charger"
#: Records that may wait to be written behind the frames' path (sessions, charger state).
MAX_LATER = 10_000
#: How often a charger's last seen time is noted at most (s).
SEEN_RESOLUTION_S = 1.0


class Journal:
    """The durable record of one charge point's traffic.

    Args:
        store: the proxy's store.
        charge_point_id: the charge point this journal is for.
        durable_outbox: keep unconfirmed transaction messages in the store (else in memory).
        message_log: log every frame in and out.
    """

    def __init__(
        self,
        store: Store,
        charge_point_id: str,
        *,
        durable_outbox: bool,
        message_log: bool,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self.store = store
        self.id = charge_point_id
        self.durable_outbox = durable_outbox
        self.message_log = message_log
        self.metrics = metrics or Metrics()
        self.clock = clock or SystemClock()
        self.health = health or StoreHealth(self.clock, self.metrics)
        self.tasks = TaskSet(f"journal {charge_point_id}")
        self._later: deque[tuple[str, Callable[[], Awaitable[Any]]]] = deque()
        self._later_ready = asyncio.Event()
        self._later_idle = asyncio.Event()
        self._later_idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._log = store.frame_logger()
        self._seen_at = float("-inf")
        self._frames = {
            (peer, direction): self.metrics.counter(
                "ocpp_proxy_frames_total", peer=peer, direction=direction
            )
            for peer in ("charger", "backend")
            for direction in ("in", "out")
        }

    # -- store faults -------------------------------------------------------------------------

    async def guard(self, what: str, write: Awaitable[_T], *, probe: bool = True) -> _T | None:
        """Await a store call; on :class:`StoreError` report it and return None.

        With ``probe``, success tells the store's health that writes go through again (only
        for calls that surely wrote: a record that may skip the store proves nothing).
        """
        try:
            result = await write
        except StoreError as err:
            self.health.failed(self.id, what, err)
            return None
        if probe:
            self.health.succeeded()
        return result

    def later(self, what: str, write: Callable[[], Awaitable[Any]]) -> None:
        """Run ``write()`` behind the frame's path, after the earlier ones (faults reported).

        At most :data:`MAX_LATER` records wait (a store that hangs on every write must not grow
        memory without end): past it the oldest is dropped, logged and counted.
        """
        if len(self._later) >= MAX_LATER:
            dropped, _ = self._later.popleft()
            self.metrics.inc("ocpp_proxy_records_dropped_total")
            _LOGGER.error(
                "%s: the store is too slow; a record was not written (%s)", self.id, dropped
            )
        self._later.append((what, write))
        self._later_idle.clear()
        self._later_ready.set()
        if self._worker is None:
            self._worker = self.tasks.spawn(self._write_later())

    async def settled(self) -> None:
        """Wait until every write queued with :meth:`later` is done."""
        await self._later_idle.wait()

    async def close(self) -> None:
        """Finish the writes queued with :meth:`later` (briefly), then stop."""
        if self._later:
            try:
                async with asyncio.timeout(5):
                    await self.settled()
            except TimeoutError:
                _LOGGER.warning("%s: %d records not written at shutdown", self.id, len(self._later))
        await self.tasks.close()

    async def _write_later(self) -> None:
        while True:
            await self._later_ready.wait()
            while self._later:
                what, write = self._later.popleft()
                try:
                    await self.guard(what, write(), probe=False)
                except Exception:  # one bad record must not stop the others
                    _LOGGER.exception("%s: %s failed", self.id, what)
            self._later_ready.clear()
            self._later_idle.set()

    # -- message log -----------------------------------------------------------------------

    def frame(
        self, peer: str, direction: str, raw: str, head: tuple[int, str, str | None] | None = None
    ) -> None:
        """Log one frame (never blocks; written behind in batches) and count it.

        ``head`` is (message type, unique id, action) when the caller knows it (it parsed or
        built the frame); else it is read from the text. ``direction`` is ``in`` or ``out``.
        """
        self._frames[("charger" if peer == CHARGER else "backend", direction)].inc()
        if not self.message_log:
            return
        message_type, unique_id, action = head or frame_head(raw)
        # One tuple on the path; masking, cutting and encoding happen in the store's writer.
        self._log(
            (self.id, self.clock.time(), peer, direction, message_type, action, unique_id, raw)
        )

    # -- outbox ----------------------------------------------------------------------------

    async def outbox_add(
        self, backend_ids: Sequence[str], action: str, raw: str, transaction_id: int | None
    ) -> dict[str, int] | None:
        """Keep a transaction message for each backend until it answers; committed on return.

        Returns backend id -> outbox row id (empty without ``durable_outbox``), or None when
        the store failed (reported; nothing was kept).
        """
        if not self.durable_outbox or not backend_ids:
            return {}
        return await self.guard(
            "keeping a message in the outbox",
            self.store.outbox_add(
                self.id,
                backend_ids=backend_ids,
                action=action,
                frame=raw,
                transaction_id=transaction_id,
                at=self.clock.time(),
            ),
        )

    async def outbox_done(self, row_id: int | None) -> None:
        """The backend answered: forget the row (committed on return, or reported)."""
        if row_id is not None:
            await self.guard("forgetting an outbox row", self.store.outbox_remove(row_id))

    def outbox_dropped(self, row_id: int | None) -> None:
        """A row the relay gave up on (queue over its bound, or nothing to send)."""
        if row_id is not None:
            self.later("forgetting an outbox row", lambda: self.store.outbox_remove(row_id))

    async def outbox(self) -> dict[str, list[OutboxRow]]:
        """What the backends have not confirmed yet, per backend, oldest first."""
        return await self.store.outbox_load(self.id)

    # -- the charger's state, for late backends ------------------------------------------------

    def keep_state(self, key: str, raw: str) -> None:
        """Keep the last BootNotification / StatusNotification of a kind (written behind)."""
        at = self.clock.time()
        self.later(
            "keeping the charger's state", lambda: self.store.replay_put(self.id, key, raw, at)
        )

    def forget_state(self) -> None:
        """Forget the charger's kept state messages (it speaks another OCPP version now)."""
        self.later("forgetting the charger's state", lambda: self.store.replay_clear(self.id))

    async def kept_state(self) -> dict[str, str]:
        """The charger's last state messages, by key, as kept across restarts."""
        return await self.store.replay_load(self.id)

    # -- the charger -----------------------------------------------------------------------

    def connected(self) -> None:
        """The charger connected (written behind)."""
        at = self.clock.time()
        self.later("recording a connection", lambda: self.store.charger_connected(self.id, at))

    def disconnected(self) -> None:
        """The charger disconnected (written behind)."""
        at = self.clock.time()
        self.later(
            "recording a disconnection", lambda: self.store.charger_disconnected(self.id, at)
        )

    def seen(self, at: float) -> None:
        """The charger sent something at ``at`` (Unix s): its last seen, written behind.

        Noted at most once per :data:`SEEN_RESOLUTION_S` (the store keeps it to the second).
        """
        if at - self._seen_at >= SEEN_RESOLUTION_S or at < self._seen_at:
            self._seen_at = at
            self.store.charger_seen(self.id, at)

    def booted(self, payload: dict[str, Any], then: Callable[[], None]) -> None:
        """Record who the charger says it is (written behind); ``then()`` once it is written.

        ``then`` runs also when the write failed (the fault is reported): readers of the
        charger records (Home Assistant's devices) read them again then, and find what is there.
        """
        self.later("recording a boot", lambda: self._booted(payload, then))

    async def _booted(self, payload: dict[str, Any], then: Callable[[], None]) -> None:
        try:
            await self._write_boot(payload)
        finally:
            then()

    async def _write_boot(self, payload: dict[str, Any]) -> None:
        """Record who the charger says it is (OCPP 1.6 §4.2; 2.0.1 B01 ChargingStationType)."""
        station = payload.get("chargingStation")
        if isinstance(station, dict):
            vendor, model = station.get("vendorName"), station.get("model")
            serial, firmware = station.get("serialNumber"), station.get("firmwareVersion")
        else:
            vendor, model = payload.get("chargePointVendor"), payload.get("chargePointModel")
            serial = payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber")
            firmware = payload.get("firmwareVersion")
        await self.store.charger_booted(
            self.id,
            vendor=_text(vendor) or "",
            model=_text(model) or "",
            serial=_text(serial),
            firmware=_text(firmware),
            at=self.clock.time(),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
