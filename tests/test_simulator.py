"""The bundled charger simulator against real CSMSs built on the ``ocpp`` library."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from ocpp import v21
from ocpp.exceptions import InternalError, NotSupportedError
from ocpp.exceptions import NotImplementedError as OcppNotImplementedError
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from ocpp_proxy.simulator import (
    SimulatedCharger,
    SimulationError,
    add_arguments,
    charger_url,
    main_async,
    run_simulation,
)
from tests.peers import CSMS_PEERS, Csms, Csms16


def server_for(version: str, peer_class: type | None = None) -> Csms:
    """A CSMS of ``version`` (transaction ids from 100) that also takes a charger offering none."""
    return Csms(
        "csms",
        version,
        first_transaction_id=100,
        peer_class=peer_class,
        accept_without_subprotocol=True,
    )


@contextlib.asynccontextmanager
async def session(
    version: str, charge_point_id: str = "CP_1", csms_cls: type | None = None, **kwargs: Any
) -> AsyncIterator[tuple[SimulatedCharger, Any, list[str]]]:
    """A CSMS server, a simulated charger connected to it, and the charger's log lines."""
    lines: list[str] = []
    async with server_for(version, csms_cls) as server:
        charger = await SimulatedCharger.connect(
            charger_url(server.url, charge_point_id),
            charge_point_id,
            version,
            log=lines.append,
            response_timeout=5,
            **kwargs,
        )
        async with charger:
            csms = await server.next_peer()
            yield charger, csms, lines


