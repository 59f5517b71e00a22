"""The WebSocket endpoints: subprotocol negotiation, inbound backend authentication, status."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import StartProxy, service


async def test_charger_offering_no_subprotocol_gets_the_configured_version(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(ocpp_version="2.0.1")
    async with websockets.connect(proxy.charger_url("Plain")) as ws:
        assert ws.subprotocol is None
        await ws.send('[2,"u1","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "u1"]
    status = await proxy.get_json("/status")
    assert status["chargers"][0]["ocpp_version"] == "2.0.1"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["ocpp1.6"], "ocpp1.6"), (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"), (["ocpp2.1"], "ocpp2.1")],
)
async def test_charger_version_follows_the_subprotocol(
    start_proxy: StartProxy, offered: list[str], chosen: str
) -> None:
    proxy = await start_proxy()
    async with websockets.connect(proxy.charger_url(), subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        await ws.send('[2,"u1","Heartbeat",{}]')
        await asyncio.wait_for(ws.recv(), 5)
    assert proxy.hub().version.subprotocol == chosen


async def test_charger_offering_only_unknown_subprotocols_is_closed(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.5"]) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1002


async def test_plain_charger_path_uses_the_configured_charge_point_id(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(charge_point_id="Garage")
    async with websockets.connect(f"{proxy.base}/charger", subprotocols=["ocpp1.6"]) as ws:
        await ws.send('[2,"u1","Heartbeat",{}]')
        await asyncio.wait_for(ws.recv(), 5)
    assert [c["id"] for c in (await proxy.get_json("/status"))["chargers"]] == ["Garage"]


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("id=fleet", {}, id="no-secret"),
        pytest.param("id=fleet&token=wrong-secret", {}, id="wrong-token-param"),
        pytest.param("id=fleet", {"Authorization": "Bearer wrong-secret"}, id="wrong-bearer"),
        pytest.param("id=stranger&token=fleet-secret", {}, id="unknown-id"),
        pytest.param("token=fleet-secret", {}, id="no-id"),
    ],
)
async def test_inbound_backend_without_its_secret_is_refused_before_the_upgrade(
    start_proxy: StartProxy, query: str, headers: dict[str, str]
) -> None:
    proxy = await start_proxy(inbound_backends=[{"id": "fleet", "token": "fleet-secret"}])
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            f"{proxy.base}/backend?{query}", subprotocols=["ocpp1.6"], additional_headers=headers
        )
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("id=fleet&token=fleet-secret", {}, id="token-param"),
        pytest.param("id=fleet", {"Authorization": "Bearer fleet-secret"}, id="bearer-header"),
    ],
)
async def test_inbound_backend_with_its_secret_relays_both_ways(
    start_proxy: StartProxy, query: str, headers: dict[str, str]
) -> None:
    proxy = await start_proxy(inbound_backends=[{"id": "fleet", "token": "fleet-secret"}])
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as charger:
        await charger.send(
            '[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
        )
        assert json.loads(await asyncio.wait_for(charger.recv(), 5))[0] == 3  # answered locally
        async with websockets.connect(
            f"{proxy.base}/backend?{query}", subprotocols=["ocpp1.6"], additional_headers=headers
        ) as backend:
            # A backend that joins later first gets the charger's last BootNotification.
            replay = json.loads(await asyncio.wait_for(backend.recv(), 5))
            assert replay[2] == "BootNotification" and replay[3]["chargePointVendor"] == "V"
            await backend.send(
                f'[3,"{replay[1]}",{{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z","interval":60}}]'
            )
            # The inbound backend is now the primary: it answers the charger's next CALL.
            await charger.send('[2,"hb","Heartbeat",{}]')
            forwarded = json.loads(await asyncio.wait_for(backend.recv(), 5))
            assert forwarded == [2, "hb", "Heartbeat", {}]
            await backend.send('[3,"hb",{"currentTime":"2030-01-01T00:00:00Z"}]')
            assert json.loads(await asyncio.wait_for(charger.recv(), 5)) == [
                3,
                "hb",
                {"currentTime": "2030-01-01T00:00:00Z"},
            ]
            # And its commands reach the charger under a proxy id, the answer under its own.
            await backend.send('[2,"mine-1","UnlockConnector",{"connectorId":1}]')
            command = json.loads(await asyncio.wait_for(charger.recv(), 5))
            assert command[2:] == ["UnlockConnector", {"connectorId": 1}]
            assert command[1] != "mine-1"
            await charger.send(f'[3,"{command[1]}",{{"status":"Unlocked"}}]')
            assert json.loads(await asyncio.wait_for(backend.recv(), 5)) == [
                3,
                "mine-1",
                {"status": "Unlocked"},
            ]


async def test_inbound_backend_command_while_the_charger_is_offline_is_answered_at_once(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy(inbound_backends=[{"id": "fleet", "token": "fleet-secret"}])
    async with websockets.connect(
        f"{proxy.base}/backend?id=fleet&token=fleet-secret&charge_point_id=CP_1",
        subprotocols=["ocpp1.6"],
    ) as backend:
        await backend.send('[2,"r1","Reset",{"type":"Soft"}]')
        answer = json.loads(await asyncio.wait_for(backend.recv(), 5))
    assert answer[:3] == [4, "r1", "GenericError"]
    assert "not connected" in answer[3]


async def test_status_and_health(start_csms, start_proxy: StartProxy) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)], preferred_provider="a")
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        await ws.send(
            '[2,"s1","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Charging"}]'
        )
        await asyncio.wait_for(ws.recv(), 5)
        status = await proxy.get_json("/status")
    charger = status["chargers"][0]
    assert charger["id"] == "CP_1" and charger["connected"] and charger["ocpp_version"] == "1.6"
    assert charger["connectors"][0]["status"] == "Charging"
    assert charger["primary"] == "a"
    assert charger["backends"][0]["id"] == "a"
    assert charger["backends"][0]["direction"] == "outbound"
    assert charger["backends"][0]["state"] == "connected"
    assert charger["last_message_at"] and charger["connected_since"]
    assert (await proxy.get_json("/health"))["status"] == "ok"


async def test_dead_charger_link_is_noticed_by_pings_and_closed(start_proxy: StartProxy) -> None:
    import base64
    import os

    proxy = await start_proxy(ping_interval=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /charger/Silent HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    assert b"101" in await asyncio.wait_for(reader.readline(), 5)
    changes = proxy.registry.changes
    hub = await changes.wait_for(lambda: proxy.registry.get("Silent"), 5)
    await changes.wait_for(lambda: hub.charger is not None, 5)
    # The peer never answers a ping: the proxy gives up on it within a few ping intervals.
    await changes.wait_for(lambda: hub.charger is None, 5)
    writer.close()


async def test_ocpp_21_send_frames_are_relayed_and_never_answered(start_proxy: StartProxy) -> None:
    proxy = await start_proxy(
        inbound_backends=[{"id": "fleet", "token": "fleet-secret", "allow_config_changes": True}]
    )
    async with (
        websockets.connect(proxy.charger_url(), subprotocols=["ocpp2.1"]) as charger,
        websockets.connect(
            f"{proxy.base}/backend?id=fleet&token=fleet-secret", subprotocols=["ocpp2.1"]
        ) as backend,
    ):
        send = '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2026-01-01T00:00:00Z","data":[]}]'
        await charger.send(send)
        assert await asyncio.wait_for(backend.recv(), 5) == send
        # Nothing answers a SEND: the charger's next CALL gets the next frame it receives.
        await charger.send('[2,"hb","Heartbeat",{}]')
        assert json.loads(await asyncio.wait_for(backend.recv(), 5))[1] == "hb"
        await backend.send('[3,"hb",{"currentTime":"2030-01-01T00:00:00Z"}]')
        assert json.loads(await asyncio.wait_for(charger.recv(), 5))[:2] == [3, "hb"]
        # And in the other direction.
        await backend.send('[6,"s2","VendorStream",{"x":1}]')
        assert await asyncio.wait_for(charger.recv(), 5) == '[6,"s2","VendorStream",{"x":1}]'


async def test_send_frame_from_a_201_charger_is_not_a_message_type_of_its_version(
    start_proxy: StartProxy,
) -> None:
    proxy = await start_proxy()
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp2.0.1"]) as ws:
        await ws.send('[6,"s1","NotifyPeriodicEventStream",{}]')
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert answer[:3] == [4, "s1", "MessageTypeNotSupported"]
