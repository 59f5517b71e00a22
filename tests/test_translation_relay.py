"""One charger, backends of any OCPP version: the proxy translates per backend (issue 13).

Real peers: the project's simulated charger and ``ocpp`` library CSMSs of 1.6, 2.0.1 and 2.1.
Every CALL each peer receives is checked against its own version's schema with the ``ocpp``
library's validators (the answers to the peers' own CALLs are checked by the library itself).
"""

from __future__ import annotations

import asyncio
import decimal
import json
from typing import Any

import pytest
import websockets
from ocpp.exceptions import NotSupportedError
from ocpp.messages import MessageType, get_validator
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201

from ocpp_proxy.config import ConfigError, parse_config
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.simulator import SimulatedCharger, run_simulation
from tests.conftest import ConnectCharger, StartProxy, service, tx_ids
from tests.peers import Csms

TS = "2026-01-01T00:00:00Z"


def assert_valid(version: str, kind: int, action: str, payload: dict[str, Any]) -> None:
    validator = get_validator(kind, action, version, parse_float=decimal.Decimal)
    validator.validate(json.loads(json.dumps(payload), parse_float=decimal.Decimal))


ERROR_CODES_2X = {"NotSupported", "NotImplemented", "FormatViolation", "GenericError"}


def assert_csms_got_valid_frames(csms: Csms, errors: int = 0) -> None:
    """Every CALL the CSMS received is valid in its version; it got ``errors`` CALLERRORs."""
    got_errors = [r for r in csms.received if r.message_type == 4]
    assert len(got_errors) == errors, [r.raw for r in got_errors]
    for error in got_errors:
        assert json.loads(error.raw)[2] in ERROR_CODES_2X
    for received in csms.received:
        if received.message_type == 2:
            assert_valid(csms.version, MessageType.Call, received.action or "", received.payload)


def spy_on(charger: SimulatedCharger) -> list[list[Any]]:
    """Every frame the charger receives, as parsed JSON (the charger itself is not changed)."""
    frames: list[list[Any]] = []
    peer = charger._peer
    route = peer.route_message

    async def recording(raw: str) -> None:
        frames.append(json.loads(raw))
        await route(raw)

    peer.route_message = recording  # type: ignore[method-assign]
    return frames


def assert_charger_got_valid_commands(version: str, frames: list[list[Any]]) -> None:
    for frame in frames:
        assert frame[0] != 4, frame
        if frame[0] == 2:
            assert_valid(version, MessageType.Call, frame[2], frame[3])


def events(csms: Csms) -> list[dict[str, Any]]:
    return [r.payload for r in csms.calls("TransactionEvent")]