def _sampled(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A meter sample's sampled values by measurand."""
    (meter_value,) = payload["meterValue"]
    return {s["measurand"]: s for s in meter_value["sampledValue"]}


# --------------------------------------------------------------------------------------------
# Whole sessions
# --------------------------------------------------------------------------------------------


async def test_run_session_1_6_sends_the_full_script() -> None:
    async with session("1.6") as (charger, csms, lines):
        created = await charger.run_session(transactions=2, meter_samples=3)

    per_transaction = [
        "Authorize",
        "StatusNotification",
        "StartTransaction",
        "StatusNotification",
        "MeterValues",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
        "StatusNotification",
    ]
    assert csms.actions() == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        *per_transaction,
        *per_transaction,
    ]
    assert created == [100, 101]
    assert [p["status"] for p in csms.payloads("StatusNotification")] == [
        "Available",
        "Preparing",
        "Charging",
        "Available",
        "Preparing",
        "Charging",
        "Available",
    ]
    starts = csms.payloads("StartTransaction")
    stops = csms.payloads("StopTransaction")
    # 7400 W for 60 s per sample = 123 Wh; the register carries over between transactions.
    assert [s["meterStart"] for s in starts] == [0, 369]
    assert [s["meterStop"] for s in stops] == [369, 738]
    assert [s["transactionId"] for s in stops] == [100, 101]
    assert {s["reason"] for s in stops} == {"Local"}
    assert {s["idTag"] for s in starts} == {"SIMTAG01"}

    samples = csms.payloads("MeterValues")
    assert [s["transactionId"] for s in samples] == [100] * 3 + [101] * 3
    first = _sampled(samples[0])
    assert first["Energy.Active.Import.Register"]["value"] == "123"
    assert first["Energy.Active.Import.Register"]["unit"] == "Wh"
    assert first["Power.Active.Import"] == {
        "value": "7400",
        "context": "Sample.Periodic",
        "measurand": "Power.Active.Import",
        "unit": "W",
    }
    assert charger.transaction_id is None
    assert lines[1].endswith(
        "-> BootNotification vendor=ocpp-proxy model=SimulatedCharger <- Accepted interval=300"
    )
    assert any("<- Accepted transactionId=100" in line for line in lines)


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_run_session_2_x_sends_transaction_events(version: str) -> None:
    async with session(version) as (charger, csms, _lines):
        (transaction_id,) = await charger.run_session(transactions=1, meter_samples=3)

    assert csms.actions() == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "StatusNotification",
        "TransactionEvent",
        "StatusNotification",
        "TransactionEvent",
        "TransactionEvent",
        "TransactionEvent",
        "TransactionEvent",
        "StatusNotification",
    ]
    boot = csms.payloads("BootNotification")[0]
    assert boot["reason"] == "PowerUp"
    assert boot["chargingStation"]["vendorName"] == "ocpp-proxy"
    statuses = csms.payloads("StatusNotification")
    assert [s["connectorStatus"] for s in statuses] == [
        "Available",
        "Occupied",
        "Occupied",
        "Available",
    ]
    assert {(s["evseId"], s["connectorId"]) for s in statuses} == {(1, 1)}
    assert csms.payloads("Authorize") == [{"idToken": {"idToken": "SIMTAG01", "type": "ISO14443"}}]

    events = csms.payloads("TransactionEvent")
    assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Updated", "Ended"]
    assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 4]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {transaction_id}
    assert isinstance(transaction_id, str)
    started, ended = events[0], events[-1]
    assert started["triggerReason"] == "Authorized"
    assert started["idToken"] == {"idToken": "SIMTAG01", "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert _sampled(ended)["Energy.Active.Import.Register"]["value"] == 369
    update = _sampled(events[1])
    assert update["Energy.Active.Import.Register"]["unitOfMeasure"] == {"unit": "Wh"}
    assert update["Energy.Active.Import.Register"]["value"] == 123
    assert update["Power.Active.Import"]["unitOfMeasure"] == {"unit": "W"}
    assert update["Power.Active.Import"]["value"] == 7400
    assert events[1]["triggerReason"] == "MeterValuePeriodic"


async def test_run_session_stops_when_the_boot_is_rejected() -> None:
    async with session("1.6") as (charger, csms, _lines):
        csms.boot_status = "Rejected"
        with pytest.raises(SimulationError, match="Rejected"):
            await charger.run_session()
        assert csms.actions() == ["BootNotification"]


async def test_run_session_stops_when_the_id_tag_is_refused() -> None:
    async with session("2.0.1") as (charger, csms, _lines):
        csms.reject_id_tags.add("SIMTAG01")
        with pytest.raises(SimulationError, match="Invalid"):
            await charger.run_session()
        assert "TransactionEvent" not in csms.actions()


async def test_steps_can_be_scripted_one_by_one() -> None:
    async with session("1.6") as (charger, csms, lines):
        boot = await charger.boot()
        assert (boot.status, boot.interval) == ("Accepted", 300)
        transaction_id = await charger.start_transaction(2, "TAG", 1000)
        assert transaction_id == 100 == charger.transaction_id
        assert charger.transaction_connector_id == 2
        await charger.meter_values(2, transaction_id, 1500.5, 3600)
        answer = await charger.stop_transaction(transaction_id, 2000, reason="EVDisconnected")
        assert answer.id_tag_info == {"status": "Accepted"}
        assert charger.transaction_id is None

    sample = _sampled(csms.payloads("MeterValues")[0])
    assert sample["Energy.Active.Import.Register"]["value"] == "1500.5"
    assert sample["Power.Active.Import"]["value"] == "3600"
    assert csms.payloads("StopTransaction")[0]["reason"] == "EVDisconnected"
    assert len(lines) == 1 + 4  # "connected" plus one line per step


async def test_unknown_status_is_refused_before_sending() -> None:
    async with session("1.6") as (charger, csms, _lines):
        with pytest.raises(ValueError, match="Occupied"):
            await charger.status(1, "Occupied")
        await charger.heartbeat()
        assert csms.actions() == ["Heartbeat"]


# --------------------------------------------------------------------------------------------
# Remote commands, OCPP 1.6
# --------------------------------------------------------------------------------------------


async def test_remote_start_and_stop_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        await charger.boot()
        answer = await csms.call(
            call16.RemoteStartTransaction(id_tag="REMOTE1", connector_id=1), suppress=False
        )
        assert answer.status == "Accepted"

        start = await csms.wait_for("StartTransaction")
        assert (start["idTag"], start["connectorId"]) == ("REMOTE1", 1)
        await charger.wait_background()
        assert charger.transaction_id == 100
        assert await charger.wait_for_command("RemoteStartTransaction") == {
            "idTag": "REMOTE1",
            "connectorId": 1,
        }
        assert [p["status"] for p in csms.payloads("StatusNotification")] == [
            "Preparing",
            "Charging",
        ]

        # A second start while charging, and a stop for another transaction, are refused.
        again = await csms.call(call16.RemoteStartTransaction(id_tag="OTHER"), suppress=False)
        assert again.status == "Rejected"
        wrong = await csms.call(call16.RemoteStopTransaction(transaction_id=7), suppress=False)
        assert wrong.status == "Rejected"

        stop_answer = await csms.call(
            call16.RemoteStopTransaction(transaction_id=100), suppress=False
        )
        assert stop_answer.status == "Accepted"
        stop = await csms.wait_for("StopTransaction")
        assert (stop["transactionId"], stop["reason"]) == (100, "Remote")
        await charger.wait_background()
        assert charger.transaction_id is None
        assert csms.payloads("StatusNotification")[-1]["status"] == "Available"
        assert [action for action, _p in charger.received] == [
            "RemoteStartTransaction",
            "RemoteStartTransaction",
            "RemoteStopTransaction",
            "RemoteStopTransaction",
        ]


async def test_remote_start_without_connector_uses_connector_1_and_holds_its_profile() -> None:
    profile = {
        "chargingProfileId": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 3700.0}],
        },
    }
    async with session("1.6") as (charger, csms, _lines):
        await csms.call(
            call16.RemoteStartTransaction(id_tag="REMOTE1", charging_profile=profile),
            suppress=False,
        )
        start = await csms.wait_for("StartTransaction")
        assert start["connectorId"] == 1
        await charger.wait_background()
        held = charger.charging_profiles[("TxProfile", 1)]
        assert held["chargingSchedule"] == profile["chargingSchedule"]
        assert held["transactionId"] == charger.transaction_id

        # The TxProfile ends with its transaction.
        await charger.stop_transaction(charger.transaction_id, 500)
        assert charger.charging_profiles == {}


