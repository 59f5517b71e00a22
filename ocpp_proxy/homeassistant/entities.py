"""What the proxy shows in Home Assistant: entity descriptions and their current states.

Descriptions are frozen dataclasses turned into MQTT discovery payloads by
:func:`discovery_payload`; :func:`charger_entities` and :func:`proxy_entities` give each
entity with its state now. Names follow Home Assistant's ``has_entity_name`` style ("Power"
under a device named after the charger); units, device and state classes as HA expects them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from ocpp_proxy import __version__
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store.rows import ChargerRow

#: The prefix of every topic the proxy owns (states, commands, availability).
TOPIC_ROOT: Final = "ocpp_proxy"
#: The proxy's own availability topic; its MQTT last will sets it "offline".
PROXY_AVAILABILITY: Final = f"{TOPIC_ROOT}/status"
PROXY_NODE: Final = "ocpp_proxy"
ORIGIN: Final = {
    "name": "ocpp-proxy",
    "sw_version": __version__,
    "support_url": "https://github.com/ocpp-proxy/ocpp-proxy",
}
ON, OFF, PRESS = "ON", "OFF", "PRESS"
#: No value (HA's MQTT number and sensor reset to unknown on this payload).
NONE: Final = "None"

#: Connector states of OCPP 1.6 (ChargePointStatus) and 2.x (ConnectorStatusEnumType).
CONNECTOR_STATES: Final = (
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
    "Occupied",
)


@dataclass(frozen=True, slots=True)
class EntityDescription:
    """One entity: its MQTT component, name and the HA attributes that do not change.

    ``key`` becomes the object id (and part of the unique id); ``command`` says whether HA
    sends commands to it (switch, number, button, select).
    """

    key: str
    component: str  # sensor | binary_sensor | switch | number | button | select
    name: str
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    icon: str | None = None
    entity_category: str | None = None  # None | "config" | "diagnostic"
    options: tuple[str, ...] = ()  # enum sensor, select
    minimum: float | None = None  # number
    maximum: float | None = None
    step: float | None = None
    precision: int | None = None  # suggested_display_precision

    @property
    def command(self) -> bool:
        """Whether Home Assistant sends commands to this entity."""
        return self.component in ("switch", "number", "button", "select")

    @property
    def stateless(self) -> bool:
        """Buttons have no state."""
        return self.component == "button"


@dataclass(frozen=True, slots=True)
class Device:
    """A Home Assistant device: the proxy, or one charger behind it."""

    node: str  # the discovery node id; also the device identifier
    name: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    sw_version: str | None = None
    via: str | None = None
    availability: str = PROXY_AVAILABILITY  # the device's own availability topic

    def block(self) -> dict[str, Any]:
        """The ``device`` block of a discovery payload."""
        block: dict[str, Any] = {"identifiers": [self.node], "name": self.name}
        for key, value in (
            ("manufacturer", self.manufacturer),
            ("model", self.model),
            ("serial_number", self.serial),
            ("sw_version", self.sw_version),
            ("via_device", self.via),
        ):
            if value:
                block[key] = value
        return block


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity of a device with its state now (None: no state to publish now)."""

    device: Device
    description: EntityDescription
    state: str | None

    @property
    def unique_id(self) -> str:
        """Stable across restarts: the device's node and the entity's key."""
        return f"{self.device.node}_{self.description.key}"

    def topic(self, kind: str) -> str:
        """The entity's ``state`` or ``set`` (command) topic."""
        return f"{TOPIC_ROOT}/{self.device.node}/{self.description.key}/{kind}"

    def config_topic(self, prefix: str) -> str:
        """Where its discovery config goes: ``<prefix>/<component>/<node>/<object>/config``."""
        d = self.description
        return f"{prefix}/{d.component}/{self.device.node}/{d.key}/config"


def node_id(charge_point_id: str) -> str:
    """The discovery node id (and device identifier) of a charger: ``ocpp_proxy_<id>``."""
    return f"{PROXY_NODE}_{slug(charge_point_id)}"


