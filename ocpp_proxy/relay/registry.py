"""All charge points the proxy knows, by charge point id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock, iso_utc
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.policy.decisions import Arbiter
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.relay.backend_link import LinkState
from ocpp_proxy.relay.cards import CardBook
from ocpp_proxy.relay.changes import ChangeFeed
from ocpp_proxy.relay.hub import ChargerHub, UpstreamFactory
from ocpp_proxy.relay.store_health import StoreHealth
from ocpp_proxy.store import Store

_LOGGER = logging.getLogger(__name__)

#: Link states in which a backend link holds nothing: no socket, no attempt to open one.
_IDLE_LINK_STATES = frozenset({LinkState.IDLE, LinkState.DISCONNECTED, LinkState.REFUSED})
#: Seconds a hub must stay idle before :meth:`HubRegistry.free_idle` lets it go.
IDLE_HUB_S = 3600.0
#: Replacements of a charger's connection kept for ``/status``.
MAX_REPLACEMENTS = 20


class HubRegistry:
    """Creates and keeps one :class:`ChargerHub` per charge point id.

    A hub outlives its charger's connection: an inbound backend may wait for a charger, and the
    transaction messages a backend has not received yet stay queued for it. A hub with no
    charger, no backend link, nothing queued, for :data:`IDLE_HUB_S`, is freed
    (:meth:`free_idle`); everything it kept is in the store and comes back when it reopens.
    """

    def __init__(
        self,
        config: ProxyConfig,
        store: Store,
        *,
        home: HomeState | None = None,
        cards: CardBook | None = None,
        metrics: Metrics | None = None,
        arbiter: Arbiter | None = None,
        upstream_factory: UpstreamFactory | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.store = store
        self.home = home or HomeState()
        self.cards = cards or CardBook(config, store)
        self.metrics = metrics or Metrics()
        self.metrics.gauge_source(self._gauges)
        self.changes = ChangeFeed()
        self.cards.on_change = self.changes.notify
        self._clock = clock  # the hubs' deadlines, backoff and retention
        self.health = StoreHealth(clock, self.metrics, on_change=self.changes.notify)
        self._arbiter = arbiter
        self._upstream_factory = upstream_factory
        self._hubs: dict[str, ChargerHub] = {}
        # Hubs being restored, by charge point id: one restore per id, many ids at once.
        self._opening: dict[str, asyncio.Task[ChargerHub]] = {}
        #: Monotonic seconds, for freeing idle hubs.
        self.clock: Callable[[], float] = clock.monotonic
        self._idle_since: dict[str, float] = {}
        #: The latest replacements of a charger's connection by another (``/status``).
        self.replacements: deque[dict[str, Any]] = deque(maxlen=MAX_REPLACEMENTS)

    async def restore(self) -> None:
        """Open the hub of every charge point the store knows, with what it kept for it."""
        await self.cards.load()
        known = {row.id for row in await self.store.chargers()}
        known.update(await self.store.outbox_charge_point_ids())
        for charge_point_id in sorted(known):
            await self.open(charge_point_id)

    async def open(self, charge_point_id: str) -> ChargerHub:
        """Return the hub of ``charge_point_id``; a new one first restores what was kept.

        Hubs of different charge points restore side by side (after a power cut a depot's
        chargers all reconnect at once, and each restore waits on the store several times);
        callers for the same id share one restore. A caller that is cancelled does not cancel
        the restore others wait for.

        Raises:
            StoreError: what was kept could not be read (the next call tries again).
        """
        hub = self._hubs.get(charge_point_id)
        if hub is not None:
            return hub
        opening = self._opening.get(charge_point_id)
        if opening is None:
            opening = asyncio.get_running_loop().create_task(
                self._restored(charge_point_id), name=f"ocpp-proxy restore {charge_point_id}"
            )
            self._opening[charge_point_id] = opening
            opening.add_done_callback(partial(self._opened, charge_point_id))
        return await asyncio.shield(opening)

    def _opened(self, charge_point_id: str, opening: asyncio.Task[ChargerHub]) -> None:
        del self._opening[charge_point_id]  # the one task of this id: no other is made meanwhile
        if not opening.cancelled() and (err := opening.exception()) is not None:
            # Raised to every caller still waiting too; said here once, even if none is left.
            _LOGGER.error("charge point %s: its hub could not be opened: %s", charge_point_id, err)

    async def _restored(self, charge_point_id: str) -> ChargerHub:
        hub = ChargerHub(
            charge_point_id,
            self.config,
            self.store,
            home=self.home,
            cards=self.cards,
            metrics=self.metrics,
            arbiter=self._arbiter,
            upstream_factory=self._upstream_factory,
            on_change=self.changes.notify,
            clock=self._clock,
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
        counts = self.store.message_log_counts()
        yield "ocpp_proxy_message_log_frames_total", (), float(counts["logged"])
        yield "ocpp_proxy_message_log_frames_buffered", (), float(counts["buffered"])
        yield "ocpp_proxy_message_log_frames_dropped_total", (), float(counts["dropped"])

    # -- who may be whom -------------------------------------------------------------------

    @property
    def open_mode(self) -> bool:
        """Whether any charge point id may connect (no ``chargers``, no client certificates)."""
        return not self.config.chargers and not self.config.ssl_client_ca

    def may_replace(self, charge_point_id: str, remote: str) -> str | None:
        """Whether a new connection from ``remote`` may take ``charge_point_id`` over.

        In open mode (anyone may claim any id) a charge point that is online is replaced only
        by a connection from its own address (a charger reconnecting over a half-open TCP
        connection), or once it has sent nothing for longer than ``ping_interval`` (s): then
        aiohttp's ping finds a dead link soon anyway. An authenticated charger may always
        replace its own connection. Out: None when it may, else why not.
        """
        hub = self._hubs.get(charge_point_id)
        charger = hub.charger if hub is not None else None
        if charger is None or not self.open_mode or charger.remote == remote:
            return None
        if self._silent_s(hub) > self.config.ping_interval:
            return None
        return (
            f"online from another address ({charger.remote}); open mode lets a second "
            "connection replace it only from the same address or after it fell silent"
        )

    def _silent_s(self, hub: ChargerHub | None) -> float:
        """Seconds since the charger of ``hub`` last sent a frame (or connected)."""
        if hub is None or hub.charger is None:
            return 0.0
        last = max(hub.last_message_at or 0.0, hub.charger.connected_since)
        return time.time() - last

    def replacing(self, hub: ChargerHub, remote: str) -> None:
        """Log and keep (for ``/status``) that a connection from ``remote`` replaces another.

        Does nothing when ``hub`` has no charger connected.
        """
        old = hub.charger
        if old is None:
            return
        silent = self._silent_s(hub)
        entry = {
            "charge_point_id": hub.id,
            "at": iso_utc(time.time()),
            "old_remote": old.remote,
            "new_remote": remote,
            "silent_s": round(silent, 1),
        }
        self.replacements.append(entry)
        _LOGGER.warning(
            "charge point %s: the connection from %s replaces the one from %s (silent %.0f s)",
            hub.id,
            remote,
            old.remote,
            silent,
        )

    async def exists(self, charge_point_id: str) -> bool:
        """Whether ``charge_point_id`` is configured or was ever seen.

        An inbound backend may join only such a charge point.
        """
        if charge_point_id in self._hubs or charge_point_id == self.config.charge_point_id:
            return True
        if any(c.id == charge_point_id for c in self.config.chargers):
            return True
        return await self.store.charger_known(charge_point_id)

    # -- freeing idle hubs -----------------------------------------------------------------

    @staticmethod
    def _idle(hub: ChargerHub) -> bool:
        return (
            hub.charger is None
            and hub.commands.depth == 0
            and all(
                link.state in _IDLE_LINK_STATES and not link.connected and link.queue_depth == 0
                for link in hub.links.values()
            )
        )

    async def free_idle(self) -> list[str]:
        """Free the hubs idle (see the class) for :data:`IDLE_HUB_S`; return their ids.

        Called every few minutes by the application; a hub seen idle for the first time is
        only noted.
        """
        now = self.clock()
        freed: list[str] = []
        for charge_point_id, hub in list(self._hubs.items()):
            if not self._idle(hub):
                self._idle_since.pop(charge_point_id, None)
                continue
            since = self._idle_since.setdefault(charge_point_id, now)
            if now - since >= IDLE_HUB_S:
                del self._hubs[charge_point_id]
                del self._idle_since[charge_point_id]
                await hub.close()
                freed.append(charge_point_id)
        if freed:
            _LOGGER.info("freed the idle charge points %s", ", ".join(freed))
            self.changes.notify()
        return freed

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
        opening = list(self._opening.values())
        for task in opening:
            task.cancel()
        await asyncio.gather(*opening, return_exceptions=True)
        await asyncio.gather(*(hub.close() for hub in self._hubs.values()))
        await self.cards.close()