async def test_set_get_and_clear_charging_profile_1_6() -> None:
    profile = {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": "2024-01-01T00:00:00Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0},
                {"startPeriod": 3600, "limit": 6.5},
            ],
        },
    }
    async with session("1.6") as (charger, csms, _lines):
        answer = await csms.call(
            call16.SetChargingProfile(connector_id=1, cs_charging_profiles=profile),
            suppress=False,
        )
        assert answer.status == "Accepted"
        assert await charger.wait_for_command("SetChargingProfile") == {
            "connectorId": 1,
            "csChargingProfiles": profile,
        }
        assert charger.charging_profiles == {("TxDefaultProfile", 0): profile}
        assert charger.charging_profile_targets == {("TxDefaultProfile", 0): 1}

        schedule = await csms.call(
            call16.GetCompositeSchedule(connector_id=1, duration=7200), suppress=False
        )
        assert schedule.status == "Accepted"
        assert schedule.charging_schedule["charging_schedule_period"][1] == {
            "start_period": 3600,
            "limit": 6.5,
        }

        # A TxProfile needs a transaction on that connector.
        tx_profile = dict(profile, chargingProfilePurpose="TxProfile", chargingProfileId=8)
        refused = await csms.call(
            call16.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile),
            suppress=False,
        )
        assert refused.status == "Rejected"

        cleared = await csms.call(call16.ClearChargingProfile(id=7), suppress=False)
        assert cleared.status == "Accepted"
        assert charger.charging_profiles == {}
        unknown = await csms.call(call16.ClearChargingProfile(id=7), suppress=False)
        assert unknown.status == "Unknown"


