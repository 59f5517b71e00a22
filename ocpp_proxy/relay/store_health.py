"""Whether the store works, and what the relay could not keep durably while it did not.

A store fault (disk full, database locked past its busy timeout, closed, read-only) never stops
relaying: frames are forwarded first and recorded after, and a failed write is reported here.
The proxy shows the fault in ``/status`` (``store``), in metrics and in the log, and notices by
itself when writes succeed again. Transaction messages that reached no durable place while it
failed (neither every backend's confirmation nor an outbox row) are counted as at risk: each
gets an ERROR line naming the session.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ocpp_proxy.clock import Clock, iso_utc
from ocpp_proxy.metrics import Metrics

_LOGGER = logging.getLogger(__name__)


class StoreHealth:
    """The store's health as the relay sees it, shared by every charge point.

    Args:
        clock: for the times shown.
        metrics: ``ocpp_proxy_store_failures_total``, ``ocpp_proxy_messages_at_risk_total``.
        on_change: called when the health changes (for ``/status`` watchers).
    """

    def __init__(
        self,
        clock: Clock,
        metrics: Metrics,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self._on_change = on_change
        self.ok = True
        self.failing_since: float | None = None
        self.last_error = ""
        self.at_risk = 0
        self.alerts: deque[dict[str, Any]] = deque(maxlen=20)
        self._recovered: list[Callable[[], None]] = []

    def on_recovered(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the store works again after a fault."""
        self._recovered.append(callback)

    def forget(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback`` (its charge point's hub is closed)."""
        if callback in self._recovered:
            self._recovered.remove(callback)

    def failed(self, charge_point_id: str, what: str, error: Exception) -> None:
        """A write or read for ``charge_point_id`` failed while ``what``."""
        self._metrics.inc("ocpp_proxy_store_failures_total")
        self.last_error = f"{what}: {error}"
        if self.ok:
            self.ok = False
            self.failing_since = self._clock.time()
            _LOGGER.error(
                "the store fails (%s, for %s); relaying goes on, unconfirmed transaction "
                "messages are held in memory",
                self.last_error,
                charge_point_id,
            )
            self._changed()

    def succeeded(self) -> None:
        """A write went through: if the store was failing, it works again."""
        if self.ok:
            return
        since = self.failing_since or self._clock.time()
        self.ok = True
        self.failing_since = None
        _LOGGER.warning(
            "the store works again after %.0f s; keeping what was held meanwhile",
            self._clock.time() - since,
        )
        for callback in list(self._recovered):
            callback()
        self._changed()

    def lost_durability(
        self, charge_point_id: str, session: str, action: str, backends: list[str]
    ) -> None:
        """A transaction message was answered with neither an outbox row nor every confirmation."""
        self.at_risk += 1
        self._metrics.inc("ocpp_proxy_messages_at_risk_total")
        message = (
            f"{charge_point_id}: {action} of {session} is at risk: the store fails and "
            f"{', '.join(backends)} did not confirm it in time"
        )
        _LOGGER.error("%s", message)
        self.alerts.append(
            {"at": iso_utc(self._clock.time()), "charge_point": charge_point_id, "message": message}
        )
        self._changed()

    def snapshot(self) -> dict[str, Any]:
        """The store's health as ``/status`` shows it."""
        return {
            "ok": self.ok,
            "failing_since": iso_utc(self.failing_since),
            "last_error": self.last_error or None,
            "messages_at_risk": self.at_risk,
            "alerts": list(self.alerts),
        }

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