async def test_a_16_charger_with_a_16_a_201_and_a_21_csms_at_once(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    one6 = await start_csms("one6", first_transaction_id=700)
    two = await start_csms("two", "2.0.1")
    two1 = await start_csms("two1", "2.1")
    proxy = await start_proxy(
        ocpp_services=[
            service(one6),
            service(two, allow_config_changes=True),
            service(two1),
        ]
    )
    charger = await connect_charger(proxy)
    received = spy_on(charger)
    await charger.run_session(transactions=1, meter_samples=2)

    for csms in (two, two1):
        await csms.wait_until(lambda c=csms: len(events(c)) == 5)
        session = events(csms)
        assert [e["eventType"] for e in session] == [
            "Started",
            "Updated",
            "Updated",
            "Updated",
            "Ended",
        ]
        assert [e["seqNo"] for e in session] == [0, 1, 2, 3, 4]
        assert len({e["transactionInfo"]["transactionId"] for e in session}) == 1
        assert session[0]["idToken"] == {"idToken": "SIMTAG01", "type": "ISO14443"}
        assert session[1]["transactionInfo"]["chargingState"] == "Charging"
        assert session[-1]["transactionInfo"]["stoppedReason"] == "Local"
        actions = [r.action for r in csms.calls()]
        assert actions[:3] == ["BootNotification", "Heartbeat", "StatusNotification"]
        await csms.wait_until(lambda c=csms: c.calls()[-1].action == "StatusNotification")
        assert csms.calls("StatusNotification")[-1].payload["connectorStatus"] == "Available"
        assert_csms_got_valid_frames(csms)
    # The 1.6 CSMS sees the session exactly as it would without the others.
    assert tx_ids(one6, "MeterValues") == [700, 700]
    assert tx_ids(one6, "StopTransaction") == [700]
    assert not one6.calls("TransactionEvent")
    assert_csms_got_valid_frames(one6)

    # Remote start and stop from the 2.0.1 CSMS, once the proxy has recorded the first session's
    # end (else the arbiter rightly finds the connector busy).
    await proxy.recorded()
    started = await two.call(
        "CP_1",
        call201.RequestStartTransaction(
            id_token={"idToken": "APP-1", "type": "Central"}, remote_start_id=42, evse_id=1
        ),
    )
    assert started.status == "Accepted"
    command = await charger.wait_for_command("RemoteStartTransaction")
    assert (command["idTag"], command["connectorId"]) == ("APP-1", 1)
    await charger.wait_background()  # its StartTransaction is answered
    remote = await two.wait_until(
        lambda: [
            e
            for e in events(two)
            if e["eventType"] == "Started" and e["transactionInfo"].get("remoteStartId") == 42
        ]
    )
    assert remote[0]["triggerReason"] == "RemoteStart"
    remote_tx = remote[0]["transactionInfo"]["transactionId"]
    charger_tx = charger.transaction_id  # the proxy's id for the charger's transaction
    stopped = await two.call("CP_1", call201.RequestStopTransaction(transaction_id=remote_tx))
    assert stopped.status == "Accepted"
    stop_command = await charger.wait_for_command("RemoteStopTransaction")
    assert stop_command["transactionId"] == charger_tx
    ended = await two.wait_until(
        lambda: [
            e
            for e in events(two)
            if e["eventType"] == "Ended" and e["transactionInfo"]["transactionId"] == remote_tx
        ]
    )
    assert ended[0]["transactionInfo"]["stoppedReason"] == "Remote"
    # The other backends heard of the remote session too, each in its own version.
    await one6.wait_for_call("StopTransaction", 2)
    await two1.wait_until(lambda: len([e for e in events(two1) if e["eventType"] == "Ended"]) == 2)

    # A configuration change from the 2.0.1 CSMS reaches the 1.6 charger's configuration.
    changed = await two.call(
        "CP_1",
        call201.SetVariables(
            set_variable_data=[
                {
                    "attributeValue": "120",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        ),
    )
    assert changed.set_variable_result[0]["attribute_status"] == "Accepted"
    assert charger.configuration["HeartbeatInterval"] == "120"
    read = await two.call(
        "CP_1",
        call201.GetVariables(
            get_variable_data=[
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
            ]
        ),
    )
    assert read.get_variable_result[0]["attribute_value"] == "120"

    # A charging profile from the 2.1 CSMS.
    profile = await two1.call(
        "CP_1",
        call21.SetChargingProfile(
            evse_id=1,
            charging_profile={
                "id": 9,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "startSchedule": "2026-01-01T00:00:00Z",
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}],
                    }
                ],
            },
        ),
    )
    assert profile.status == "Accepted"
    held = await charger.wait_for_command("SetChargingProfile")
    assert held["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 10}
    ]
    # A base report: the charger's configuration, reported in 2.x names after the answer.
    report = await two.call(
        "CP_1", call201.GetBaseReport(request_id=77, report_base="ConfigurationInventory")
    )
    assert report.status == "Accepted"
    (notify,) = await two.wait_for_call("NotifyReport")
    assert notify.payload["requestId"] == 77
    heartbeat = [
        r["variableAttribute"][0]["value"]
        for r in notify.payload["reportData"]
        if r["variable"]["name"] == "HeartbeatInterval"
    ]
    assert heartbeat == ["120"]
    # Something 1.6 cannot do is refused, naming the action, and the charger never sees it.
    with pytest.raises(NotSupportedError) as refused:
        await two.call("CP_1", call201.GetDisplayMessages(request_id=1))
    assert "GetDisplayMessages" in refused.value.description
    assert not [f for f in received if f[0] == 2 and f[2] == "GetDisplayMessages"]
    assert_csms_got_valid_frames(two, errors=1)
    for csms in (one6, two1):
        assert_csms_got_valid_frames(csms)
    assert_charger_got_valid_commands("1.6", received)