async def test_configuration_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        got = await csms.call(
            call16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]), suppress=False
        )
        assert got.configuration_key == [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
        ]
        assert got.unknown_key == ["NoSuchKey"]

        results = [
            (
                await csms.call(call16.ChangeConfiguration(key=key, value=value), suppress=False)
            ).status
            for key, value in [
                ("HeartbeatInterval", "60"),
                ("NumberOfConnectors", "2"),
                ("NoSuchKey", "1"),
            ]
        ]
        assert results == ["Accepted", "Rejected", "NotSupported"]
        # Recorded before the answer left: no waiting needed once the CSMS has it.
        assert charger.received[-1] == ("ChangeConfiguration", {"key": "NoSuchKey", "value": "1"})
        assert charger.configuration["HeartbeatInterval"] == "60"
        assert charger.configuration["NumberOfConnectors"] == "1"

        every = await csms.call(call16.GetConfiguration(), suppress=False)
        assert {entry["key"] for entry in every.configuration_key} == set(charger.configuration)
        assert (await charger.wait_for_command("ChangeConfiguration"))["key"] == "HeartbeatInterval"
        assert (await charger.wait_for_command("ChangeConfiguration"))["key"] == (
            "NumberOfConnectors"
        )


async def test_trigger_message_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        for message in ["StatusNotification", "Heartbeat", "BootNotification", "MeterValues"]:
            answer = await csms.call(
                call16.TriggerMessage(requested_message=message), suppress=False
            )
            assert answer.status == "Accepted"
            await csms.wait_for(message)
        await charger.wait_background()
        assert csms.payloads("StatusNotification") == [
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": ANY_TS}
        ]
        refused = await csms.call(
            call16.TriggerMessage(requested_message="StatusNotification", connector_id=9),
            suppress=False,
        )
        assert refused.status == "Rejected"


class _AnyTimestamp:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.endswith("Z") and "T" in other

    def __hash__(self) -> int:
        return 0


ANY_TS = _AnyTimestamp()


async def test_reset_stops_the_transaction_and_boots_again_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        await charger.boot()
        transaction_id = await charger.start_transaction(1, "TAG", 0)
        await charger.meter_values(1, transaction_id, 250, 7400)
        answer = await csms.call(call16.Reset(type="Hard"), suppress=False)
        assert answer.status == "Accepted"
        stop = await csms.wait_for("StopTransaction")
        assert (stop["transactionId"], stop["reason"], stop["meterStop"]) == (
            transaction_id,
            "HardReset",
            250,
        )
        await charger.wait_background()
        assert csms.actions()[-3:] == ["StopTransaction", "BootNotification", "StatusNotification"]
        assert charger.transaction_id is None


async def test_other_commands_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        data = await csms.call(
            call16.DataTransfer(vendor_id="com.example", message_id="ping", data="hello"),
            suppress=False,
        )
        assert (data.status, data.data) == ("Accepted", "hello")

        unlocked = await csms.call(call16.UnlockConnector(connector_id=1), suppress=False)
        assert unlocked.status == "Unlocked"

        unavailable = await csms.call(
            call16.ChangeAvailability(connector_id=0, type="Inoperative"), suppress=False
        )
        assert unavailable.status == "Accepted"
        assert (await csms.wait_for("StatusNotification"))["status"] == "Unavailable"
        await charger.wait_background()
        await csms.call(call16.ChangeAvailability(connector_id=1, type="Operative"))
        assert (await csms.wait_for("StatusNotification"))["status"] == "Available"
        await charger.wait_background()

        reserved = await csms.call(
            call16.ReserveNow(
                connector_id=1,
                expiry_date="2030-01-01T00:00:00Z",
                id_tag="RES",
                reservation_id=3,
            ),
            suppress=False,
        )
        assert reserved.status == "Accepted"
        assert (await csms.wait_for("StatusNotification"))["status"] == "Reserved"
        await charger.wait_background()
        cancelled = await csms.call(call16.CancelReservation(reservation_id=3), suppress=False)
        assert cancelled.status == "Accepted"
        again = await csms.call(call16.CancelReservation(reservation_id=3), suppress=False)
        assert again.status == "Rejected"

        # A reserved connector used by its id tag passes the reservation id along.
        await csms.call(
            call16.ReserveNow(
                connector_id=1, expiry_date="2030-01-01T00:00:00Z", id_tag="RES", reservation_id=4
            )
        )
        await charger.wait_background()
        await charger.start_transaction(1, "RES", 0)
        assert (await csms.wait_for("StartTransaction"))["reservationId"] == 4

        # A command the charger has no handler for gets a NotImplemented CALLERROR.
        with pytest.raises(OcppNotImplementedError):
            await csms.call(call16.ClearCache(), suppress=False)
        assert await charger.wait_for_command("ClearCache") == {}


