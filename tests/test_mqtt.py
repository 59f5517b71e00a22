"""Home Assistant entities through MQTT discovery, against a real Mosquitto broker.

The charger and the CSMS are real OCPP peers; the watcher is a plain MQTT client that sees
what Home Assistant would see, and sends what Home Assistant would send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from ocpp.v16 import call as call16

from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.mqtt_broker import MqttWatcher, free_port, mosquitto, watcher  # noqa: F401
from tests.peers import Csms

PREFIX = "homeassistant"
PROXY_STATUS = "ocpp_proxy/status"
NODE = "ocpp_proxy_CP_1"
START = call16.RemoteStartTransaction(id_tag="APP", connector_id=1)

#: Keys HA's MQTT integration requires (or the proxy always sends) per component.
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic", "payload_on", "payload_off"},
    "switch": {"state_topic", "command_topic", "payload_on", "payload_off"},
    "number": {"state_topic", "command_topic", "min", "max", "step"},
    "button": {"command_topic", "payload_press"},
    "select": {"state_topic", "command_topic", "options"},
}


def state(key: str, node: str = NODE) -> str:
    return f"ocpp_proxy/{node}/{key}/state"


def command(key: str, node: str = NODE) -> str:
    return f"ocpp_proxy/{node}/{key}/set"


@pytest.fixture
async def house(
    mosquitto: int,  # noqa: F811
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
) -> Any:
    """A CSMS paying 0.30 EUR/kWh, the proxy publishing to the broker, a booted charger."""

    async def make(**options: Any) -> tuple[Csms, Proxy, Any]:
        csms = await start_csms("a", first_transaction_id=100)
        proxy = await start_proxy(
            ocpp_services=[service(csms, rate_per_kwh=0.3)],
            mqtt_host="127.0.0.1",
            mqtt_port=mosquitto,
            **options,
        )
        charger = await connect_charger(proxy)
        await charger.boot()
        await charger.status(1, "Available")
        await csms.wait_connected("CP_1")
        return csms, proxy, charger

    return make


async def test_discovery_is_valid_for_home_assistant(
    house: Any,
    watcher: MqttWatcher,  # noqa: F811
) -> None:
    _csms, proxy, charger = await house()
    await watcher.wait_value(PROXY_STATUS, "online")
    await watcher.wait_value(state("connector_1_status"), "Available")
    await watcher.wait_value(f"ocpp_proxy/{NODE}/availability", "online")
    # The device's maker and model come from the charger's record, written behind its boot.
    power_topic = f"{PREFIX}/sensor/{NODE}/power/config"
    await watcher.wait_for(
        lambda: "manufacturer" in (watcher.json(power_topic) or {}).get("device", {})
    )
    configs = watcher.configs()
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for topic, config in configs.items():
        prefix, component, node, object_id, _ = topic.split("/")
        assert prefix == PREFIX
        assert REQUIRED[component] <= set(config), (topic, REQUIRED[component] - set(config))
        assert config["name"] and config["unique_id"].startswith(node)
        assert config["device"]["identifiers"] == [node]
        assert config["origin"]["name"] == "ocpp-proxy" and config["origin"]["sw_version"]
        assert {"topic": PROXY_STATUS} in config["availability"]
        for key in ("state_topic", "command_topic"):
            if key in config:
                assert config[key].startswith(f"ocpp_proxy/{node}/{object_id}/"), config[key]
        if config.get("device_class") == "enum":
            assert "Available" in config["options"]
    keys = {topic.split("/")[3] for topic in configs}
    assert {
        "connector_1_status",
        "power",
        "current",
        "session_energy",
        "total_energy",
        "session_duration",
        "session_owner",
        "session_revenue",
        "stop_session",
        "max_current",
        "allow_shared_charging",
        "override",
        "preferred_provider",
        "backend_a_connected",
        "backend_a_outbox",
    } <= keys
    power = configs[f"{PREFIX}/sensor/{NODE}/power/config"]
    assert (power["device_class"], power["state_class"], power["unit_of_measurement"]) == (
        "power",
        "measurement",
        "W",
    )
    energy = configs[f"{PREFIX}/sensor/{NODE}/session_energy/config"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",
        "kWh",
    )
    device = power["device"]
    assert (device["manufacturer"], device["model"], device["serial_number"]) == (
        "ocpp-proxy",
        "SimulatedCharger",
        "SIM-0001",
    )
    assert device["sw_version"] == "0.1.0" and device["via_device"] == "ocpp_proxy"
    assert {"topic": f"ocpp_proxy/{NODE}/availability"} in power["availability"]
    await watcher.wait_value(state("backend_a_connected", "ocpp_proxy"), "ON")

    # Home Assistant restarts: it announces itself and gets every config again.
    seen = watcher.counts[f"{PREFIX}/sensor/{NODE}/power/config"]
    await watcher.publish(f"{PREFIX}/status", "online")
    await watcher.wait_for(lambda: watcher.counts[f"{PREFIX}/sensor/{NODE}/power/config"] > seen)

    # The charger goes away: its entities become unavailable, the proxy's stay.
    await charger.close()
    await watcher.wait_value(f"ocpp_proxy/{NODE}/availability", "offline")
    assert watcher.text(PROXY_STATUS) == "online"

    # A clean stop says offline itself.
    await proxy.stop()
    await watcher.wait_value(PROXY_STATUS, "offline")


async def test_states_follow_a_session(house: Any, watcher: MqttWatcher) -> None:  # noqa: F811
    csms, _proxy, charger = await house()
    await watcher.wait_value(state("power"), "0.0")
    assert (await csms.call("CP_1", START)).status == "Accepted"
    await charger.wait_for_command("RemoteStartTransaction")
    await charger.wait_background()
    tx = charger.transaction_id
    await watcher.wait_value(state("session_owner"), "a")
    await charger.meter_values(1, tx, charger.energy_wh + 1500, 7400)
    await watcher.wait_value(state("power"), "7400.0")
    await watcher.wait_value(state("session_energy"), "1.5")
    await watcher.wait_value(state("session_revenue"), "0.45")
    assert float(watcher.text(state("total_energy")) or 0) > 0
    await charger.meter_values(1, tx, charger.energy_wh + 1000, 3700)
    await watcher.wait_value(state("session_energy"), "2.5")
    assert watcher.text(state("power")) == "3700.0"
    await charger.stop_transaction(tx)
    await watcher.wait_value(state("power"), "0.0")
    await watcher.wait_value(state("session_owner"), "none")
    assert watcher.text(state("session_energy")) == "2.5"  # the last session's, kept


async def test_switches_number_and_button_act_as_the_homeowner(
    house: Any,
    watcher: MqttWatcher,  # noqa: F811
) -> None:
    csms, proxy, charger = await house(max_current_a=16)
    override = state("override", "ocpp_proxy")
    await watcher.wait_value(override, "OFF")

    await watcher.publish(command("override", "ocpp_proxy"), "ON")
    await watcher.wait_value(override, "ON")
    assert proxy.registry.home.override_api is True
    assert (await csms.call("CP_1", START)).status == "Rejected"
    audit = await proxy.registry.store.audit_entries("CP_1", limit=1)
    assert (audit[0].actor, audit[0].rule) == ("a", "override")
    await watcher.publish(command("override", "ocpp_proxy"), "OFF")
    await watcher.wait_value(override, "OFF")

    # Max current: the charger holds the new charger-wide limit.
    await watcher.publish(command("max_current"), "10")
    await watcher.wait_value(state("max_current"), "10.0")

    def held_limit() -> float | None:
        profile = charger.charging_profiles.get(("ChargePointMaxProfile", 10))
        return profile and profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]

    await proxy.registry.changes.wait_for(lambda: held_limit() == 10.0, 10)

    # Stop: the charger is asked to stop the running session, as the homeowner.
    assert (await csms.call("CP_1", START)).status == "Accepted"
    await charger.wait_for_command("RemoteStartTransaction")
    await charger.wait_background()
    await watcher.wait_value(state("session_owner"), "a")
    running = int(proxy.hub().sessions.running()[0].transaction)
    await watcher.publish(command("stop_session"), "PRESS")
    stop = await charger.wait_for_command("RemoteStopTransaction")
    assert stop["transactionId"] == running
    # The charger answered, then stopped: by then the proxy has logged the command.
    await watcher.wait_value(state("session_owner"), "none")
    entries = await proxy.registry.store.audit_entries("CP_1", limit=20)
    assert [(e.action, e.decision) for e in entries if e.actor == "home_assistant"] == [
        ("RemoteStopTransaction", "allowed")
    ]
    actions = {e.action for e in await proxy.registry.store.audit_entries(None, limit=50)}
    assert {"SetOverride", "SetMaxCurrent"} <= actions


async def test_shared_charging_switch(house: Any, watcher: MqttWatcher) -> None:  # noqa: F811
    csms, proxy, _charger = await house()
    topic = state("allow_shared_charging", "ocpp_proxy")
    await watcher.wait_value(topic, "ON")
    await watcher.publish(command("allow_shared_charging", "ocpp_proxy"), "OFF")
    await watcher.wait_value(topic, "OFF")
    assert (await csms.call("CP_1", START)).status == "Rejected"
    audit = await proxy.registry.store.audit_entries("CP_1", limit=1)
    assert audit[0].rule == "shared_charging_off"


async def test_without_a_broker_the_proxy_runs_and_says_so(start_proxy: StartProxy) -> None:
    said = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Listener(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "MQTT broker" in record.getMessage() and "without Home Assistant" in (
                record.getMessage()
            ):
                loop.call_soon_threadsafe(said.set)

    listener = Listener(logging.WARNING)
    logger = logging.getLogger("ocpp_proxy.homeassistant.mqtt")
    logger.addHandler(listener)
    try:
        proxy = await start_proxy(mqtt_host="127.0.0.1", mqtt_port=free_port())
        await asyncio.wait_for(said.wait(), 10)
    finally:
        logger.removeHandler(listener)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{proxy.port}/health") as response,
    ):
        assert response.status == 200


async def test_last_will_says_offline_when_the_proxy_dies(
    mosquitto: int,  # noqa: F811
    watcher: MqttWatcher,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"mqtt_host": "127.0.0.1", "mqtt_port": mosquitto}))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocpp_proxy",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        env={**os.environ, "SUPERVISOR_TOKEN": ""},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await watcher.wait_value(PROXY_STATUS, "online", timeout=20)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        await watcher.wait_value(PROXY_STATUS, "offline")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_201_session_states_and_stop(
    mosquitto: int,  # noqa: F811
    watcher: MqttWatcher,  # noqa: F811
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
) -> None:
    csms = await start_csms("a", "2.0.1")
    proxy = await start_proxy(
        ocpp_version="2.0.1",
        ocpp_services=[service(csms)],
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto,
    )
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    await charger.status(1, "Available")
    await watcher.wait_value(state("evse_1_connector_1_status"), "Available")
    tx = await charger.start_transaction(1, "TAG", 10_000)
    await charger.meter_values(1, tx, 10_800, 11_000)
    await watcher.wait_value(state("power"), "11000.0")
    await watcher.wait_value(state("session_energy"), "0.8")
    await watcher.publish(command("stop_session"), "PRESS")
    stop = await charger.wait_for_command("RequestStopTransaction")
    assert stop["transactionId"] == tx


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_power_per_phase_shows_the_same_watts_on_the_page_and_in_home_assistant(
    version: str,
    mosquitto: int,  # noqa: F811
    watcher: MqttWatcher,  # noqa: F811
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
) -> None:
    csms = await start_csms("a", version)
    proxy = await start_proxy(
        ocpp_version=version,
        ocpp_services=[service(csms)],
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto,
    )
    charger = await connect_charger(proxy, version=version)
    charger.phases = 3  # Power.Active.Import on L1, L2, L3: 2,300 W each
    await charger.boot()
    await charger.status(1, "Available")
    await csms.wait_connected("CP_1")
    tx = await charger.start_transaction(1, "TAG", 10_000)
    await charger.meter_values(1, tx, 10_500, 6_900)
    await watcher.wait_value(state("power"), "6900.0")
    await watcher.wait_value(state("session_energy"), "0.5")
    live = (await proxy.get_json("/api/v1/live"))["sessions"]
    assert [(s["power_w"], s["energy_kwh"]) for s in live] == [(6900.0, 0.5)]
    assert live[0]["power_series"][-1][1] == 6900.0
    session = await proxy.get_json(f"/api/v1/sessions/{live[0]['session_id']}")
    assert (session["power_w"], session["energy_so_far_kwh"]) == (6900.0, 0.5)


async def test_settings_changed_over_rest_are_audited_like_those_from_home_assistant(
    house: Any,
    watcher: MqttWatcher,  # noqa: F811
) -> None:
    _csms, proxy, _charger = await house()
    override = state("override", "ocpp_proxy")
    shared = state("allow_shared_charging", "ocpp_proxy")
    await watcher.wait_value(override, "OFF")

    # Over REST, as the homeowner.
    assert (await proxy.post_json("/api/v1/override", {"enabled": True}))[0] == 200
    assert (await proxy.post_json("/api/v1/max_current", {"max_current_a": 10}))[0] == 200
    assert (await proxy.post_json("/api/v1/shared_charging", {"enabled": False}))[0] == 200
    # From Home Assistant: each state comes back once the change took effect.
    await watcher.publish(command("override", "ocpp_proxy"), "OFF")
    await watcher.wait_value(override, "OFF")
    await watcher.publish(command("max_current"), "12")
    await watcher.wait_value(state("max_current"), "12.0")
    await watcher.publish(command("allow_shared_charging", "ocpp_proxy"), "ON")
    await watcher.wait_value(shared, "ON")

    entries = (await proxy.get_json("/api/v1/audit?limit=50"))["entries"]
    settings = [
        (e["actor"], e["action"], json.loads(e["summary"]), e["decision"], e["charge_point_id"])
        for e in reversed(entries)
        if e["action"] in ("SetOverride", "SetMaxCurrent", "SetSharedCharging")
    ]
    assert settings == [
        ("homeowner", "SetOverride", {"enabled": True}, "allowed", None),
        ("homeowner", "SetMaxCurrent", {"max_current_a": 10.0}, "allowed", None),
        ("homeowner", "SetSharedCharging", {"enabled": False}, "allowed", None),
        ("home_assistant", "SetOverride", {"enabled": False}, "allowed", None),
        ("home_assistant", "SetMaxCurrent", {"max_current_a": 12.0}, "allowed", None),
        ("home_assistant", "SetSharedCharging", {"enabled": True}, "allowed", None),
    ]
