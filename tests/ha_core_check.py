"""Validate MQTT discovery payloads with Home Assistant Core's own MQTT platform schemas.

Run with the Python that has ``homeassistant`` installed (``.venv-ha``, see .ci/run): reads
``[{"topic": ..., "payload": {...}}, ...]`` on stdin, writes ``{"version", "set_aside",
"results"}`` on stdout, where each result has the topic, the schema's error (or null) and the
keys Home Assistant would silently drop. Keys newer than the installed release are set aside
first (``device.serial_number`` arrived in 2024.2, a sensor's ``options`` in 2024.9) and listed
in ``set_aside``.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

# Importing the platform modules directly needs Home Assistant's helpers loaded first (their
# import order otherwise runs into a circle in websocket_api/http).
import homeassistant.helpers.entity_platform  # noqa: F401
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION

#: Device keys and the first release whose MQTT schema knows them.
NEWER_DEVICE_KEYS = {"serial_number": "2024.2.0"}
#: Keys of a component's payload and the first release whose MQTT schema knows them.
NEWER_KEYS = {("sensor", "options"): "2024.9.0"}


def main() -> int:
    """Validate the payloads on stdin; print the results as JSON."""
    from homeassistant.components.mqtt.mixins import MQTT_ORIGIN_INFO_SCHEMA

    entries = json.load(sys.stdin)
    set_aside: set[str] = set()
    results: list[dict[str, Any]] = []
    for entry in entries:
        topic, payload = entry["topic"], dict(entry["payload"])
        component = topic.split("/")[1]
        device = dict(payload.get("device", {}))
        for key, since in NEWER_DEVICE_KEYS.items():
            if key in device and AwesomeVersion(HA_VERSION) < AwesomeVersion(since):
                del device[key]
                set_aside.add(f"device.{key}")
        if device:
            payload["device"] = device
        for (kind, key), since in NEWER_KEYS.items():
            if kind == component and key in payload and AwesomeVersion(HA_VERSION) < since:
                del payload[key]
                set_aside.add(f"{kind}.{key}")
        error, dropped = None, []
        try:
            if "origin" in payload:
                MQTT_ORIGIN_INFO_SCHEMA(payload["origin"])
            platform = importlib.import_module(f"homeassistant.components.mqtt.{component}")
            validated = platform.DISCOVERY_SCHEMA(payload)
            dropped = sorted(set(payload) - set(validated) - {"origin"})
        except Exception as err:  # a vol.Invalid, or the platform is unknown
            error = f"{type(err).__name__}: {err}"
        results.append({"topic": topic, "error": error, "dropped": dropped, "checked": payload})
    json.dump(
        {"version": HA_VERSION, "set_aside": sorted(set_aside), "results": results}, sys.stdout
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