async def test_remote_start_authorizes_first_when_configured_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        await csms.call(call16.ChangeConfiguration(key="AuthorizeRemoteTxRequests", value="true"))
        csms.reject_id_tags.add("BAD")
        refused = await csms.call(call16.RemoteStartTransaction(id_tag="BAD"), suppress=False)
        assert refused.status == "Accepted"  # the charger only learns it by authorizing
        assert (await csms.wait_for("Authorize"))["idTag"] == "BAD"
        await charger.wait_background()
        assert charger.transaction_id is None
        assert "StartTransaction" not in csms.actions()

        await csms.call(call16.RemoteStartTransaction(id_tag="GOOD"))
        await csms.wait_for("StartTransaction")
        await charger.wait_background()
        assert csms.actions() == [
            "Authorize",
            "Authorize",
            "StatusNotification",
            "StartTransaction",
            "StatusNotification",
        ]


async def test_remote_start_is_refused_on_an_unavailable_connector_1_6() -> None:
    async with session("1.6") as (charger, csms, _lines):
        await charger.status(1, "Unavailable")
        answer = await csms.call(call16.RemoteStartTransaction(id_tag="X"), suppress=False)
        assert answer.status == "Rejected"
        unknown = await csms.call(
            call16.RemoteStartTransaction(id_tag="X", connector_id=2), suppress=False
        )
        assert unknown.status == "Rejected"


class BrokenStartCsms16(Csms16):
    @on("StartTransaction")
    def on_start_transaction(self, **_: Any) -> Any:
        raise RuntimeError("CSMS bug")


async def test_a_failed_follow_up_is_raised_by_wait_background() -> None:
    async with session("1.6", csms_cls=BrokenStartCsms16) as (charger, csms, lines):
        await csms.call(call16.RemoteStartTransaction(id_tag="X"))
        await csms.wait_for("StartTransaction")
        with pytest.raises(InternalError):
            await charger.wait_background()
        await charger.wait_background()  # raised once; still listed in errors
        assert [type(e) for e in charger.errors] == [InternalError]
        assert "RemoteStartTransaction follow-up failed" in lines[-1]
        # The charger is not stuck in "starting": a new remote start is accepted.
        again = await csms.call(call16.RemoteStartTransaction(id_tag="X"), suppress=False)
        assert again.status == "Accepted"
        await csms.wait_for("StartTransaction")
        with pytest.raises(InternalError):
            await charger.wait_background()


@dataclass
class NoSuchAction:
    """A CALL whose action no OCPP version defines."""


async def test_an_undefined_action_gets_not_supported() -> None:
    async with session("1.6") as (charger, csms, lines):
        with pytest.raises(NotSupportedError):
            await csms.call(NoSuchAction(), suppress=False, skip_schema_validation=True)
        assert await charger.wait_for_command("NoSuchAction") == {}
        assert lines[-1].endswith("<- NoSuchAction {} -> CALLERROR NotSupported")


# --------------------------------------------------------------------------------------------
# Remote commands, OCPP 2.0.1
# --------------------------------------------------------------------------------------------