def slug(text: str) -> str:
    """``text`` with every character a discovery topic id may not hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def discovery_payload(entity: Entity) -> dict[str, Any]:
    """The MQTT discovery config of an entity, in HA's full (not abbreviated) key names."""
    d = entity.description
    availability = [{"topic": PROXY_AVAILABILITY}]
    if entity.device.availability != PROXY_AVAILABILITY:
        availability.append({"topic": entity.device.availability})
    payload: dict[str, Any] = {
        "name": d.name,
        "unique_id": entity.unique_id,
        "device": entity.device.block(),
        "origin": ORIGIN,
        "availability": availability,
        "availability_mode": "all",
    }
    if not d.stateless:
        payload["state_topic"] = entity.topic("state")
    if d.command:
        payload["command_topic"] = entity.topic("set")
    for key, value in (
        ("device_class", d.device_class),
        ("state_class", d.state_class),
        ("unit_of_measurement", d.unit),
        ("icon", d.icon),
        ("entity_category", d.entity_category),
        ("min", d.minimum),
        ("max", d.maximum),
        ("step", d.step),
        ("suggested_display_precision", d.precision),
    ):
        if value is not None:
            payload[key] = value
    if d.options:
        payload["options"] = list(d.options)
    if d.component in ("switch", "binary_sensor"):
        payload.update(payload_on=ON, payload_off=OFF)
    if d.component == "switch":
        payload.update(state_on=ON, state_off=OFF)
    if d.component == "button":
        payload["payload_press"] = PRESS
    if d.component == "number":
        payload["mode"] = "box"
    return payload


# -- the charger's entities ------------------------------------------------------------------

POWER = EntityDescription("power", "sensor", "Power", "power", "measurement", "W", precision=0)
CURRENT = EntityDescription(
    "current", "sensor", "Current", "current", "measurement", "A", precision=1
)
SESSION_ENERGY = EntityDescription(
    "session_energy", "sensor", "Session energy", "energy", "total_increasing", "kWh", precision=2
)
TOTAL_ENERGY = EntityDescription(
    "total_energy", "sensor", "Total energy", "energy", "total_increasing", "kWh", precision=1
)
SESSION_DURATION = EntityDescription(
    "session_duration",
    "sensor",
    "Session duration",
    "duration",
    "measurement",
    "min",
    precision=0,
)
SESSION_OWNER = EntityDescription(
    "session_owner", "sensor", "Session owner", icon="mdi:account-cash"
)
STOP = EntityDescription("stop_session", "button", "Stop session", icon="mdi:stop-circle")
MAX_CURRENT = EntityDescription(
    "max_current",
    "number",
    "Max current",
    "current",
    unit="A",
    entity_category="config",
    minimum=0,
    maximum=80,
    step=1,
)


def session_revenue(currency: str) -> EntityDescription:
    """The running session's revenue, in the currency of the backends' tariffs."""
    return EntityDescription(
        "session_revenue", "sensor", "Session revenue", "monetary", "total", currency, precision=2
    )


def connector_status(key: str, name: str) -> EntityDescription:
    """The status of one connector (or EVSE), as an enum sensor."""
    return EntityDescription(
        key, "sensor", name, "enum", icon="mdi:ev-plug-type2", options=CONNECTOR_STATES
    )


def charger_device(hub: ChargerHub, row: ChargerRow | None) -> Device:
    """A charger's device: what its BootNotification said, via the proxy's device."""
    node = node_id(hub.id)
    return Device(
        node,
        hub.id,
        manufacturer=row.vendor if row else None,
        model=row.model if row else None,
        serial=row.serial if row else None,
        sw_version=row.firmware if row else None,
        via=PROXY_NODE,
        availability=f"{TOPIC_ROOT}/{node}/availability",
    )


