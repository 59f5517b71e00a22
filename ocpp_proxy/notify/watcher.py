"""Events derived from what the relay shows, so that the relay core needs no hooks for them.

:class:`RelayWatcher` wakes on the registry's change feed (the relay only sets an event: no
work on its path), compares what the hubs show with what it saw last, and publishes the
differences on the :class:`~ocpp_proxy.event_bus.EventBus`: chargers online/offline,
sessions started/stopped, connectors faulted/recovered, backend links down/up (only once a
link has stayed down for ``backend_down_grace`` s), the homeowner's override, shared charging
and current limit, and the relay's "messages at risk" alerts (a hub alert of kind
:data:`AT_RISK_KIND`, or an alert of the relay's store health). The relay core may instead
call :func:`ocpp_proxy.event_bus.publish_messages_at_risk` itself. :class:`PublishingArbiter`
publishes the commands an arbiter refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocpp_proxy import event_bus as ev
from ocpp_proxy.clock import Clock, SystemClock, iso_utc
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.decisions import Arbiter, CommandRequest, Decision
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store import StoreError
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

#: The connector status that counts as a fault (1.6 ChargePointStatus, 2.0.1 ConnectorStatus).
FAULTED = "Faulted"

#: The relay's alert kind for transaction messages that may be lost.
AT_RISK_KIND = "messages_at_risk"

#: After a pass over the hubs the watcher rests this many times as long as the pass took;
#: a state that flips and flips back within that rest is not reported.
PASS_SPACING = 20


class PublishingArbiter:
    """An arbiter that asks ``inner`` and publishes each refusal as ``command.refused``."""

    def __init__(self, inner: Arbiter, bus: ev.EventBus) -> None:
        self.inner = inner
        self._bus = bus

    def decide(self, request: CommandRequest) -> Decision:
        """``inner``'s decision; a refusal is also published (never blocks)."""
        decision = self.inner.decide(request)
        if not decision.allowed:
            self._bus.publish(
                ev.COMMAND_REFUSED,
                request.charge_point_id,
                backend_id=request.requester,
                action=request.action,
                rule=decision.rule,
                reason=decision.reason,
            )
        return decision


@dataclass(slots=True)
class _Seen:
    """What the watcher saw of one charge point last time."""

    emit: Callable[..., None]
    online: bool = False
    connectors: dict[str, str | None] = field(default_factory=dict)
    running: tuple[Any, ...] = ()
    sessions: dict[str, Any] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    links: dict[str, bool] = field(default_factory=dict)
    alerts: set[int] = field(default_factory=set)