async def test_a_201_backend_down_for_a_whole_session_gets_it_translated_in_order(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    one6 = await start_csms("one6")
    two = await start_csms("two", "2.0.1")
    await two.stop()
    proxy = await start_proxy(ocpp_services=[service(one6), service(two)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.status(1, "Preparing")
    transaction_id = await charger.start_transaction(1, "TAG1", 10_000)
    await charger.status(1, "Charging")
    for energy in (11_000, 12_000):
        await charger.meter_values(1, transaction_id, energy, 7_000)
    await charger.stop_transaction(transaction_id, 13_000)

    await two.start()
    await two.wait_until(lambda: [e for e in events(two) if e["eventType"] == "Ended"], 15)
    session = events(two)
    assert [(e["eventType"], e["seqNo"]) for e in session] == [
        ("Started", 0),
        ("Updated", 1),
        ("Updated", 2),
        ("Ended", 3),
    ]
    assert session[0]["meterValue"][0]["sampledValue"][0]["value"] == 10_000
    assert session[-1]["meterValue"][-1]["sampledValue"][0]["value"] == 13_000
    assert_csms_got_valid_frames(two)
    assert await proxy.hub().links["two"].drained(5)


async def test_a_201_charger_with_a_16_csms(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    one6 = await start_csms("one6", first_transaction_id=300)
    proxy = await start_proxy(
        ocpp_version="2.0.1", ocpp_services=[service(one6, allow_config_changes=True)]
    )
    charger = await connect_charger(proxy, version="2.0.1")
    received = spy_on(charger)
    (transaction_id,) = await charger.run_session(transactions=1, meter_samples=2)
    assert isinstance(transaction_id, str)  # the charging station names its own
    await one6.wait_for_call("StopTransaction")
    assert [r.action for r in one6.calls()][:4] == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
    ]
    (start,) = one6.calls("StartTransaction")
    assert start.payload["idTag"] == "SIMTAG01"
    assert tx_ids(one6, "MeterValues") == [300, 300]
    assert tx_ids(one6, "StopTransaction") == [300]
    stop = one6.calls("StopTransaction")[0].payload
    assert stop["meterStop"] >= start.payload["meterStart"]

    await proxy.recorded()  # the first session's end, before the connector is free again
    remote = await one6.call("CP_1", call16.RemoteStartTransaction(id_tag="APP-2", connector_id=1))
    assert remote.status == "Accepted"
    request = await charger.wait_for_command("RequestStartTransaction")
    assert request["idToken"] == {"idToken": "APP-2", "type": "Central"}
    await charger.wait_background()  # its TransactionEvent Started is answered
    await one6.wait_for_call("StartTransaction", 2)
    stopped = await one6.call("CP_1", call16.RemoteStopTransaction(transaction_id=301))
    assert stopped.status == "Accepted"
    await charger.wait_for_command("RequestStopTransaction")
    stops = await one6.wait_for_call("StopTransaction", 2)
    assert (stops[-1].payload["transactionId"], stops[-1].payload["reason"]) == (301, "Remote")

    changed = await one6.call(
        "CP_1", call16.ChangeConfiguration(key="HeartbeatInterval", value="90")
    )
    assert changed.status == "Accepted"
    profile = await one6.call(
        "CP_1",
        call16.SetChargingProfile(
            connector_id=1,
            cs_charging_profiles={
                "chargingProfileId": 4,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3680}],
                },
            },
        ),
    )
    assert profile.status == "Accepted"
    held = await charger.wait_for_command("SetChargingProfile")
    assert held["evseId"] == 1
    assert held["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 3680}
    ]
    got = await one6.call("CP_1", call16.GetConfiguration(key=["HeartbeatInterval"]))
    assert got.configuration_key == [{"key": "HeartbeatInterval", "readonly": False, "value": "90"}]
    assert_csms_got_valid_frames(one6)
    assert_charger_got_valid_commands("2.0.1", received)


