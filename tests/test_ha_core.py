"""Every MQTT discovery payload the proxy publishes, checked by Home Assistant Core's own code.

The proxy publishes to a real Mosquitto while chargers of each OCPP version run a session; the
payloads Home Assistant would receive are validated with the MQTT platform schemas of Home
Assistant Core (``tests/ha_core_check.py``, run with the Python of ``.venv-ha``). Core lives in
its own virtualenv because its release for the CI's Python 3.11 (2024.1) pins aiohttp 3.9,
cryptography 41, paho-mqtt 1.6 and others, which would otherwise replace what the proxy is
tested with. Then Core runs headless with its MQTT integration against the same broker, and
each entity must be in its entity registry and state machine with the payload's unit, device
class and state class.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ConnectCharger, StartProxy, service
from tests.mqtt_broker import MqttWatcher, free_port, mosquitto, watcher  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
CHECK = Path(__file__).with_name("ha_core_check.py")
RUN = Path(__file__).with_name("ha_core_run.py")


def ha_python() -> str | None:
    """The Python with Home Assistant Core installed: $OCPP_PROXY_HA_PYTHON, else .venv-ha's."""
    candidate = os.environ.get("OCPP_PROXY_HA_PYTHON") or str(ROOT / ".venv-ha" / "bin" / "python")
    if not Path(candidate).exists():
        return None
    found = subprocess.run(
        [candidate, "-c", "import homeassistant"], capture_output=True, timeout=120
    )
    return candidate if found.returncode == 0 else None


HA_PYTHON = ha_python()
needs_core = pytest.mark.skipif(
    HA_PYTHON is None,
    reason="Home Assistant Core is not installed: bash .ci/run installs it into .venv-ha "
    "(python3 -m venv .venv-ha && .venv-ha/bin/pip install -r tests/ha-core-requirements.txt; "
    "the pins are for Python 3.11, the CI's), or set OCPP_PROXY_HA_PYTHON to a Python that "
    "has it",
)