def charger_entities(hub: ChargerHub, device: Device, currency: str) -> list[Entity]:
    """A charger's entities with their states now."""
    entities: list[Entity] = []
    for entry in hub.connectors.values():
        key, name = _connector_naming(entry)
        status = entry.get("status")
        state = status if status in CONNECTOR_STATES else None
        entities.append(Entity(device, connector_status(key, name), state))
    running = hub.sessions.running()
    live = [hub.sessions.live[s.transaction] for s in running if s.transaction in hub.sessions.live]
    first = running[0] if running else None
    meter = live[0] if live else None

    def number(value: float | None, digits: int) -> str | None:
        return None if value is None else str(round(value, digits))

    power = sum(m.power_w or 0.0 for m in live) if running else 0.0
    current = max((m.current_a or 0.0 for m in live), default=0.0) if running else 0.0
    energy = meter.session_energy_kwh if meter else None
    total = meter.energy_wh / 1000 if meter and meter.energy_wh is not None else None
    owner = (first.owner or "unknown") if first else "none"
    duration = (time.time() - meter.started_at) / 60 if meter else (0.0 if not running else None)
    revenue: float | None = None
    if first and energy is not None:
        rate = hub.sessions.tariffs.get(first.owner or "", (0.0, currency))[0]
        revenue = energy * rate
    limit = hub.home.max_current_a
    entities += [
        Entity(device, POWER, number(power, 1)),
        Entity(device, CURRENT, number(current, 2)),
        Entity(device, SESSION_ENERGY, number(energy, 3)),
        Entity(device, TOTAL_ENERGY, number(total, 3)),
        Entity(device, SESSION_DURATION, number(duration, 1)),
        Entity(device, SESSION_OWNER, owner),
        Entity(device, session_revenue(currency), number(revenue, 2)),
        Entity(device, STOP, None),
        Entity(device, MAX_CURRENT, NONE if limit is None else number(limit, 1)),
    ]
    return entities


def _connector_naming(entry: dict[str, Any]) -> tuple[str, str]:
    evse, connector = entry.get("evse_id"), entry.get("connector_id")
    if evse is not None:  # OCPP 2.x: EVSE and connector
        suffix = f"evse_{evse}" + (f"_connector_{connector}" if connector is not None else "")
        label = f"EVSE {evse}" + (f" connector {connector}" if connector is not None else "")
        return f"{suffix}_status", f"{label} status"
    if not connector:
        return "status", "Status"  # OCPP 1.6 connector 0: the whole charge point
    return f"connector_{connector}_status", f"Connector {connector} status"


# -- the proxy's entities --------------------------------------------------------------------

PROXY_DEVICE: Final = Device(
    PROXY_NODE, "OCPP Proxy", manufacturer="ocpp-proxy", model="OCPP proxy", sw_version=__version__
)
SHARED_CHARGING = EntityDescription(
    "allow_shared_charging", "switch", "Allow shared charging", icon="mdi:share-variant"
)
OVERRIDE = EntityDescription("override", "switch", "Override", icon="mdi:shield-home")
PREFERRED_PROVIDER = EntityDescription(
    "preferred_provider",
    "sensor",
    "Preferred provider",
    icon="mdi:star",
    entity_category="diagnostic",
)
#: On while the proxy's store fails (writes refused): transaction messages may be at risk.
STORE_PROBLEM = EntityDescription(
    "store_problem",
    "binary_sensor",
    "Store problem",
    "problem",
    entity_category="diagnostic",
)


def backend_connected(backend_id: str) -> EntityDescription:
    """Whether a backend's link is up (for any charger)."""
    return EntityDescription(
        f"backend_{slug(backend_id)}_connected",
        "binary_sensor",
        f"{backend_id} connected",
        "connectivity",
        entity_category="diagnostic",
    )


def backend_outbox(backend_id: str) -> EntityDescription:
    """How many messages wait for a backend (all chargers)."""
    return EntityDescription(
        f"backend_{slug(backend_id)}_outbox",
        "sensor",
        f"{backend_id} outbox",
        None,
        "measurement",
        "messages",
        icon="mdi:tray-full",
        entity_category="diagnostic",
    )


def proxy_entities(registry: HubRegistry) -> Iterator[Entity]:
    """The proxy's own entities with their states now."""
    config, home = registry.config, registry.home
    shared = getattr(home, "shared_charging_allowed", None)
    allowed = shared(config.allow_shared_charging) if shared else config.allow_shared_charging
    yield Entity(PROXY_DEVICE, SHARED_CHARGING, ON if allowed else OFF)
    yield Entity(PROXY_DEVICE, OVERRIDE, ON if home.override_api else OFF)
    yield Entity(PROXY_DEVICE, PREFERRED_PROVIDER, config.preferred_provider or "first connected")
    yield Entity(PROXY_DEVICE, STORE_PROBLEM, OFF if registry.health.ok else ON)
    hubs = list(registry)
    for backend_id in config.backend_ids:
        links = [hub.links[backend_id] for hub in hubs if backend_id in hub.links]
        connected = any(link.connected for link in links)
        depth = sum(link.queue_depth for link in links)
        yield Entity(PROXY_DEVICE, backend_connected(backend_id), ON if connected else OFF)
        yield Entity(PROXY_DEVICE, backend_outbox(backend_id), str(depth))