async def test_request_start_and_stop_2_0_1() -> None:
    async with session("2.0.1") as (charger, csms, _lines):
        await charger.boot()
        answer = await csms.call(
            call201.RequestStartTransaction(
                id_token={"id_token": "REMOTE1", "type": "Central"}, remote_start_id=42
            ),
            suppress=False,
        )
        assert answer.status == "Accepted"
        started = await csms.wait_for("TransactionEvent")
        assert started["eventType"] == "Started"
        assert started["triggerReason"] == "RemoteStart"
        assert started["idToken"] == {"idToken": "REMOTE1", "type": "Central"}
        assert started["transactionInfo"]["remoteStartId"] == 42
        await charger.wait_background()
        transaction_id = started["transactionInfo"]["transactionId"]
        assert charger.transaction_id == transaction_id
        assert await charger.wait_for_command("RequestStartTransaction") == {
            "idToken": {"idToken": "REMOTE1", "type": "Central"},
            "remoteStartId": 42,
        }

        busy = await csms.call(
            call201.RequestStartTransaction(
                id_token={"id_token": "OTHER", "type": "Central"}, remote_start_id=43
            ),
            suppress=False,
        )
        assert busy.status == "Rejected"
        wrong = await csms.call(
            call201.RequestStopTransaction(transaction_id="not-it"), suppress=False
        )
        assert wrong.status == "Rejected"

        stop_answer = await csms.call(
            call201.RequestStopTransaction(transaction_id=transaction_id), suppress=False
        )
        assert stop_answer.status == "Accepted"
        ended = await csms.wait_for("TransactionEvent")
        assert ended["eventType"] == "Ended"
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert ended["seqNo"] == 1
        await charger.wait_background()
        assert charger.transaction_id is None
        assert csms.payloads("StatusNotification")[-1]["connectorStatus"] == "Available"


async def test_set_and_clear_charging_profile_2_0_1() -> None:
    profile = {
        "id": 11,
        "stackLevel": 2,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 4200.0}],
            }
        ],
    }
    async with session("2.0.1") as (charger, csms, _lines):
        answer = await csms.call(
            call201.SetChargingProfile(evse_id=1, charging_profile=profile), suppress=False
        )
        assert answer.status == "Accepted"
        assert charger.charging_profiles == {("TxDefaultProfile", 2): profile}
        assert charger.charging_profile_targets == {("TxDefaultProfile", 2): 1}

        tx_profile = dict(profile, id=12, chargingProfilePurpose="TxProfile", transactionId="x")
        refused = await csms.call(
            call201.SetChargingProfile(evse_id=1, charging_profile=tx_profile), suppress=False
        )
        assert refused.status == "Rejected"

        cleared = await csms.call(
            call201.ClearChargingProfile(
                charging_profile_criteria={"charging_profile_purpose": "TxDefaultProfile"}
            ),
            suppress=False,
        )
        assert cleared.status == "Accepted"
        assert charger.charging_profiles == {}


async def test_variables_2_0_1() -> None:
    async with session("2.0.1") as (charger, csms, _lines):
        got = await csms.call(
            call201.GetVariables(
                get_variable_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    },
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "Nope"}},
                    {"component": {"name": "Nope"}, "variable": {"name": "Nope"}},
                ]
            ),
            suppress=False,
        )
        assert [r["attribute_status"] for r in got.get_variable_result] == [
            "Accepted",
            "UnknownVariable",
            "UnknownComponent",
        ]
        assert got.get_variable_result[0]["attribute_value"] == "300"

        changed = await csms.call(
            call201.SetVariables(
                set_variable_data=[
                    {
                        "attribute_value": "60",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    },
                    {
                        "attribute_value": "99",
                        "component": {"name": "SmartChargingCtrlr"},
                        "variable": {"name": "ProfileStackLevel"},
                    },
                ]
            ),
            suppress=False,
        )
        assert [r["attribute_status"] for r in changed.set_variable_result] == [
            "Accepted",
            "Rejected",
        ]
        assert charger.variables[("OCPPCommCtrlr", "HeartbeatInterval")] == "60"


