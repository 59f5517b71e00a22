"""The chargers and the proxy as Home Assistant devices, through MQTT discovery.

Discovery configs go, retained, to ``<prefix>/<component>/<node>/<object>/config``; states to
``ocpp_proxy/<node>/<object>/state`` (retained, so HA has them after a restart); commands
come from ``ocpp_proxy/<node>/<object>/set``. ``ocpp_proxy/status`` is ``online`` while the
proxy is connected and ``offline`` after it (its MQTT last will, for a crash); each charger's
``ocpp_proxy/<node>/availability`` follows the charger's connection. When Home Assistant
publishes ``online`` on ``<prefix>/status`` (it restarted) everything is published again. An
entity that is gone gets an empty retained config, which removes it from HA; the topics
published are kept in the store, so this works across restarts too.

Commands from HA act as the homeowner: charger commands are built by
:mod:`ocpp_proxy.homeowner.commands` and go through :meth:`ChargerHub.homeowner_command` (the
arbiter's safety rules, the audit log), settings through :mod:`ocpp_proxy.homeowner.settings`;
the audit log records them as ``home_assistant``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import aiomqtt

from ocpp_proxy.backoff import Backoff
from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.homeassistant.entities import (
    NONE,
    ON,
    PROXY_AVAILABILITY,
    PROXY_NODE,
    TOPIC_ROOT,
    Device,
    Entity,
    charger_device,
    charger_entities,
    discovery_payload,
    node_id,
    proxy_entities,
)
from ocpp_proxy.homeowner import settings
from ocpp_proxy.homeowner.commands import build
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store.rows import ChargerRow

_LOGGER = logging.getLogger(__name__)

#: Who commands from Home Assistant are recorded as in the audit log.
ACTOR = "home_assistant"
#: Store setting: the discovery topics published, to remove entities that are gone.
_PUBLISHED_SETTING = "mqtt_discovery_topics"


class MqttBridge:
    """Keeps Home Assistant's MQTT entities in step with the relay, and takes their commands.

    Args:
        config: the proxy's configuration (broker, discovery prefix).
        registry: the relay's chargers and the homeowner's inputs.
        refresh_s: states are refreshed at least this often (session duration), also without
            a change in the relay.
        max_backoff_s: the longest wait between attempts to reach the broker (see
            :mod:`ocpp_proxy.backoff`); a connection up that long starts the waits over.
        clock: the clock the waits are slept on.
    """

    def __init__(
        self,
        config: ProxyConfig,
        registry: HubRegistry,
        *,
        refresh_s: float = 60.0,
        max_backoff_s: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.registry = registry
        self.prefix = config.mqtt_discovery_prefix.rstrip("/")
        self.refresh_s = refresh_s
        self._backoff = Backoff(max_s=max_backoff_s, stable_after_s=max_backoff_s, clock=clock)
        self._client: aiomqtt.Client | None = None
        self._configs: dict[str, str] = {}  # discovery topic -> payload published
        self._states: dict[str, str] = {}  # state topic -> payload published
        self._rows: dict[str, ChargerRow] = {}
        self._rows_key: tuple[Any, ...] = ()
        self._commands: set[asyncio.Task[None]] = set()
        # One publisher at a time: the relay's changes, HA's restart and commands all publish.
        self._publishing = asyncio.Lock()

    async def run(self) -> None:
        """Connect to the broker and serve until cancelled; reconnect with backoff."""
        where = f"{self.config.mqtt_host}:{self.config.mqtt_port}"
        while True:
            try:
                await self._serve()
            except aiomqtt.MqttError as err:
                _raise_if_cancelled()
                wait = self._backoff.next_delay()
                _LOGGER.warning(
                    "MQTT broker %s: %s; the proxy runs on without Home Assistant entities, "
                    "retrying in %.0f s",
                    where,
                    err,
                    wait,
                )
            except Exception:
                _raise_if_cancelled()
                wait = self._backoff.next_delay()
                # A bug here must not end the entities for good, nor pass unnoticed.
                _LOGGER.exception("MQTT: unexpected error; reconnecting in %.0f s", wait)
            else:
                wait = self._backoff.next_delay()
                _LOGGER.info("MQTT: disconnected; reconnecting in %.0f s", wait)
            await self._backoff.wait(wait)

    async def _serve(self) -> None:
        will = aiomqtt.Will(PROXY_AVAILABILITY, "offline", qos=1, retain=True)
        client = aiomqtt.Client(
            self.config.mqtt_host,
            self.config.mqtt_port,
            username=self.config.mqtt_username or None,
            password=self.config.mqtt_password or None,
            identifier=f"ocpp-proxy-{uuid.uuid4().hex[:12]}",
            will=will,
            timeout=10,
        )
        async with client:
            self._client = client
            self._backoff.connected()
            _LOGGER.info("MQTT: connected to %s:%s", self.config.mqtt_host, self.config.mqtt_port)
            try:
                await client.subscribe(f"{self.prefix}/status", qos=1)
                await client.subscribe(f"{TOPIC_ROOT}/+/+/set", qos=1)
                stored = (await self.registry.store.settings()).get(_PUBLISHED_SETTING) or []
                # Unknown payloads: whatever is still wanted is published again, the rest removed.
                self._configs = dict.fromkeys(stored, "")
                self._states = {}
                seen = self.registry.changes.version  # before publishing: miss no change
                await self.publish()
                await client.publish(PROXY_AVAILABILITY, "online", qos=1, retain=True)
                tasks = [
                    asyncio.create_task(self._follow_relay(seen), name="mqtt-states"),
                    asyncio.create_task(self._receive(client), name="mqtt-commands"),
                ]
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                    for task in done:
                        task.result()
                finally:
                    running = (*tasks, *self._commands)
                    for task in running:
                        task.cancel()
                    # Bounded: a command waiting for the charger must not hold up a shutdown.
                    await asyncio.wait(running, timeout=2)
            finally:
                # A clean stop says so itself; the last will is for a crash.
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(2):
                        await client.publish(PROXY_AVAILABILITY, "offline", qos=1, retain=True)
                self._client = None

    # -- states ----------------------------------------------------------------------------

    async def _follow_relay(self, seen: int) -> None:
        """Publish after every change of the relay (and every ``refresh_s``) since ``seen``."""
        changes = self.registry.changes
        while True:
            _raise_if_cancelled()
            with contextlib.suppress(TimeoutError):
                await changes.wait_for(lambda seen=seen: changes.version != seen, self.refresh_s)
            seen = changes.version
            await self.publish()

    async def publish(self, *, everything: bool = False) -> None:
        """Publish what changed (``everything``: all): configs, removals, availability, states."""
        async with self._publishing:
            if everything:
                self._configs = dict.fromkeys(self._configs, "")
                self._states = {}
            if self._client is not None:
                await self._publish(self._client)

    async def _publish(self, client: aiomqtt.Client) -> None:
        entities, availability = await self._entities()
        configs = {
            e.config_topic(self.prefix): json.dumps(discovery_payload(e), sort_keys=True)
            for e in entities
        }
        for topic, payload in configs.items():
            if self._configs.get(topic) != payload:
                await client.publish(topic, payload, qos=1, retain=True)
        for topic in self._configs.keys() - configs.keys():
            await client.publish(topic, b"", qos=1, retain=True)  # removes the entity
        if set(configs) != set(self._configs):
            await self.registry.store.set_setting(_PUBLISHED_SETTING, sorted(configs))
        self._configs = configs
        states = dict(availability)
        for entity in entities:
            if entity.state is not None and not entity.description.stateless:
                states[entity.topic("state")] = entity.state
        for topic, payload in states.items():
            if self._states.get(topic) != payload:
                await client.publish(topic, payload, qos=1, retain=True)
                self._states[topic] = payload

    async def _entities(self) -> tuple[list[Entity], dict[str, str]]:
        hubs = list(self.registry)
        # The charger records change on a boot or a new charger only: read them then.
        key = tuple((hub.id, id(hub.last_boot)) for hub in hubs)
        if key != self._rows_key:
            self._rows = {row.id: row for row in await self.registry.store.chargers()}
            self._rows_key = key
        entities = list(proxy_entities(self.registry))
        availability: dict[str, str] = {}
        currency = self._currency()
        for hub in hubs:
            device: Device = charger_device(hub, self._rows.get(hub.id))
            entities += charger_entities(hub, device, currency)
            availability[device.availability] = "online" if hub.charger else "offline"
        return entities, availability

    def _currency(self) -> str:
        backends = (*self.config.ocpp_services, *self.config.inbound_backends)
        priced = [b.currency for b in backends if b.rate_per_kwh > 0]
        return priced[0] if priced else self.config.home_currency

    # -- commands --------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            _raise_if_cancelled()
            topic = message.topic.value
            payload = _text(message.payload)
            if topic == f"{self.prefix}/status":
                if payload == "online":
                    _LOGGER.info("MQTT: Home Assistant (re)started; publishing the entities")
                    await self.publish(everything=True)
                continue
            parts = topic.split("/")
            if len(parts) == 4 and parts[0] == TOPIC_ROOT and parts[3] == "set":
                # Commands may wait for the charger: do not hold up the other messages.
                task = asyncio.create_task(self._command(parts[1], parts[2], payload))
                self._commands.add(task)
                task.add_done_callback(self._commands.discard)

    async def _command(self, node: str, key: str, payload: str) -> None:
        try:
            if node == PROXY_NODE:
                await self._proxy_command(key, payload)
                return
            hub = next((h for h in self.registry if node_id(h.id) == node), None)
            if hub is None:
                _LOGGER.warning("MQTT: command for unknown charger node %s", node)
            elif key == "stop_session":
                await self._stop_sessions(hub)
            elif key == "max_current":
                value = None if payload in (NONE, "") else float(payload)
                await settings.set_max_current(self.registry, value, actor=ACTOR)
            else:
                _LOGGER.warning("MQTT: no command %s on %s", key, node)
        except ValueError:
            _LOGGER.warning("MQTT: %s/%s: not a valid value: %r", node, key, payload)
        finally:
            # HA shows the state it gets back: also after a refused or invalid command. A
            # wake-up, not a publish here: nothing to await once the bridge is stopping.
            self.registry.changes.notify()

    async def _proxy_command(self, key: str, payload: str) -> None:
        if payload not in (ON, "OFF"):
            raise ValueError(payload)
        enabled = payload == ON
        if key == "override":
            await settings.set_override(self.registry, enabled, actor=ACTOR)
        elif key == "allow_shared_charging":
            await settings.set_shared_charging(self.registry, enabled, actor=ACTOR)
        else:
            _LOGGER.warning("MQTT: no command %s on the proxy", key)

    async def _stop_sessions(self, hub: ChargerHub) -> None:
        running = hub.sessions.running()
        if not running:
            _LOGGER.info("MQTT: stop pressed on %s, which has no running session", hub.id)
        for session in running:
            action, payload = build("stop", hub.version, {"transaction_id": session.transaction})
            result = await hub.homeowner_command(action, payload, actor=ACTOR)
            _LOGGER.info(
                "MQTT: %s of %s on %s: %s",
                action,
                session.transaction,
                hub.id,
                "accepted" if result.accepted else result.decision.reason or "not accepted",
            )


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation that was lost on the way.

    The client's exit can raise MqttError while the task is being cancelled, and Python 3.11's
    ``asyncio.wait_for`` (inside aiomqtt's publish) drops a cancellation that arrives as the
    awaited operation completes. Either would leave a loop running and the shutdown waiting.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _text(payload: Any) -> str:
    if isinstance(payload, bytes | bytearray):
        return payload.decode("utf-8", "replace").strip()
    return "" if payload is None else str(payload).strip()
