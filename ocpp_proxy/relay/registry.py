"""All charge points the proxy knows, by charge point id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from ocpp_proxy.clock import Clock, SystemClock
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.policy.decisions import Arbiter
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.relay.changes import ChangeFeed
from ocpp_proxy.relay.hub import ChargerHub, UpstreamFactory
from ocpp_proxy.relay.store_health import StoreHealth
from ocpp_proxy.store import Store


class HubRegistry:
    """Creates and keeps one :class:`ChargerHub` per charge point id.

    A hub outlives its charger's connection: an inbound backend may wait for a charger, and the
    transaction messages a backend has not received yet stay queued for it.
    """

    def __init__(
        self,
        config: ProxyConfig,
        store: Store,
        *,
        home: HomeState | None = None,
        metrics: Metrics | None = None,
        arbiter: Arbiter | None = None,
        upstream_factory: UpstreamFactory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.home = home or HomeState()
        self.metrics = metrics or Metrics()
        self.metrics.gauge_source(self._gauges)
        self.changes = ChangeFeed()
        self.clock: Clock = clock or SystemClock()
        self.health = StoreHealth(self.clock, self.metrics, on_change=self.changes.notify)
        self._arbiter = arbiter
        self._upstream_factory = upstream_factory
        self._hubs: dict[str, ChargerHub] = {}
        self._opening = asyncio.Lock()

    async def restore(self) -> None:
        """Open the hub of every charge point the store knows, with what it kept for it."""
        known = {row.id for row in await self.store.chargers()}
        known.update(await self.store.outbox_charge_point_ids())
        for charge_point_id in sorted(known):
            await self.open(charge_point_id)

    async def open(self, charge_point_id: str) -> ChargerHub:
        """Return the hub of ``charge_point_id``; a new one first restores what was kept."""
        hub = self._hubs.get(charge_point_id)
        if hub is not None:
            return hub
        async with self._opening:
            hub = self._hubs.get(charge_point_id)
            if hub is None:
                hub = ChargerHub(
                    charge_point_id,
                    self.config,
                    self.store,
                    home=self.home,
                    metrics=self.metrics,
                    arbiter=self._arbiter,
                    upstream_factory=self._upstream_factory,
                    on_change=self.changes.notify,
                    clock=self.clock,
                    health=self.health,
                )
                await hub.restore()
                self._hubs[charge_point_id] = hub
                self.changes.notify()
        return hub

    async def set_override(self, enabled: bool) -> None:
        """The homeowner's override from the API; kept across restarts."""
        self.home.override_api = enabled
        await self.store.set_setting("override", enabled)
        self.home.changed()
        self.changes.notify()

    async def set_shared_charging(self, enabled: bool) -> None:
        """Whether backends may control the charger, from the API; kept across restarts."""
        self.home.shared_charging = enabled
        await self.store.set_setting("shared_charging", enabled)
        self.home.changed()
        self.changes.notify()

    async def set_max_current(self, max_current_a: float | None) -> None:
        """The homeowner's current limit (A; None: none); kept, and sent to every charger."""
        self.home.max_current_a = max_current_a
        await self.store.set_setting("max_current_a", max_current_a)
        self.home.changed()
        await asyncio.gather(*(hub.limits.apply() for hub in self._hubs.values() if hub.charger))
        self.changes.notify()

    def _gauges(self) -> Iterator[tuple[str, tuple[tuple[str, str], ...], float]]:
        """Connections and queue depths, read when ``/metrics`` is rendered."""
        for hub in self._hubs.values():
            cp = ("charge_point", hub.id)
            yield "ocpp_proxy_charger_connected", (cp,), float(hub.charger is not None)
            yield "ocpp_proxy_commands_queued", (cp,), float(hub.commands.depth)
            for link in hub.links.values():
                labels = (("backend", link.id), cp)
                yield "ocpp_proxy_backend_connected", labels, float(link.connected)
                yield "ocpp_proxy_backend_queue_depth", labels, float(link.queue_depth)
                yield "ocpp_proxy_backend_dropped_total", labels, float(link.dropped)
        yield "ocpp_proxy_store_ok", (), float(self.health.ok)

    def get(self, charge_point_id: str) -> ChargerHub | None:
        """Return the hub of ``charge_point_id`` if it exists."""
        return self._hubs.get(charge_point_id)

    def default_charge_point_id(self) -> str:
        """The charge point an inbound backend joins when it names none.

        The one connected charger if there is exactly one, else ``charge_point_id`` from the
        config.
        """
        connected = [hub.id for hub in self._hubs.values() if hub.charger is not None]
        return connected[0] if len(connected) == 1 else self.config.charge_point_id

    def __iter__(self) -> Iterator[ChargerHub]:
        return iter(list(self._hubs.values()))

    async def close(self) -> None:
        """Stop every hub: its outbound links, its background tasks, its journal."""
        await asyncio.gather(*(hub.close() for hub in self._hubs.values()))