class RelayWatcher:
    """Publishes what changed in the relay (see the module), until :meth:`close`.

    Args:
        registry: the relay's charge points.
        bus: where events go.
        config: for the override's Home Assistant entities, the shared charging default and
            ``backend_down_grace`` (s).
        clock: wall time and waiting (the grace period runs on it).
    """

    def __init__(
        self,
        registry: HubRegistry,
        bus: ev.EventBus,
        config: ProxyConfig,
        clock: Clock | None = None,
    ) -> None:
        self._registry = registry
        self._bus = bus
        self._config = config
        self._clock: Clock = clock or SystemClock()
        self._seen: dict[str, _Seen] = {}
        self._home: dict[str, Any] = self._home_state()
        self._down: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._down_since: dict[tuple[str, str], float] = {}
        self._announced: set[tuple[str, str]] = set()
        self._health_alerts: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        # Events leave in the order they were seen; a stop waits for its figures first.
        self._ordered: asyncio.Queue[tuple[str, str | None, dict[str, Any]]] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._tasks = TaskSet("event watcher")  # owned here, awaited in close()

    def start(self) -> None:
        """Take what the relay shows now as the baseline, and follow it from there."""
        version = self._registry.changes.version
        self._observe(publish=False)
        self._task = self._tasks.spawn(self._run(version))
        self._publisher = self._tasks.spawn(self._publish_in_order())

    async def close(self) -> None:
        """Stop following (pending grace periods are dropped)."""
        tasks = [t for t in (self._task, self._publisher, *self._down.values()) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._tasks.close()

    async def _run(self, seen: int) -> None:
        feed = self._registry.changes
        while True:
            with contextlib.suppress(TimeoutError):
                await feed.wait_for(lambda s=seen: feed.version != s, 3600.0)
            seen = feed.version  # a notice from here on, even while resting, means a pass
            started = time.perf_counter()
            self._observe(publish=True)
            # Rest PASS_SPACING times as long as the pass took (real time: this bounds CPU,
            # it is not the relay's time): notices meanwhile share the next pass, so the
            # watcher takes at most 1/(1 + PASS_SPACING) of the CPU however many come. A
            # home's pass takes microseconds; 2000 hubs 3 to 7 ms (benchmarks/events.py).
            await asyncio.sleep((time.perf_counter() - started) * PASS_SPACING)

    def _publish(self, name: str, charge_point_id: str | None, **data: Any) -> None:
        self._ordered.put_nowait((name, charge_point_id, data))

    async def _publish_in_order(self) -> None:
        while True:
            name, charge_point_id, data = await self._ordered.get()
            if name == ev.SESSION_STOPPED and charge_point_id is not None:
                data = await self._stopped(charge_point_id, data)
            elif name == ev.SESSION_STARTED and charge_point_id and data["owner"] is None:
                data = await self._owner(charge_point_id, data)
            self._bus.publish(name, charge_point_id, **data)

    # -- comparing ---------------------------------------------------------------------------

    def _observe(self, *, publish: bool) -> None:
        # Runs after every change notice, over every hub: each check returns at once when
        # nothing of its kind changed (benchmarks/events.py measures a pass).
        hubs = 0
        for hub in self._registry:
            hubs += 1
            seen = self._seen.get(hub.id)
            if seen is None:
                seen = self._seen[hub.id] = _Seen(self._emitter(hub.id))
            emit = seen.emit if publish else _quiet
            self._charger(hub, seen, emit)
            if hub.connectors or seen.connectors:
                self._connectors(hub, seen, emit)
            self._sessions(hub, seen, emit)
            self._links(hub, seen, publish)
            if hub.alerts or seen.alerts:
                self._alerts(hub, seen, emit)
        if len(self._seen) > hubs:  # hubs let go while idle: forget them too
            present = {hub.id for hub in self._registry}
            self._seen = {k: v for k, v in self._seen.items() if k in present}
        self._store_alerts(publish)
        home = self._home_state()
        if publish:
            self._home_changes(self._home, home)
        self._home = home

    def _emitter(self, charge_point_id: str) -> Callable[..., None]:
        def emit(name: str, **data: Any) -> None:
            self._publish(name, charge_point_id, **data)

        return emit

    def _charger(self, hub: ChargerHub, seen: _Seen, emit: Callable[..., None]) -> None:
        online = hub.charger is not None
        if online == seen.online:
            return
        seen.online = online
        if online:
            emit(
                ev.CHARGER_CONNECTED,
                online=True,
                ocpp_version=hub.version.value,
                remote=hub.charger.remote,
                last_seen=iso_utc(hub.last_message_at),
            )
        else:
            emit(ev.CHARGER_DISCONNECTED, online=False, last_seen=iso_utc(hub.last_message_at))

    def _connectors(self, hub: ChargerHub, seen: _Seen, emit: Callable[..., None]) -> None:
        for key, connector in list(hub.connectors.items()):
            status = connector.get("status")
            before = seen.connectors.get(key)
            if status == before and key in seen.connectors:
                continue
            seen.connectors[key] = status
            where = {
                "connector": key,
                "evse_id": connector.get("evse_id"),
                "connector_id": connector.get("connector_id"),
            }
            if status == FAULTED and before != FAULTED:
                emit(ev.CONNECTOR_FAULTED, **where, error_code=connector.get("error_code"))
            elif before == FAULTED and status != FAULTED:
                emit(ev.CONNECTOR_RECOVERED, **where, status=status)

    def _sessions(self, hub: ChargerHub, seen: _Seen, emit: Callable[..., None]) -> None:
        now_running = hub.sessions.running()
        if now_running == seen.running:
            return
        seen.running = now_running
        running = {s.transaction: s for s in now_running}
        for transaction, session in running.items():
            # Announced once its owner is known (the answer to the charger's start names it).
            if session.owner is not None and transaction not in seen.started:
                seen.started.add(transaction)
                emit(
                    ev.SESSION_STARTED,
                    transaction_id=transaction,
                    connector=session.connector,
                    owner=session.owner,
                )
        for transaction, session in seen.sessions.items():
            if transaction in running:
                continue
            if transaction not in seen.started:
                emit(
                    ev.SESSION_STARTED,
                    transaction_id=transaction,
                    connector=session.connector,
                    owner=session.owner,
                )
            seen.started.discard(transaction)
            # Energy and revenue are in the store once the stop is written: read there.
            emit(ev.SESSION_STOPPED, transaction_id=transaction, owner=session.owner)
        seen.sessions = running

    async def _owner(self, charge_point_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` of a session.started event with the owner the store has for it."""
        hub = self._registry.get(charge_point_id)
        if hub is not None:  # sessions are written behind the frame's path: wait for them
            await hub.journal.settled()
        with contextlib.suppress(StoreError):
            row = await self._registry.store.latest_session(charge_point_id, data["transaction_id"])
            if row is not None:
                return {**data, "owner": row.owner}
        return data

    async def _stopped(self, charge_point_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` of a session.stopped event with the session's figures from the store."""
        transaction = data["transaction_id"]
        hub = self._registry.get(charge_point_id)
        if hub is not None:  # the stop is written behind the frame's path: wait for it
            await hub.journal.settled()
        try:
            row = await self._registry.store.latest_session(charge_point_id, transaction)
        except StoreError as err:
            _LOGGER.warning("session.stopped of %s without its figures: %s", transaction, err)
            row = None
        if row is not None:
            stopped = row.stopped_at
            data.update(
                owner=row.owner,
                session_id=row.id,
                connector=row.evse_id if row.evse_id is not None else row.connector_id,
                id_tag=row.id_tag,
                started_at=iso_utc(row.started_at),
                stopped_at=iso_utc(stopped),
                duration_s=round(stopped - row.started_at, 3) if stopped is not None else None,
                energy_kwh=row.energy_kwh,
                stop_reason=row.stop_reason,
                revenue=row.revenue,
                currency=row.currency,
            )
        return data

    def _links(self, hub: ChargerHub, seen: _Seen, publish: bool) -> None:
        for link in hub.links.values():
            up = bool(link.connected)
            before = seen.links.get(link.id)
            if before == up:
                continue
            seen.links[link.id] = up
            if before is None or not publish:
                continue
            key = (hub.id, link.id)
            if not up:
                self._down_since[key] = self._clock.time()
                self._down[key] = self._tasks.spawn(self._grace(key))
                continue
            task = self._down.pop(key, None)
            if task is not None:
                task.cancel()
            since = self._down_since.pop(key, None)
            if key in self._announced:
                self._announced.discard(key)
                down_s = None if since is None else round(self._clock.time() - since, 3)
                self._publish(ev.BACKEND_UP, hub.id, backend_id=link.id, down_s=down_s)

    async def _grace(self, key: tuple[str, str]) -> None:
        if self._config.backend_down_grace > 0:
            await self._clock.sleep(self._config.backend_down_grace)
        self._down.pop(key, None)
        hub = self._registry.get(key[0])
        link = hub.links.get(key[1]) if hub is not None else None
        if link is None or link.connected or key in self._announced:
            return
        self._announced.add(key)
        snapshot = link.snapshot()
        self._publish(
            ev.BACKEND_DOWN,
            key[0],
            backend_id=key[1],
            since=iso_utc(self._down_since.get(key)),
            error=snapshot.get("last_error"),
        )

    def _alerts(self, hub: ChargerHub, seen: _Seen, emit: Callable[..., None]) -> None:
        # The hub keeps its recent alerts (a bounded deque of dicts): new ones are those not
        # there last time.
        alerts = list(hub.alerts)
        before, seen.alerts = seen.alerts, {id(alert) for alert in alerts}
        for alert in alerts:
            if id(alert) not in before and alert.get("kind") == AT_RISK_KIND:
                emit(ev.MESSAGES_AT_RISK, **{k: v for k, v in alert.items() if k != "kind"})

    def _store_alerts(self, publish: bool) -> None:
        # The relay core's store health (``registry.health``, where the relay has one) keeps
        # an alert for each transaction message answered while neither kept nor confirmed.
        health = getattr(self._registry, "health", None)
        alerts = list(getattr(health, "alerts", ()))
        before, self._health_alerts = self._health_alerts, {id(alert) for alert in alerts}
        for alert in alerts:
            if publish and id(alert) not in before:
                self._publish(
                    ev.MESSAGES_AT_RISK,
                    alert.get("charge_point"),
                    reason=alert.get("message"),
                    at_risk_total=getattr(health, "at_risk", None),
                )

    # -- the homeowner -----------------------------------------------------------------------

    def _home_state(self) -> dict[str, Any]:
        config, home = self._config, self._registry.home
        override = home.override_state(config.override_input_boolean, config.presence_sensor)
        return {
            "override": override,
            "shared_charging": home.shared_charging_allowed(config.allow_shared_charging),
            "max_current_a": home.max_current_a,
        }

    def _home_changes(self, before: dict[str, Any], now: dict[str, Any]) -> None:
        if before["override"]["enabled"] != now["override"]["enabled"]:
            self._publish(ev.OVERRIDE_CHANGED, None, **now["override"])
        if before["shared_charging"] != now["shared_charging"]:
            self._publish(ev.SHARED_CHARGING_CHANGED, None, enabled=now["shared_charging"])
        if before["max_current_a"] != now["max_current_a"]:
            self._publish(
                ev.LIMIT_CHANGED,
                None,
                max_current_a=now["max_current_a"],
                previous_max_current_a=before["max_current_a"],
            )


def _quiet(name: str, **data: Any) -> None:
    """The emitter of the baseline pass: what is there at start is not news."""