async def test_trigger_reset_and_other_commands_2_0_1() -> None:
    async with session("2.0.1") as (charger, csms, _lines):
        triggered = await csms.call(
            call201.TriggerMessage(requested_message="StatusNotification"), suppress=False
        )
        assert triggered.status == "Accepted"
        assert (await csms.wait_for("StatusNotification"))["connectorStatus"] == "Available"
        no_tx = await csms.call(
            call201.TriggerMessage(requested_message="TransactionEvent"), suppress=False
        )
        assert no_tx.status == "Rejected"

        transaction_id = await charger.start_transaction(1, "TAG", 10)
        assert (await csms.wait_for("TransactionEvent"))["eventType"] == "Started"
        await csms.call(call201.TriggerMessage(requested_message="TransactionEvent"))
        event = await csms.wait_for("TransactionEvent")
        assert (event["eventType"], event["triggerReason"]) == ("Updated", "Trigger")

        locked = await csms.call(call201.UnlockConnector(evse_id=1, connector_id=1), suppress=False)
        assert locked.status == "OngoingAuthorizedTransaction"
        busy = await csms.call(
            call201.ChangeAvailability(operational_status="Inoperative"), suppress=False
        )
        assert busy.status == "Scheduled"
        data = await csms.call(
            call201.DataTransfer(vendor_id="com.example", data={"a": 1}), suppress=False
        )
        assert (data.status, data.data) == ("Accepted", {"a": 1})

        await charger.wait_background()
        reset = await csms.call(call201.Reset(type="Immediate"), suppress=False)
        assert reset.status == "Accepted"
        ended = await csms.wait_for("TransactionEvent")
        assert ended["transactionInfo"] == {
            "transactionId": transaction_id,
            "chargingState": "Idle",
            "stoppedReason": "ImmediateReset",
        }
        assert ended["triggerReason"] == "ResetCommand"
        boot = await csms.wait_for("BootNotification")
        assert boot["reason"] == "RemoteReset"
        await charger.wait_background()
        assert charger.transaction_id is None


async def test_unknown_command_gets_not_implemented_in_2_1() -> None:
    async with session("2.1") as (charger, csms, _lines):
        with pytest.raises(OcppNotImplementedError):
            await csms.call(v21.call.ClearCache(), suppress=False)
        assert await charger.wait_for_command("ClearCache") == {}
        answer = await csms.call(v21.call.Reset(type="OnIdle"), suppress=False)
        assert answer.status == "Accepted"
        assert (await csms.wait_for("BootNotification"))["reason"] == "RemoteReset"


# --------------------------------------------------------------------------------------------
# Connection, waiting, command line
# --------------------------------------------------------------------------------------------


async def test_wait_for_command_times_out_and_consumes_each_command_once() -> None:
    async with session("1.6") as (charger, csms, _lines):
        with pytest.raises(TimeoutError, match="no Reset received"):
            await charger.wait_for_command("Reset", timeout=0.05)

        waiter = asyncio.create_task(charger.wait_for_command("Reset"))
        await csms.call(call16.Reset(type="Soft"))
        assert await asyncio.wait_for(waiter, 5) == {"type": "Soft"}
        with pytest.raises(TimeoutError):
            await charger.wait_for_command("Reset", timeout=0.05)
        await charger.wait_background()


@pytest.mark.parametrize(
    ("version", "subprotocols", "offered", "negotiated"),
    [
        ("1.6", None, "ocpp1.6", "ocpp1.6"),
        ("2.0.1", None, "ocpp2.0.1", "ocpp2.0.1"),
        ("1.6", [], None, None),
        ("1.6", ["ocpp1.5", "ocpp1.6"], "ocpp1.5, ocpp1.6", "ocpp1.6"),
    ],
)
async def test_connect_offers_subprotocols_and_uses_the_url_as_is(
    version: str, subprotocols: list[str] | None, offered: str | None, negotiated: str | None
) -> None:
    async with server_for(version) as server:
        url = server.url + "/some/where/CP%207"
        async with await SimulatedCharger.connect(
            url, "CP 7", version, subprotocols=subprotocols, log=lambda _line: None
        ) as charger:
            await server.next_peer()
            assert charger.subprotocol == negotiated
        assert server.paths == ["/ocpp/some/where/CP%207"]
        assert server.offered == [offered]
        assert server.negotiated == [negotiated]
        assert not charger.connected


async def test_connect_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="unsupported OCPP version"):
        await SimulatedCharger.connect("ws://127.0.0.1:1/x", "CP_1", "1.5")


