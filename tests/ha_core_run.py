"""Run Home Assistant Core headless with its MQTT integration, and report what it made.

Run with the Python of ``.venv-ha``: ``ha_core_run.py BROKER_PORT HTTP_PORT TIMEOUT_S PREFIX``
with the discovery payloads' unique ids on stdin (a JSON list). Core starts in a temporary config
folder, its MQTT integration connects to the broker on 127.0.0.1 with discovery on under
``PREFIX``, and once every unique
id is an available entity (or the time is up) it prints ``{unique_id: {"entity_id", "state", attributes}}``
as JSON and stops. Its HTTP server (which the MQTT integration depends on) listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

# As in ha_core_check.py: the helpers first, or the integrations' imports run into a circle.
import homeassistant.helpers.entity_platform  # noqa: F401
from homeassistant import auth, bootstrap, config_entries, core, loader
from homeassistant.helpers import entity_registry
from homeassistant.setup import async_setup_component


async def run(
    config_dir: str,
    broker_port: int,
    http_port: int,
    prefix: str,
    unique_ids: list[str],
    timeout_s: float,
) -> None:
    """Start Core, let MQTT discovery make the entities, print them, stop."""
    hass = core.HomeAssistant(config_dir)
    hass.config.skip_pip = True  # the integrations' requirements are installed beforehand
    loader.async_setup(hass)
    hass.auth = await auth.auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    await bootstrap.load_registries(hass)
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    assert await async_setup_component(hass, "homeassistant", {})
    http = {"server_host": ["127.0.0.1"], "server_port": http_port}
    assert await async_setup_component(hass, "http", {"http": http})
    await hass.async_start()
    entry = config_entries.ConfigEntry(
        version=1,
        minor_version=1,
        domain="mqtt",
        title="Mosquitto",
        data={
            "broker": "127.0.0.1",
            "port": broker_port,
            "discovery": True,
            "discovery_prefix": prefix,
        },
        source="user",
    )
    await hass.config_entries.async_add(entry)
    registry = entity_registry.async_get(hass)
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = {}
        for entity in registry.entities.values():
            if entity.platform == "mqtt" and entity.unique_id in unique_ids:
                state = hass.states.get(entity.entity_id)
                found[entity.unique_id] = {
                    "entity_id": entity.entity_id,
                    "state": state.state if state else None,
                    **({k: str(v) for k, v in state.attributes.items()} if state else {}),
                }
        # Each entity made, and past its first availability message.
        if len(found) == len(unique_ids) and all(
            entity["state"] not in (None, "unavailable") for entity in found.values()
        ):
            break
        await asyncio.sleep(0.2)
    json.dump(found, sys.stdout)
    await hass.async_stop()


def main() -> int:
    """Command line: broker port, HTTP port, timeout (s), prefix; unique ids on stdin."""
    broker_port, http_port, timeout_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    prefix = sys.argv[4]
    config_dir = tempfile.mkdtemp(prefix="ha-core-")
    with open(os.path.join(config_dir, "configuration.yaml"), "w", encoding="utf-8") as file:
        file.write("homeassistant:\n  name: ocpp-proxy test\n")
    unique_ids = json.load(sys.stdin)
    asyncio.run(run(config_dir, broker_port, http_port, prefix, unique_ids, timeout_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
