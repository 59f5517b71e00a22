"""Presence and override from Home Assistant feed the arbiter, and it fails closed without them.

Home Assistant is a stand-in following its documented WebSocket API (tests/fake_home_assistant);
the charger and the CSMS are real OCPP peers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v16 import call as call16

from ocpp_proxy.config import parse_config
from ocpp_proxy.homeassistant.client import SUPERVISOR_WEBSOCKET, endpoint
from tests.conftest import ConnectCharger, Proxy, StartProxy, service
from tests.fake_home_assistant import FakeHomeAssistant
from tests.peers import Csms

START = call16.RemoteStartTransaction(id_tag="APP", connector_id=1)
PRESENCE = "person.me"
OVERRIDE = "input_boolean.no_sharing"


@pytest.fixture
async def ha(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeHomeAssistant]:
    monkeypatch.delenv("SUPERVISOR_TOKEN", raising=False)
    fake = await FakeHomeAssistant().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def house(
    ha: FakeHomeAssistant,
    start_csms: Any,
    start_proxy: StartProxy,
    connect_charger: ConnectCharger,
) -> Any:
    """A CSMS, the proxy reading ``ha``, and a booted charger."""

    async def make(token: str = "good-token") -> tuple[Csms, Proxy]:
        csms = await start_csms("a")
        proxy = await start_proxy(
            ocpp_services=[service(csms)],
            ha_url=ha.url,
            ha_token=token,
            presence_sensor=PRESENCE,
            override_input_boolean=OVERRIDE,
            api_public_read=True,  # /status without the REST API token
        )
        charger = await connect_charger(proxy)
        await charger.boot()
        await charger.status(1, "Available")
        await csms.wait_connected("CP_1")
        return csms, proxy

    return make


async def wait_home(proxy: Proxy, predicate: Any) -> None:
    home = proxy.registry.home
    await proxy.registry.changes.wait_for(lambda: predicate(home), 10)


async def refused_by(proxy: Proxy, csms: Csms) -> str | None:
    """Send a remote start from ``csms``; the rule that refused it (None: accepted)."""
    answer = await csms.call("CP_1", START)
    entry = (await proxy.registry.store.audit_entries("CP_1", limit=1))[0]
    if answer.status == "Accepted":
        assert entry.decision == "allowed"
        return None
    assert entry.decision == "refused"
    return entry.rule


def test_endpoint_inside_and_outside_home_assistant() -> None:
    config = parse_config({"ha_url": "https://ha.example:8123/", "ha_token": "t"})
    inside = endpoint(config, {"SUPERVISOR_TOKEN": "sup"})
    assert (inside.url, inside.token) == (SUPERVISOR_WEBSOCKET, "sup")
    outside = endpoint(config, {})
    assert (outside.url, outside.token) == ("wss://ha.example:8123/api/websocket", "t")
    plain = endpoint(parse_config({"ha_url": "http://10.0.0.2:8123"}), {})
    assert plain.url == "ws://10.0.0.2:8123/api/websocket"
    assert endpoint(parse_config({}), {}) is None


async def test_presence_and_override_feed_the_arbiter(ha: FakeHomeAssistant, house: Any) -> None:
    await ha.set_state(PRESENCE, "home")
    await ha.set_state(OVERRIDE, "off")
    csms, proxy = await house()
    await wait_home(proxy, lambda h: h.ha_connected and h.someone_home is True)
    assert await refused_by(proxy, csms) == "presence"
    status = await proxy.get_json("/status")
    assert status["rules"]["home_assistant_connected"] is True
    assert status["rules"]["presence"]["someone_home"] is True

    await ha.set_state(OVERRIDE, "on")
    await wait_home(proxy, lambda h: h.override_ha is True)
    assert await refused_by(proxy, csms) == "override"

    await ha.set_state(OVERRIDE, "off")
    await ha.set_state(PRESENCE, "not_home")
    await wait_home(proxy, lambda h: h.someone_home is False and h.override_ha is False)
    assert await refused_by(proxy, csms) is None


async def test_missing_or_unavailable_entity_fails_closed(
    ha: FakeHomeAssistant, house: Any
) -> None:
    await ha.set_state(PRESENCE, "not_home")  # the override entity does not exist
    csms, proxy = await house()
    await wait_home(proxy, lambda h: h.ha_connected)
    assert await refused_by(proxy, csms) == "home_assistant_unreachable"
    rules = (await proxy.get_json("/status"))["rules"]
    assert rules["override"]["unreadable"] == [OVERRIDE]

    await ha.set_state(OVERRIDE, "off")
    await wait_home(proxy, lambda h: h.override_ha is False)
    assert await refused_by(proxy, csms) is None

    await ha.set_state(PRESENCE, "unavailable")
    await wait_home(proxy, lambda h: h.someone_home is None)
    assert await refused_by(proxy, csms) == "home_assistant_unreachable"


async def test_home_assistant_going_away_fails_closed_until_it_is_back(
    ha: FakeHomeAssistant, house: Any
) -> None:
    await ha.set_state(PRESENCE, "not_home")
    await ha.set_state(OVERRIDE, "off")
    csms, proxy = await house()
    await wait_home(proxy, lambda h: h.ha_connected and h.override_ha is False)

    await ha.go_away()
    await wait_home(proxy, lambda h: not h.ha_connected)
    assert (proxy.registry.home.someone_home, proxy.registry.home.override_ha) == (None, None)
    assert await refused_by(proxy, csms) == "home_assistant_unreachable"
    rules = (await proxy.get_json("/status"))["rules"]
    assert rules["home_assistant_connected"] is False
    assert rules["override"]["fail_closed"] is True

    ha.come_back()
    await wait_home(proxy, lambda h: h.ha_connected and h.override_ha is False)
    assert (await proxy.get_json("/status"))["rules"]["home_assistant_connected"] is True
    assert await refused_by(proxy, csms) is None


async def test_wrong_token_is_not_connected_and_fails_closed(
    ha: FakeHomeAssistant, house: Any
) -> None:
    await ha.set_state(PRESENCE, "not_home")
    await ha.set_state(OVERRIDE, "off")
    csms, proxy = await house(token="wrong")
    await proxy.registry.changes.wait_for(lambda: ha.auth_attempts >= 1, 10)
    assert proxy.registry.home.ha_connected is False
    assert await refused_by(proxy, csms) == "home_assistant_unreachable"
    assert (await proxy.get_json("/status"))["rules"]["home_assistant_connected"] is False