def validate(configs: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant Core's verdict on each discovery payload (see ha_core_check.py)."""
    assert HA_PYTHON is not None
    entries = [{"topic": topic, "payload": payload} for topic, payload in configs.items()]
    done = subprocess.run(
        [HA_PYTHON, str(CHECK)],
        input=json.dumps(entries),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_core
async def test_every_discovery_payload_passes_home_assistants_mqtt_schemas(
    mosquitto: int,  # noqa: F811
    watcher: MqttWatcher,  # noqa: F811
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
) -> None:
    csms16 = await start_csms("a", first_transaction_id=100)
    other = await start_csms("b", first_transaction_id=500)
    proxy = await start_proxy(
        # Two backends: the preferred provider becomes a select.
        ocpp_services=[service(csms16, rate_per_kwh=0.3), service(other)],
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto,
    )
    # A 1.6 charger and a 2.0.1 one, each through a whole session.
    cp16 = await connect_charger(proxy, "CP_1")
    await csms16.wait_connected("CP_1")
    await cp16.run_session(transactions=1, meter_samples=2)
    cp201 = await connect_charger(proxy, "CP_2", version="2.0.1")
    await cp201.run_session(transactions=1, meter_samples=2)
    for node, key in (
        ("ocpp_proxy_CP_1", "connector_1_status"),
        ("ocpp_proxy_CP_2", "evse_1_connector_1_status"),
    ):
        await watcher.wait_for(
            lambda n=node, k=key: any(f"/{n}/{k}/config" in t for t in watcher.configs())
        )
    configs = watcher.configs()
    components = {topic.split("/")[1] for topic in configs}
    assert {"sensor", "binary_sensor", "switch", "number", "button"} <= components
    assert {topic.split("/")[2] for topic in configs} >= {
        "ocpp_proxy",
        "ocpp_proxy_CP_1",
        "ocpp_proxy_CP_2",
    }

    verdict = await asyncio.to_thread(validate, configs)
    failures = [r for r in verdict["results"] if r["error"] or r["dropped"]]
    assert failures == [], f"Home Assistant {verdict['version']} refuses or ignores these"
    assert len(verdict["results"]) == len(configs)
    # Only keys newer than the installed Core are set aside, and only then.
    if verdict["version"].startswith("2024.1."):
        assert verdict["set_aside"] == ["device.serial_number", "sensor.options"]

    # Core itself, headless, against the same broker: every entity is made, with its unit,
    # device class and state class, and a state from the proxy's state topics. It reads the
    # payloads as checked (keys newer than this Core set aside: 2024.1 refuses a whole device
    # block with serial_number), under a discovery prefix of its own.
    checked = {r["topic"]: r["checked"] for r in verdict["results"]}
    for topic, payload in checked.items():
        await watcher.publish(
            topic.replace("homeassistant/", "core_test/", 1), json.dumps(payload), retain=True
        )
    payloads = {config["unique_id"]: config for config in configs.values()}
    entities = await asyncio.to_thread(run_core, mosquitto, "core_test", sorted(payloads))
    assert sorted(entities) == sorted(payloads)
    for unique_id, entity in entities.items():
        payload = payloads[unique_id]
        component = entity["entity_id"].split(".")[0]
        assert component == next(t for t, c in configs.items() if c is payload).split("/")[1]
        for key in ("unit_of_measurement", "device_class", "state_class"):
            if key in payload:
                assert entity.get(key) == payload[key], (unique_id, key, entity)
        assert entity["state"] not in (None, "unavailable"), (unique_id, entity)
        # The state Core shows is the one the proxy published ("None" reads as unknown).
        published = watcher.text(payload["state_topic"]) if "state_topic" in payload else None
        if published is None:
            continue
        if component in ("switch", "binary_sensor"):
            assert entity["state"] == published.lower(), (unique_id, published, entity)
        elif published == "None":
            assert entity["state"] == "unknown", (unique_id, entity)
        elif component == "sensor" and "unit_of_measurement" in payload:
            assert float(entity["state"]) == pytest.approx(float(published)), (unique_id, entity)
        else:
            assert entity["state"] == published, (unique_id, published, entity)
    power = entities["ocpp_proxy_CP_1_power"]
    assert (power["unit_of_measurement"], power["device_class"], power["state_class"]) == (
        "W",
        "power",
        "measurement",
    )
    energy = entities["ocpp_proxy_CP_1_session_energy"]
    assert (energy["unit_of_measurement"], energy["device_class"]) == ("kWh", "energy")
    assert energy["state_class"] == "total_increasing"


def run_core(broker_port: int, prefix: str, unique_ids: list[str]) -> dict[str, Any]:
    """Home Assistant Core's entities for ``unique_ids`` after MQTT discovery (ha_core_run.py)."""
    assert HA_PYTHON is not None
    done = subprocess.run(
        [HA_PYTHON, str(RUN), str(broker_port), str(free_port()), "60", prefix],
        input=json.dumps(unique_ids),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@needs_core
def test_the_check_does_refuse_a_wrong_payload() -> None:
    good = {
        "name": "Power",
        "unique_id": "n_power",
        "state_topic": "ocpp_proxy/n/power/state",
        "device_class": "power",
        "state_class": "measurement",
        "unit_of_measurement": "W",
        "device": {"identifiers": ["n"], "name": "CP"},
    }
    verdict = validate(
        {
            "homeassistant/sensor/n/power/config": good,
            "homeassistant/sensor/n/bad/config": {**good, "state_class": "sometimes"},
            "homeassistant/sensor/n/odd/config": {**good, "colour": "red"},
        }
    )
    good_result, bad_result, odd_result = verdict["results"]
    assert good_result == {
        "topic": "homeassistant/sensor/n/power/config",
        "error": None,
        "dropped": [],
        "checked": good,
    }
    assert "state_class" in bad_result["error"]
    assert odd_result["dropped"] == ["colour"]
