"""One reconnect backoff for the upstream, Home Assistant and MQTT clients, on a manual clock.

The Home Assistant client runs against the stand-in for Home Assistant's WebSocket API, the MQTT
bridge against a real Mosquitto; time moves only when the test advances the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ocpp_proxy.backoff import Backoff
from ocpp_proxy.clock import ManualClock
from ocpp_proxy.config import parse_config
from ocpp_proxy.homeassistant.client import HomeAssistantReader, endpoint
from ocpp_proxy.homeassistant.mqtt import MqttBridge
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store import Store
from tests.conftest import ConnectCharger, StartProxy, service
from tests.fake_home_assistant import FakeHomeAssistant
from tests.mqtt_broker import MOSQUITTO, MqttWatcher, free_port

PRESENCE = "person.me"


async def test_waits_double_with_jitter_up_to_the_cap_and_start_over_after_a_stable_link() -> None:
    clock = ManualClock()
    backoff = Backoff(1.0, 2.0, 60.0, jitter=0.5, stable_after_s=30.0, clock=clock)
    waits = [backoff.next_delay() for _ in range(10)]
    ceilings = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling, (wait, ceiling)
    # A connection that dropped within 30 s keeps the waits long ...
    backoff.connected()
    assert backoff.next_delay() >= 30
    # ... one that held 30 s starts them over.
    backoff.connected()
    await clock.step(30)
    assert backoff.next_delay() <= 1.0
    assert 1.0 <= backoff.next_delay() <= 2.0


def test_the_jitter_spreads_the_waits_and_never_exceeds_the_delay() -> None:
    waits = {Backoff(rng=random.Random(seed)).next_delay() for seed in range(50)}
    assert len(waits) == 50 and all(0.5 <= w <= 1.0 for w in waits)
    assert max(waits) - min(waits) > 0.3


def test_a_nonsensical_backoff_is_refused() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=10.0, max_s=5.0)


async def test_the_upstream_link_reaches_a_csms_that_comes_up_later(
    start_csms: Any, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    csms = await start_csms("a")
    await csms.stop()  # down, on a port the proxy knows
    clock = ManualClock()
    proxy = await start_proxy(ocpp_services=[service(csms)], clock=clock)
    charger = await connect_charger(proxy)
    await charger.boot()  # answered locally: no backend
    for ceiling in (1.0, 2.0, 4.0):  # refused: each wait up to twice the last
        (wait,) = await clock.wait_for_sleepers(1)
        assert ceiling / 2 <= wait <= ceiling
        assert csms.connects == 0
        await clock.step(wait)
    (wait,) = await clock.wait_for_sleepers(1)
    await csms.start()
    await clock.step(wait)
    await csms.wait_connected("CP_1")
    (boot,) = await csms.wait_for_call("BootNotification")  # the late backend learns the boot
    assert boot.payload["chargePointVendor"] == "ocpp-proxy"
    assert csms.connects == 1


async def test_sleepers_wake_in_order_when_the_clock_is_advanced() -> None:
    clock = ManualClock()
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    naps = [asyncio.create_task(nap(s)) for s in (5.0, 1.0, 3.0)]
    assert await clock.wait_for_sleepers(3) == [1.0, 3.0, 5.0]
    await clock.step(3.0)
    assert woke == [1.0, 3.0]
    await clock.step(10.0)
    await asyncio.gather(*naps)
    assert woke == [1.0, 3.0, 5.0] and clock.monotonic() == 13.0


@pytest.fixture
async def fake_ha() -> AsyncIterator[FakeHomeAssistant]:
    fake = await FakeHomeAssistant().start()
    yield fake
    await fake.stop()


async def test_home_assistant_client_reconnects_on_the_backoff(
    fake_ha: FakeHomeAssistant, tmp_path: Path
) -> None:
    clock = ManualClock()
    config = parse_config(
        {"data_dir": str(tmp_path), "ha_url": fake_ha.url, "ha_token": "good-token"}
    )
    where = endpoint(config, {})
    assert where is not None
    home = HomeState()
    changed = asyncio.Event()
    await fake_ha.set_state(PRESENCE, "not_home")
    async with aiohttp.ClientSession() as session:
        reader = HomeAssistantReader(
            where,
            home,
            presence_entity=PRESENCE,
            override_entity="",
            session=session,
            on_change=changed.set,
            clock=clock,
        )
        task = asyncio.create_task(reader.run())
        try:
            await _until(changed, lambda: home.ha_connected)
            await fake_ha.go_away()
            # Refused again and again: each wait is longer, between half and all of 1, 2, 4 s.
            for ceiling in (1.0, 2.0, 4.0):
                (wait,) = await clock.wait_for_sleepers(1)
                assert ceiling / 2 <= wait <= ceiling
                assert not home.ha_connected
                await clock.step(wait)
            (wait,) = await clock.wait_for_sleepers(1)
            assert 4.0 <= wait <= 8.0
            # Back during the wait: the client reconnects once the wait is over, at one try.
            fake_ha.come_back()
            attempts = fake_ha.auth_attempts
            await clock.step(wait)
            await _until(changed, lambda: home.ha_connected)
            assert fake_ha.auth_attempts == attempts + 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _until(event: asyncio.Event, predicate: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            event.clear()
            await event.wait()


async def test_mqtt_bridge_reaches_a_broker_that_comes_up_later(tmp_path: Path) -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    clock = ManualClock()
    config = parse_config({"data_dir": str(tmp_path), "mqtt_host": "127.0.0.1", "mqtt_port": port})
    store = await Store.open(tmp_path / "db.sqlite3")
    bridge = MqttBridge(config, HubRegistry(config, store), clock=clock)
    task = asyncio.create_task(bridge.run())
    broker: asyncio.subprocess.Process | None = None
    try:
        for ceiling in (1.0, 2.0):  # no broker yet: the waits grow
            (wait,) = await clock.wait_for_sleepers(1, timeout_s=15)
            assert ceiling / 2 <= wait <= ceiling
            await clock.step(wait)
        (wait,) = await clock.wait_for_sleepers(1, timeout_s=15)
        broker = await _start_mosquitto(tmp_path, port)
        watcher = await MqttWatcher(port).start()
        try:
            await clock.step(wait)
            await watcher.wait_value("ocpp_proxy/status", "online")
        finally:
            await watcher.stop()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if broker is not None:
            broker.terminate()
            await broker.wait()
        await store.close()


async def _start_mosquitto(tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    assert MOSQUITTO is not None
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), "-v", stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    async with asyncio.timeout(10):
        while b" running" not in (line := await process.stderr.readline()):
            assert line, "mosquitto exited"
    return process
