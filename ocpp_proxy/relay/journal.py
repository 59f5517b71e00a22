"""What the relay of one charge point writes down: the outbox, the message log, the charger.

The hub speaks to the store only through its journal, which applies the config's switches
(``durable_outbox``, ``message_log``) in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ocpp_proxy.metrics import Metrics
from ocpp_proxy.protocol.frames import frame_head
from ocpp_proxy.store import OutboxRow, Store
from ocpp_proxy.tasks import spawn

_LOGGER = logging.getLogger(__name__)

#: The peer name of the charger in the message log (backends go by their config id).
CHARGER = "charger"


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
    ) -> None:
        self.store = store
        self.id = charge_point_id
        self.durable_outbox = durable_outbox
        self.message_log = message_log
        self.metrics = metrics or Metrics()
        self._frames = {
            (peer, direction): self.metrics.counter(
                "ocpp_proxy_frames_total", peer=peer, direction=direction
            )
            for peer in ("charger", "backend")
            for direction in ("in", "out")
        }

    # -- message log -----------------------------------------------------------------------

    def frame(
        self, peer: str, direction: str, raw: str, head: tuple[int, str, str | None] | None = None
    ) -> None:
        """Log one frame (never blocks; written behind in batches) and count it.

        ``head`` is (message type, unique id, action) when the caller has parsed the frame
        already; else it is read from the text.
        """
        self._frames[("charger" if peer == CHARGER else "backend", direction)].inc()
        if not self.message_log:
            return
        message_type, unique_id, action = head or frame_head(raw)
        self.store.log_frame(
            self.id,
            peer=peer,
            direction=direction,  # type: ignore[arg-type]
            message_type=message_type,
            action=action,
            unique_id=unique_id,
            frame=raw,
            at=time.time(),
        )

    # -- outbox ----------------------------------------------------------------------------

    async def outbox_add(
        self, backend_ids: Sequence[str], action: str, raw: str, transaction_id: int | None
    ) -> dict[str, int]:
        """Keep a transaction message for each backend until it answers; committed on return.

        Returns backend id -> outbox row id (empty without ``durable_outbox``).
        """
        if not self.durable_outbox or not backend_ids:
            return {}
        return await self.store.outbox_add(
            self.id,
            backend_ids=backend_ids,
            action=action,
            frame=raw,
            transaction_id=transaction_id,
            at=time.time(),
        )

    async def outbox_done(self, row_id: int | None) -> None:
        """The backend answered: forget the row (committed on return)."""
        if row_id is not None:
            await self.store.outbox_remove(row_id)

    def outbox_dropped(self, row_id: int | None) -> None:
        """A row the relay gave up on (queue over its bound, or nothing to send)."""
        if row_id is not None:
            spawn(self.store.outbox_remove(row_id))

    async def outbox(self) -> dict[str, list[OutboxRow]]:
        """What the backends have not confirmed yet, per backend, oldest first."""
        return await self.store.outbox_load(self.id)

    # -- the charger -----------------------------------------------------------------------

    async def connected(self) -> None:
        """The charger connected."""
        await self.store.charger_connected(self.id, time.time())

    async def disconnected(self) -> None:
        """The charger disconnected."""
        await self.store.charger_disconnected(self.id, time.time())

    def seen(self) -> None:
        """The charger sent something (last seen; written behind)."""
        self.store.charger_seen(self.id, time.time())

    async def booted(self, payload: dict[str, Any]) -> None:
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
            at=time.time(),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