async def test_a_lost_connection_fails_the_next_step_quickly() -> None:
    async with session("1.6") as (charger, csms, _lines):
        with pytest.raises(TimeoutError):
            await charger.wait_closed(timeout=0.05)
        await csms._connection.close(code=1001)
        assert await charger.wait_closed() == 1001
        assert not charger.connected
        with pytest.raises(ConnectionError, match="connection closed"):
            await asyncio.wait_for(charger.heartbeat(), 5)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_data_transfer_step(version: str) -> None:
    class DataCsms(CSMS_PEERS[version]):  # type: ignore[misc,valid-type]
        @on("DataTransfer")
        def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
            status = "Accepted" if vendor_id == "com.example" else "UnknownVendorId"
            return self._call_result.DataTransfer(status=status, data="pong")

    async with session(version, csms_cls=DataCsms) as (charger, csms, lines):
        answer = await charger.data_transfer("com.example", "ping", "hi")
        assert (answer.status, answer.data) == ("Accepted", "pong")
        assert (await charger.data_transfer("org.other")).status == "UnknownVendorId"
        assert csms.payloads("DataTransfer") == [
            {"vendorId": "com.example", "messageId": "ping", "data": "hi"},
            {"vendorId": "org.other"},
        ]
        assert lines[-1].endswith(
            "-> DataTransfer vendorId=org.other messageId=None <- UnknownVendorId"
        )


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("ws://localhost:9000/charger", "ws://localhost:9000/charger/CP_1"),
        ("ws://localhost:9000/charger/", "ws://localhost:9000/charger/CP_1"),
        ("ws://localhost:9000/charger/CP_1", "ws://localhost:9000/charger/CP_1"),
        ("ws://localhost:9000/charger/CP_1/", "ws://localhost:9000/charger/CP_1"),
        ("ws://localhost:9000/CP_10", "ws://localhost:9000/CP_10/CP_1"),
        ("ws://localhost:9000", "ws://localhost:9000/CP_1"),
    ],
)
def test_charger_url(base: str, expected: str) -> None:
    assert charger_url(base, "CP_1") == expected


def test_charger_url_encodes_the_id() -> None:
    assert charger_url("ws://h/charger", "my box/1") == "ws://h/charger/my%20box%2F1"
    assert charger_url("ws://h/charger/my%20box", "my box") == "ws://h/charger/my%20box"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_run_simulation_appends_the_id_and_returns_0(version: str) -> None:
    lines: list[str] = []
    async with server_for(version) as server:
        code = await run_simulation(server.url, "CP_9", version, transactions=2, log=lines.append)
        csms = await server.next_peer()
    assert code == 0
    assert server.paths == ["/ocpp/CP_9"]
    assert csms.actions().count("Authorize") == 2
    assert lines[-1].startswith("done: 2 transaction(s)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_run_simulation_reports_a_connection_failure() -> None:
    lines: list[str] = []
    url = f"ws://127.0.0.1:{_free_port()}/charger"
    assert await run_simulation(url, log=lines.append) == 1
    assert lines == [lines[0]]
    assert lines[0].startswith(f"error: cannot connect to {url}/CP_1")


async def test_run_simulation_reports_a_refused_boot() -> None:
    lines: list[str] = []

    class RejectingCsms16(Csms16):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.boot_status = "Rejected"

    async with server_for("1.6", RejectingCsms16) as server:
        assert await run_simulation(server.url, log=lines.append) == 1
    assert "BootNotification answered Rejected" in lines[-1]


async def test_main_async_parses_the_cli_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    async with server_for("2.0.1") as server:
        args = parser.parse_args(
            [
                "--url",
                server.url + "/",
                "--id",
                "CP_X",
                "--version",
                "2.0.1",
                "--transactions",
                "1",
                "--meter-samples",
                "2",
            ]
        )
        assert (args.id, args.version, args.transactions, args.meter_samples) == (
            "CP_X",
            "2.0.1",
            1,
            2,
        )
        assert await main_async(args) == 0
        csms = await server.next_peer()
    assert server.paths == ["/ocpp/CP_X"]
    assert csms.actions().count("TransactionEvent") == 2 + 2


def test_add_arguments_defaults_and_choices() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--url", "ws://h/charger"])
    assert (args.id, args.version, args.transactions, args.meter_samples) == ("CP_1", "1.6", 1, 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--url", "ws://h", "--version", "1.5"])
    with pytest.raises(SystemExit):
        parser.parse_args([])


async def test_result201_is_what_steps_return() -> None:
    async with session("2.0.1") as (charger, _csms, _lines):
        assert isinstance(await charger.heartbeat(), result201.Heartbeat)
