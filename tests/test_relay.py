"""The relay end to end: a charger (the simulator, built on ``ocpp``) -> proxy -> CSMS peers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from tests.conftest import ConnectCharger, StartProxy, service, tx_ids
from tests.peers import Csms


async def test_full_16_session_reaches_two_csms_each_with_its_own_transaction_ids(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100, heartbeat_interval=111)
    b = await start_csms("b", first_transaction_id=5000)
    proxy = await start_proxy(ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy)

    boot = await charger.boot()
    # The charger boots at once; the answer still comes from the primary, not the fallback.
    assert boot.interval == 111
    await charger.status(1, "Available")
    transaction_id = await charger.start_transaction(1, "TAG1", 1000)
    await charger.meter_values(1, transaction_id, 1500, 7400)
    await charger.meter_values(1, transaction_id, 2000, 7400)
    await charger.stop_transaction(transaction_id, 2500)

    await a.wait_for_call("StopTransaction")
    await b.wait_for_call("StopTransaction")
    assert a.assigned_transaction_ids == [100]
    assert b.assigned_transaction_ids == [5000]
    assert tx_ids(a, "MeterValues") == [100, 100]
    assert tx_ids(b, "MeterValues") == [5000, 5000]
    assert tx_ids(a, "StopTransaction") == [100]
    assert tx_ids(b, "StopTransaction") == [5000]
    # The charger sees one id, the proxy's, that neither backend assigned.
    assert transaction_id not in (100, 5000)
    for csms in (a, b):
        assert [r.action for r in csms.calls()] == [
            "BootNotification",
            "StatusNotification",
            "StartTransaction",
            "MeterValues",
            "MeterValues",
            "StopTransaction",
        ]
    meter = a.calls("MeterValues")[0].payload["meterValue"][0]["sampledValue"]
    assert {s["measurand"] for s in meter} == {
        "Energy.Active.Import.Register",
        "Power.Active.Import",
    }


async def test_frames_that_need_no_rewrite_are_forwarded_byte_for_byte(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    import websockets

    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as ws:
        await a.wait_connected("CP_1")
        # Spacing, key order and escapes as a charger wrote them: a re-encoder would change
        # every one of them.
        raw = (
            '[2, "dt-1", "DataTransfer", {"messageId": "x", "vendorId": "com.example",'
            ' "data": "caf\\u00e9 {\\"kW\\": 1.50, \\"n\\": 1e3}"}]'
        )
        await ws.send(raw)
        answer = await asyncio.wait_for(ws.recv(), 5)
    assert a.calls("DataTransfer")[0].raw == raw
    assert answer == '[3,"dt-1",{"status":"Accepted"}]'


async def test_remote_start_and_stop_from_each_backend_use_that_backends_ids(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100)
    b = await start_csms("b", first_transaction_id=5000)
    proxy = await start_proxy(ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy)
    await charger.boot()

    # Each backend starts a session and stops it with its own transaction id.
    for starter, stopper, stop_id in ((a, a, 100), (b, b, 5001)):
        answer = await starter.call(
            "CP_1", call16.RemoteStartTransaction(id_tag="APP", connector_id=1)
        )
        assert answer.status == "Accepted"
        assert (await charger.wait_for_command("RemoteStartTransaction"))["idTag"] == "APP"
        await charger.wait_background()  # the charger's StartTransaction was answered
        charger_tx = charger.transaction_id
        assert charger_tx is not None

        answer = await stopper.call("CP_1", call16.RemoteStopTransaction(transaction_id=stop_id))
        assert answer.status == "Accepted"
        command = await charger.wait_for_command("RemoteStopTransaction")
        assert command["transactionId"] == charger_tx
        await charger.wait_background()  # the charger's StopTransaction was answered

    assert tx_ids(a, "StopTransaction") == [100, 101]
    assert tx_ids(b, "StopTransaction") == [5000, 5001]


async def test_remote_stop_naming_an_unknown_transaction_is_rejected_without_reaching_the_charger(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    charger = await connect_charger(proxy)
    await charger.boot()
    answer = await a.call("CP_1", call16.RemoteStopTransaction(transaction_id=424242))
    assert answer.status == "Rejected"
    assert charger.received == []


async def test_two_backends_sending_the_same_unique_id_at_once_each_get_their_own_answer(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b")
    proxy = await start_proxy(ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await a.wait_connected("CP_1")
    await b.wait_connected("CP_1")

    async def ask(csms: Csms, key: str) -> Any:
        return await csms.connections["CP_1"].call(
            call16.GetConfiguration(key=[key]), unique_id="same-id", suppress=False
        )

    answer_a, answer_b = await asyncio.gather(
        ask(a, "HeartbeatInterval"), ask(b, "MeterValueSampleInterval")
    )
    assert [k["key"] for k in answer_a.configuration_key] == ["HeartbeatInterval"]
    assert [k["key"] for k in answer_b.configuration_key] == ["MeterValueSampleInterval"]
    # The charger saw two commands, one after the other, under ids the proxy chose.
    asked = [await charger.wait_for_command("GetConfiguration") for _ in range(2)]
    assert sorted(c["key"][0] for c in asked) == ["HeartbeatInterval", "MeterValueSampleInterval"]


async def test_primary_down_gets_local_answers_and_back_again_gets_replay_then_answers(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b")
    proxy = await start_proxy(ocpp_services=[service(a), service(b)], preferred_provider="a")
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Available")
    hub = proxy.hub()
    assert hub.primary is not None and hub.primary.id == "a"

    await a.stop()
    await b.wait_until(lambda: hub.primary is not None and hub.primary.id == "b")
    # b is primary now: its DataTransfer answer (Accepted) reaches the charger.
    assert (await charger.data_transfer("com.example")).status == "Accepted"
    await b.stop()
    await b.wait_until(lambda: hub.primary is None)
    # Nobody connected: the proxy answers itself, at once and schema-valid.
    assert (await charger.data_transfer("com.example")).status == "UnknownVendorId"
    assert (await charger.heartbeat()).current_time

    a.received.clear()
    await a.start()
    await a.wait_until(lambda: hub.primary is not None and hub.primary.id == "a", timeout=10)
    # The returning CSMS first gets what a rebooted link would show: boot, then status.
    replay = await a.wait_for_call("StatusNotification")
    assert [r.action for r in a.calls()][:2] == ["BootNotification", "StatusNotification"]
    assert replay[0].payload["status"] == "Available"
    assert (await charger.data_transfer("com.example")).status == "Accepted"


async def test_backend_restarting_mid_session_gets_the_rest_of_the_transaction_in_order(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100)
    b = await start_csms("b", first_transaction_id=5000)
    proxy = await start_proxy(ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await b.wait_for_call("StartTransaction")

    await b.stop()
    link = proxy.hub().links["b"]
    await b.wait_until(lambda: not link.connected)
    await charger.meter_values(1, transaction_id, 1000, 7000)
    await charger.meter_values(1, transaction_id, 2000, 7000)
    await charger.stop_transaction(transaction_id, 3000)
    assert link.queue_depth == 3

    b.received.clear()
    await b.start()
    await b.wait_for_call("StopTransaction", timeout=10)
    actions = [r.action for r in b.calls()]
    assert actions == ["BootNotification", "MeterValues", "MeterValues", "StopTransaction"]
    assert tx_ids(b, "MeterValues") == [5000, 5000]
    assert tx_ids(b, "StopTransaction") == [5000]
    energies = [
        r.payload["meterValue"][0]["sampledValue"][0]["value"] for r in b.calls("MeterValues")
    ]
    assert energies == ["1000", "2000"]
    assert tx_ids(a, "StopTransaction") == [100]


async def test_backend_answering_start_late_still_gets_its_own_id_on_meter_values(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100)
    b = await start_csms("b", first_transaction_id=5000)
    proxy = await start_proxy(ocpp_services=[service(a), service(b)], response_timeout=5)
    charger = await connect_charger(proxy)
    await charger.boot()
    await b.wait_for_call("BootNotification")

    b.gate = asyncio.Event()  # b holds every frame until the gate opens
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await charger.meter_values(1, transaction_id, 500, 7000)
    link = proxy.hub().links["b"]
    assert link.queue_depth == 2  # the start in flight, the meter values behind it
    # The charger has its answers (from a), so the proxy keeps both for b, and none for a.
    store = proxy.registry.store
    assert await store.outbox_depths("CP_1") == {"b": 2}
    b.gate.set()
    await b.wait_for_call("MeterValues")
    assert tx_ids(b, "MeterValues") == [5000]
    assert tx_ids(a, "MeterValues") == [100]
    assert await link.drained(5)
    assert await store.outbox_depths("CP_1") == {}


async def test_slow_backend_gets_the_last_stop_after_the_charger_hung_up(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    b = await start_csms("b")
    proxy = await start_proxy(ocpp_services=[service(a), service(b)], drain_timeout=5)
    charger = await connect_charger(proxy)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await b.wait_for_call("StartTransaction")
    b.gate = asyncio.Event()
    await charger.stop_transaction(transaction_id, 1000)
    await charger.close()
    await a.wait_until(lambda: "CP_1" not in a.connections)
    b.gate.set()
    await b.wait_for_call("StopTransaction")
    await b.wait_until(lambda: "CP_1" not in b.connections)
    assert proxy.hub().links["b"].queue_depth == 0


async def test_charger_that_does_not_answer_a_command_gives_the_backend_a_callerror(
    start_csms, start_proxy: StartProxy
) -> None:
    import websockets
    from ocpp.exceptions import GenericError

    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)], response_timeout=0.5)
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]):
        await a.wait_connected("CP_1")
        with pytest.raises(GenericError, match="did not answer"):
            await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))


async def test_no_backend_configured_the_proxy_answers_the_charger_itself(
    start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    proxy = await start_proxy(heartbeat_interval=77)
    charger = await connect_charger(proxy)
    boot = await charger.boot()
    assert (boot.status, boot.interval) == ("Accepted", 77)
    assert (await charger.authorize("TAG")).id_tag_info["status"] == "Accepted"
    first = await charger.start_transaction(1, "TAG", 0)
    await charger.meter_values(1, first, 100, 1000)
    await charger.stop_transaction(first, 200)
    second = await charger.start_transaction(1, "TAG", 200)
    assert isinstance(first, int) and second == first + 1
    status = await proxy.get_json("/status")
    assert status["mode"] == "local"
    assert status["chargers"][0]["connected"] is True


async def test_ocpp_201_session_end_to_end(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", "2.0.1", heartbeat_interval=222)
    b = await start_csms("b", "2.0.1")
    proxy = await start_proxy(ocpp_version="2.0.1", ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy, version="2.0.1")
    assert (await charger.boot()).interval == 222
    await charger.status(1, "Available")
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await charger.meter_values(1, transaction_id, 1000, 7000)
    await charger.stop_transaction(transaction_id, 2000)
    for csms in (a, b):
        events = await csms.wait_for_call("TransactionEvent", 3)
        assert [e.payload["eventType"] for e in events] == ["Started", "Updated", "Ended"]
        assert {e.payload["transactionInfo"]["transactionId"] for e in events} == {transaction_id}

    answer = await b.call(
        "CP_1", call201.RequestStopTransaction(transaction_id=str(transaction_id))
    )
    assert answer.status == "Rejected"  # the charger's transaction has ended already
    command = await charger.wait_for_command("RequestStopTransaction")
    assert command["transactionId"] == transaction_id
    assert proxy.hub().snapshot()["ocpp_version"] == "2.0.1"


async def test_service_of_another_version_is_not_connected_and_status_says_why(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    # 2.0.1 against 2.1 is not translated (1.6 against either is: tests/test_translation_relay.py).
    a = await start_csms("a", "2.1")
    b = await start_csms("b", "2.0.1")
    proxy = await start_proxy(ocpp_version="2.0.1", ocpp_services=[service(a), service(b)])
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    status = await proxy.get_json("/status")
    backends = {x["id"]: x for x in status["chargers"][0]["backends"]}
    assert backends["a"]["state"] == "refused"
    assert "2.1" in backends["a"]["last_error"]
    assert backends["b"]["state"] == "connected"
    assert status["chargers"][0]["primary"] == "b"
    assert a.connects == 0


async def test_charger_reconnecting_with_the_same_id_replaces_its_old_connection(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a)])
    old = await connect_charger(proxy)
    await old.boot()
    new = await connect_charger(proxy)
    await old.wait_closed(timeout=5)
    assert (await new.boot()).status == "Accepted"
    await a.wait_for_call("BootNotification", 2)
    answer = await a.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer.configuration_key
    assert (await new.wait_for_command("GetConfiguration"))["key"] == ["HeartbeatInterval"]


async def test_upstream_url_placeholder_and_basic_auth(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    import base64

    a = await start_csms("a")
    url = f"ws://127.0.0.1:{a.port}/cs/{{charge_point_id}}/ocpp"
    proxy = await start_proxy(
        ocpp_services=[{"id": "a", "url": url, "auth_type": "basic", "password": "s3cret-pw"}]
    )
    charger = await connect_charger(proxy, "Garage_1")
    await charger.boot()
    await a.wait_for_call("BootNotification")
    assert a.paths == ["/cs/Garage_1/ocpp"], a.paths
    expected = base64.b64encode(b"Garage_1:s3cret-pw").decode()
    assert a.request_headers[0]["authorization"] == f"Basic {expected}"
    assert a.request_headers[0]["sec-websocket-protocol"] == "ocpp1.6"


async def test_primary_that_cannot_be_reached_hands_the_boot_to_the_next_backend(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    b = await start_csms("b", heartbeat_interval=222)
    gone = await start_csms("gone")
    await gone.stop()  # nothing listens on its port any more
    proxy = await start_proxy(
        ocpp_services=[service(gone), service(b)], preferred_provider="gone", response_timeout=30
    )
    charger = await connect_charger(proxy)
    # Answered by b as soon as the preferred link's first attempt failed, not after 30 s.
    boot = await asyncio.wait_for(charger.boot(), 10)
    assert boot.interval == 222
    status = await proxy.get_json("/status")
    backends = {x["id"]: x for x in status["chargers"][0]["backends"]}
    assert backends["gone"]["state"] == "connecting"
    assert "cannot connect" in backends["gone"]["last_error"]


async def test_upstream_token_auth_sends_a_bearer_header(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a")
    proxy = await start_proxy(ocpp_services=[service(a, auth_type="token", token="tok-123456")])
    charger = await connect_charger(proxy)
    await charger.boot()
    assert a.request_headers[0]["authorization"] == "Bearer tok-123456"
    assert a.paths == ["/ocpp/CP_1"]


async def test_two_chargers_at_once_each_get_their_own_upstream_connections(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    a = await start_csms("a", first_transaction_id=100)
    proxy = await start_proxy(ocpp_services=[service(a)])
    garage = await connect_charger(proxy, "Garage")
    drive = await connect_charger(proxy, "Drive")
    await garage.boot()
    await drive.boot()
    garage_tx = await garage.start_transaction(1, "G", 0)
    drive_tx = await drive.start_transaction(1, "D", 0)
    await garage.stop_transaction(garage_tx, 10)
    await drive.stop_transaction(drive_tx, 20)
    stops = await a.wait_for_call("StopTransaction", 2)
    assert sorted(a.paths) == ["/ocpp/Drive", "/ocpp/Garage"]
    by_charger = {s.charge_point_id: s.payload for s in stops}
    starts = {s.charge_point_id: s for s in a.calls("StartTransaction")}
    assert starts["Garage"].payload["idTag"] == "G" and starts["Drive"].payload["idTag"] == "D"
    assert {by_charger["Garage"]["meterStop"], by_charger["Drive"]["meterStop"]} == {10, 20}
    assert sorted(p["transactionId"] for p in by_charger.values()) == [100, 101]
    answer = await a.call("Drive", call16.GetConfiguration(key=["HeartbeatInterval"]))
    assert answer.configuration_key
    assert (await drive.wait_for_command("GetConfiguration"))["key"] == ["HeartbeatInterval"]
    assert garage.received == []