async def test_simulate_charger_16_against_a_config_with_only_a_201_service(
    start_csms, start_proxy: StartProxy
) -> None:
    two = await start_csms("two", "2.0.1")
    proxy = await start_proxy(ocpp_services=[service(two)])
    lines: list[str] = []
    # What `ocpp-proxy simulate-charger --version 1.6 --transactions 2` runs.
    code = await run_simulation(
        f"ws://127.0.0.1:{proxy.port}/charger", "CP_1", "1.6", 2, log=lines.append
    )
    assert code == 0, lines
    await two.wait_until(lambda: len([e for e in events(two) if e["eventType"] == "Ended"]) == 2)
    by_transaction: dict[str, list[int]] = {}
    for event in events(two):
        by_transaction.setdefault(event["transactionInfo"]["transactionId"], []).append(
            event["seqNo"]
        )
    assert [seq[:1] for seq in by_transaction.values()] == [[0], [0]]
    assert all(seq == list(range(len(seq))) for seq in by_transaction.values())
    assert_csms_got_valid_frames(two)
    status = await proxy.get_json("/status")
    (backend,) = status["chargers"][0]["backends"]
    assert (backend["version"], backend["translated"]) == ("2.0.1", True)


async def test_a_restart_of_the_proxy_keeps_the_seq_no_and_the_ids_of_a_running_session(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    two = await start_csms("two", "2.0.1")
    proxy = await start_proxy(ocpp_services=[service(two)])
    charger = await connect_charger(proxy)
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await charger.meter_values(1, transaction_id, 500, 7_000)
    await two.wait_until(lambda: len(events(two)) == 2)
    await charger.close()
    await proxy.stop()

    proxy = await start_proxy(ocpp_services=[service(two)])
    charger = await connect_charger(proxy)
    await charger.boot()
    await charger.meter_values(1, transaction_id, 1_000, 7_000)
    await charger.stop_transaction(transaction_id, 1_500)
    await two.wait_until(lambda: len(events(two)) == 4)
    session = events(two)
    assert [(e["eventType"], e["seqNo"]) for e in session] == [
        ("Started", 0),
        ("Updated", 1),
        ("Updated", 2),
        ("Ended", 3),
    ]
    assert len({e["transactionInfo"]["transactionId"] for e in session}) == 1
    assert_csms_got_valid_frames(two)


async def test_a_restart_of_the_proxy_keeps_a_16_backends_transaction_id(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    one6 = await start_csms("one6", first_transaction_id=300)
    options = {"ocpp_version": "2.0.1", "ocpp_services": [service(one6)]}
    proxy = await start_proxy(**options)
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 0)
    await one6.wait_for_call("StartTransaction")
    await charger.close()
    await proxy.stop()

    proxy = await start_proxy(**options)
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    await charger.stop_transaction(transaction_id, 2_000)
    (stop,) = await one6.wait_for_call("StopTransaction")
    assert (stop.payload["transactionId"], stop.payload["meterStop"]) == (300, 2_000)
    assert_csms_got_valid_frames(one6)


async def test_an_inbound_backend_of_its_own_version(start_proxy: StartProxy) -> None:
    token = "fleet-secret-0123456789"
    proxy = await start_proxy(
        inbound_backends=[{"id": "fleet", "token": token, "version": "2.0.1"}]
    )
    async with websockets.connect(proxy.charger_url(), subprotocols=["ocpp1.6"]) as charger:
        await charger.send(
            '[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
        )
        assert json.loads(await asyncio.wait_for(charger.recv(), 5))[0] == 3
        url = f"{proxy.base}/backend?id=fleet&token={token}"
        # It speaks 2.0.1: a 1.6 handshake gets no OCPP subprotocol and is closed.
        async with websockets.connect(url, subprotocols=["ocpp1.6"]) as wrong:
            assert wrong.subprotocol is None
        async with websockets.connect(url, subprotocols=["ocpp2.0.1"]) as backend:
            replay = json.loads(await asyncio.wait_for(backend.recv(), 5))
            assert replay[2] == "BootNotification"
            assert_valid("2.0.1", MessageType.Call, replay[2], replay[3])
            assert replay[3]["chargingStation"] == {"model": "M", "vendorName": "V"}
            await backend.send(
                f'[3,"{replay[1]}",{{"status":"Accepted","currentTime":"2026-01-01T00:00:00Z",'
                '"interval":60}]'
            )
            await backend.send('[2,"mine-1","UnlockConnector",{"evseId":1,"connectorId":1}]')
            command = json.loads(await asyncio.wait_for(charger.recv(), 5))
            assert command[2:] == ["UnlockConnector", {"connectorId": 1}]
            await charger.send(f'[3,"{command[1]}",{{"status":"NotSupported"}}]')
            answer = json.loads(await asyncio.wait_for(backend.recv(), 5))
            assert answer == [3, "mine-1", {"status": "UnlockFailed"}]
            assert_valid("2.0.1", MessageType.CallResult, "UnlockConnector", answer[2])


def test_an_inbound_backends_version_is_read_and_checked() -> None:
    token = "fleet-secret-0123456789"
    config = parse_config({"inbound_backends": [{"id": "a", "token": token, "version": 2.1}]})
    assert config.inbound_backends[0].version is OcppVersion.V21
    # Without one it speaks the charger's version.
    config = parse_config({"inbound_backends": [{"id": "a", "token": token}]})
    assert config.inbound_backends[0].version is None
    with pytest.raises(ConfigError) as bad:
        parse_config({"inbound_backends": [{"id": "a", "token": token, "version": "3.0"}]})
    assert bad.value.key == "inbound_backends[0].version"


async def test_a_16_backend_down_for_a_201_chargers_session_gets_it_in_order(
    start_csms, start_proxy: StartProxy, connect_charger: ConnectCharger
) -> None:
    one6 = await start_csms("one6", first_transaction_id=900)
    two = await start_csms("two", "2.0.1")
    await one6.stop()
    proxy = await start_proxy(ocpp_version="2.0.1", ocpp_services=[service(two), service(one6)])
    charger = await connect_charger(proxy, version="2.0.1")
    await charger.boot()
    transaction_id = await charger.start_transaction(1, "TAG1", 10_000)
    for energy in (11_000, 12_000):
        await charger.meter_values(1, transaction_id, energy, 7_000)
    await charger.stop_transaction(transaction_id, 13_000)

    await one6.start()
    (stop,) = await one6.wait_for_call("StopTransaction", timeout=15)
    assert [r.action for r in one6.calls() if r.action != "StatusNotification"] == [
        "BootNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert tx_ids(one6, "MeterValues") == [900, 900]
    assert (stop.payload["transactionId"], stop.payload["meterStop"]) == (900, 13_000)
    assert one6.calls("StartTransaction")[0].payload["meterStart"] == 10_000
    assert_csms_got_valid_frames(one6)
    assert await proxy.hub().links["one6"].drained(5)


async def test_an_ocpp_library_16_charge_point_with_a_201_csms(
    start_csms, start_proxy: StartProxy
) -> None:
    two = await start_csms("two", "2.0.1")
    proxy = await start_proxy(ocpp_services=[service(two)])
    async with websockets.connect(proxy.charger_url("CP_LIB"), subprotocols=["ocpp1.6"]) as ws:
        charge_point = ChargePoint16("CP_LIB", ws)
        reader = asyncio.create_task(charge_point.start())
        try:
            boot = await charge_point.call(
                call16.BootNotification(charge_point_vendor="Lib", charge_point_model="M1")
            )
            assert boot.status == "Accepted"
            start = await charge_point.call(
                call16.StartTransaction(
                    connector_id=1, id_tag="LIBTAG", meter_start=100, timestamp=TS
                )
            )
            assert start.id_tag_info["status"] == "Accepted"
            await charge_point.call(
                call16.MeterValues(
                    connector_id=1,
                    transaction_id=start.transaction_id,
                    meter_value=[{"timestamp": TS, "sampledValue": [{"value": "600"}]}],
                )
            )
            stop = await charge_point.call(
                call16.StopTransaction(
                    meter_stop=900, timestamp=TS, transaction_id=start.transaction_id
                )
            )
            assert stop is not None
        finally:
            reader.cancel()
    session = await two.wait_until(lambda: len(events(two)) == 3 and events(two))
    assert [(e["eventType"], e["seqNo"]) for e in session] == [
        ("Started", 0),
        ("Updated", 1),
        ("Ended", 2),
    ]
    assert two.calls("BootNotification")[0].payload["chargingStation"] == {
        "model": "M1",
        "vendorName": "Lib",
    }
    assert session[1]["meterValue"][0]["sampledValue"][0]["value"] == 600
    assert session[2]["meterValue"][-1]["sampledValue"][0]["value"] == 900
    assert_csms_got_valid_frames(two)
