"""Translation between OCPP 1.6 and 2.0.1 / 2.1: every mapped action, both directions.

Every message a translator produces is checked against the target version's JSON schema with
the ``ocpp`` library's validators; so is every input the tests feed it (the inputs are what a
real peer of that version could send).
"""

from __future__ import annotations

import decimal
import json
from typing import Any

import pytest
from ocpp.messages import MessageType, get_validator

from ocpp_proxy.protocol.local_csms import local_answer
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.translation import (
    Forward,
    Refuse,
    Reply,
    Translator,
    backend_commands,
    charger_messages,
    translation_needed,
)

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TS = "2026-01-01T00:00:00Z"


def valid(version: OcppVersion, kind: int, action: str, payload: dict[str, Any]) -> None:
    """Assert ``payload`` validates against ``version``'s schema (the ``ocpp`` library's)."""
    # 1.6 limits are multiples of 0.1: parse floats as decimals, as the library does itself.
    validator = get_validator(kind, action, version.value, parse_float=decimal.Decimal)
    validator.validate(json.loads(json.dumps(payload), parse_float=decimal.Decimal))


def call(version: OcppVersion, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    valid(version, MessageType.Call, action, payload)
    return payload


def result(version: OcppVersion, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    valid(version, MessageType.CallResult, action, payload)
    return payload


class Link:
    """A translator with its two peers' schemas checked on every message that crosses it."""

    def __init__(self, charger: OcppVersion, backend: OcppVersion) -> None:
        self.charger, self.backend = charger, backend
        self.t = Translator(charger, backend, "CP-1", clock=lambda: NOW)
        self.n = 0

    def up(self, action: str, payload: dict[str, Any], tx: int | None = None) -> Forward | Reply:
        """The charger sends a CALL: what the backend gets (validated) or the local answer."""
        self.n += 1
        out = self.t.charger_call(str(self.n), action, call(self.charger, action, payload), tx)
        if isinstance(out, Forward):
            valid(self.backend, MessageType.Call, out.action, out.payload)
        else:
            valid(self.charger, MessageType.CallResult, action, out.payload)
        return out

    def answer_up(self, sent: Forward, payload: dict[str, Any]) -> dict[str, Any]:
        """The backend answers the last charger CALL: what the charger gets (validated)."""
        answer = self.t.backend_answer(str(self.n), result(self.backend, sent.action, payload))
        assert answer is not None
        return answer

    def down(self, action: str, payload: dict[str, Any]) -> Forward | Reply | Refuse:
        """The backend sends a command: what the charger gets (validated), or the answer."""
        self.n += 1
        out = self.t.backend_call(f"b{self.n}", action, call(self.backend, action, payload))
        if isinstance(out, Forward):
            valid(self.charger, MessageType.Call, out.action, out.payload)
        elif isinstance(out, Reply):
            valid(self.backend, MessageType.CallResult, action, out.payload)
        return out

    def answer_down(self, action: str, sent: Forward, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self.t.charger_answer(f"b{self.n}", result(self.charger, sent.action, payload))
        assert answer is not None
        valid(self.backend, MessageType.CallResult, action, answer)
        return answer


def forward(out: object) -> Forward:
    assert isinstance(out, Forward), out
    return out


BACKENDS_2X = pytest.mark.parametrize("backend", [V201, V21], ids=["2.0.1", "2.1"])


def test_which_pairs_are_translated() -> None:
    assert translation_needed(V16, V201) and translation_needed(V21, V16)
    assert not translation_needed(V16, V16)
    assert not translation_needed(V201, V21)  # 2.0.1 against 2.1 is not translated
    with pytest.raises(ValueError, match="no translation"):
        Translator(V201, V201)


# == a 1.6 charger, a 2.x backend: the charger's messages ========================================


@BACKENDS_2X
def test_a_whole_16_session_reaches_a_2x_backend_as_transaction_events(
    backend: OcppVersion,
) -> None:
    link = Link(V16, backend)
    boot = forward(
        link.up(
            "BootNotification",
            {
                "chargePointVendor": "Acme",
                "chargePointModel": "Wallbox",
                "chargePointSerialNumber": "SN-1",
                "firmwareVersion": "1.2.3",
                "iccid": "8931",
            },
        )
    )
    assert boot.payload == {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "Wallbox",
            "vendorName": "Acme",
            "serialNumber": "SN-1",
            "firmwareVersion": "1.2.3",
            "modem": {"iccid": "8931"},
        },
    }
    assert link.answer_up(boot, {"currentTime": TS, "interval": 60, "status": "Accepted"}) == {
        "currentTime": TS,
        "interval": 60,
        "status": "Accepted",
    }
    status = lambda s: {"connectorId": 1, "errorCode": "NoError", "status": s, "timestamp": TS}  # noqa: E731
    sent = forward(link.up("StatusNotification", status("Available")))
    assert sent.payload["connectorStatus"] == "Available" and sent.payload["evseId"] == 1
    assert link.answer_up(sent, {}) == {}
    auth = forward(link.up("Authorize", {"idTag": "CARD-1"}))
    assert auth.payload == {"idToken": {"idToken": "CARD-1", "type": "ISO14443"}}
    assert link.answer_up(auth, {"idTokenInfo": {"status": "NotAtThisTime"}}) == {
        "idTagInfo": {"status": "Invalid"}
    }
    preparing = forward(link.up("StatusNotification", status("Preparing")))
    assert preparing.payload["connectorStatus"] == "Occupied"

    start = forward(
        link.up(
            "StartTransaction",
            {"connectorId": 1, "idTag": "CARD-1", "meterStart": 1000, "timestamp": TS},
            tx=7,
        )
    )
    assert start.action == "TransactionEvent"
    event = start.payload
    tx_id = event["transactionInfo"]["transactionId"]
    assert (event["eventType"], event["seqNo"], event["triggerReason"]) == (
        "Started",
        0,
        "Authorized",
    )
    assert event["idToken"] == {"idToken": "CARD-1", "type": "ISO14443"}
    assert event["evse"] == {"id": 1, "connectorId": 1}
    assert event["meterValue"][0]["sampledValue"][0]["value"] == 1000
    conf = link.answer_up(start, {"idTokenInfo": {"status": "Accepted"}})
    # The charger's transaction id stays the one the proxy gave it.
    assert conf == {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}

    charging = forward(link.up("StatusNotification", status("Charging")))
    # Occupied stays Occupied: the charging state changes, in the transaction's event.
    assert charging.action == "TransactionEvent"
    assert charging.payload["triggerReason"] == "ChargingStateChanged"
    assert charging.payload["transactionInfo"] == {
        "transactionId": tx_id,
        "chargingState": "Charging",
    }
    assert charging.payload["seqNo"] == 1

    meter = forward(
        link.up(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": 7,
                "meterValue": [
                    {
                        "timestamp": TS,
                        "sampledValue": [
                            {
                                "value": "1500",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                            {"value": "31", "measurand": "Temperature", "unit": "Celsius"},
                        ],
                    }
                ],
            },
            tx=7,
        )
    )
    assert meter.payload["eventType"] == "Updated" and meter.payload["seqNo"] == 2
    assert meter.payload["triggerReason"] == "MeterValuePeriodic"
    samples = meter.payload["meterValue"][0]["sampledValue"]
    # Temperature has no 2.x sampled value: dropped; numbers become numbers.
    assert [s["value"] for s in samples] == [1500, 7.4]
    assert samples[1]["unitOfMeasure"] == {"unit": "kW"}

    stop = forward(
        link.up(
            "StopTransaction",
            {
                "transactionId": 7,
                "meterStop": 4200,
                "timestamp": TS,
                "reason": "EVDisconnected",
                "idTag": "CARD-1",
                "transactionData": [
                    {
                        "timestamp": TS,
                        "sampledValue": [{"value": "4200", "context": "Transaction.End"}],
                    }
                ],
            },
            tx=7,
        )
    )
    ended = stop.payload
    assert (ended["eventType"], ended["seqNo"]) == ("Ended", 3)
    assert ended["transactionInfo"] == {"transactionId": tx_id, "stoppedReason": "EVDisconnected"}
    assert ended["triggerReason"] == "EVCommunicationLost"
    assert ended["meterValue"][-1]["sampledValue"][0]["value"] == 4200
    assert link.answer_up(stop, {}) == {}
    finishing = forward(link.up("StatusNotification", status("Finishing")))
    assert finishing.action == "StatusNotification"  # no transaction left to carry it


@BACKENDS_2X
def test_16_charger_messages_without_a_transaction(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    heartbeat = forward(link.up("Heartbeat", {}))
    assert link.answer_up(heartbeat, {"currentTime": TS}) == {"currentTime": TS}
    meter = forward(
        link.up(
            "MeterValues",
            {
                "connectorId": 0,
                "meterValue": [
                    {
                        "timestamp": TS,
                        "sampledValue": [{"value": "230.1", "measurand": "Voltage", "unit": "V"}],
                    }
                ],
            },
        )
    )
    assert meter.action == "MeterValues" and meter.payload["evseId"] == 0
    # Nothing a 2.x backend can read (a signed reading only): answered for the backend.
    signed = link.up(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {"timestamp": TS, "sampledValue": [{"value": "AB12", "format": "SignedData"}]}
            ],
        },
    )
    assert isinstance(signed, Reply) and signed.payload == {}
    transfer = forward(link.up("DataTransfer", {"vendorId": "acme", "messageId": "m", "data": "x"}))
    assert transfer.payload == {"vendorId": "acme", "messageId": "m", "data": "x"}
    assert link.answer_up(transfer, {"status": "Accepted", "data": {"k": 1}}) == {
        "status": "Accepted",
        "data": '{"k":1}',
    }
    firmware = forward(link.up("FirmwareStatusNotification", {"status": "Downloading"}))
    assert firmware.payload == {"status": "Downloading"}
    diag = forward(link.up("DiagnosticsStatusNotification", {"status": "UploadFailed"}))
    assert diag.action == "LogStatusNotification" and diag.payload == {"status": "UploadFailure"}
    security = forward(
        link.up("SecurityEventNotification", {"type": "FirmwareUpdated", "timestamp": TS})
    )
    assert security.action == "SecurityEventNotification"
    station = forward(
        link.up(
            "StatusNotification",
            {"connectorId": 0, "errorCode": "NoError", "status": "Unavailable"},
        )
    )
    assert station.action == "NotifyEvent"
    assert station.payload["eventData"][0]["variable"] == {"name": "AvailabilityState"}
    assert station.payload["eventData"][0]["actualValue"] == "Unavailable"
    forward(
        link.up(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        )
    )
    warning = forward(
        link.up(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "HighTemperature",
                "status": "Available",
                "vendorErrorCode": "E42",
            },
        )
    )
    # A warning without a status change: 2.x's NotifyEvent, with the 1.6 error code kept.
    assert warning.action == "NotifyEvent"
    data = warning.payload["eventData"][0]
    assert (data["techCode"], data["techInfo"], data["variable"]["name"]) == (
        "E42",
        "HighTemperature",
        "Problem",
    )


@BACKENDS_2X
def test_a_resent_charger_message_keeps_its_seq_no(backend: OcppVersion) -> None:
    translator = Translator(V16, backend, "CP-1", clock=lambda: NOW)
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}
    first = translator.charger_call("u1", "StartTransaction", start, 3)
    again = translator.charger_call("u1", "StartTransaction", start, 3)
    assert first is again
    meter = {
        "connectorId": 1,
        "transactionId": 3,
        "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "5"}]}],
    }
    updated = translator.charger_call("u2", "MeterValues", meter, 3)
    assert isinstance(updated, Forward) and updated.payload["seqNo"] == 1
    # The 2.x id is derived from the charge point and the charger-side id: stable.
    other = Translator(V16, backend, "CP-1")
    assert other.remember_transaction(3) == updated.payload["transactionInfo"]["transactionId"]
    assert Translator(V16, backend, "CP-2").remember_transaction(3) != other.remember_transaction(3)


# == a 2.x backend commanding a 1.6 charger ======================================================


@BACKENDS_2X
def test_remote_start_and_stop_from_a_2x_backend(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    profile = {
        "id": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 13.33}],
            }
        ],
    }
    sent = forward(
        link.down(
            "RequestStartTransaction",
            {
                "idToken": {"idToken": "APP-9", "type": "Central"},
                "remoteStartId": 77,
                "evseId": 1,
                "chargingProfile": profile,
            },
        )
    )
    assert sent.action == "RemoteStartTransaction"
    assert sent.payload["idTag"] == "APP-9" and sent.payload["connectorId"] == 1
    assert sent.payload["chargingProfile"]["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 13.3}
    ]
    assert link.answer_down("RequestStartTransaction", sent, {"status": "Accepted"}) == {
        "status": "Accepted"
    }
    start = forward(
        link.up(
            "StartTransaction",
            {"connectorId": 1, "idTag": "APP-9", "meterStart": 0, "timestamp": TS},
            tx=11,
        )
    )
    # The remote start is recognised: its remoteStartId comes back in the Started event.
    assert start.payload["transactionInfo"]["remoteStartId"] == 77
    assert start.payload["triggerReason"] == "RemoteStart"
    tx_id = start.payload["transactionInfo"]["transactionId"]
    stop = forward(link.down("RequestStopTransaction", {"transactionId": tx_id}))
    assert stop.payload == {"transactionId": 11}
    assert link.answer_down("RequestStopTransaction", stop, {"status": "Accepted"}) == {
        "status": "Accepted"
    }
    unknown = link.down("RequestStopTransaction", {"transactionId": "no-such-transaction"})
    assert isinstance(unknown, Reply) and unknown.payload == {"status": "Rejected"}


@BACKENDS_2X
def test_2x_backend_commands_reach_a_16_charger(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    cases: list[tuple[str, dict, str, dict, dict, dict]] = [
        # (2.x action, 2.x payload, 1.6 action, expected 1.6 payload, 1.6 answer, expected 2.x answer)
        (
            "Reset",
            {"type": "Immediate"},
            "Reset",
            {"type": "Soft"},
            {"status": "Accepted"},
            {"status": "Accepted"},
        ),
        (
            "ChangeAvailability",
            {"operationalStatus": "Inoperative", "evse": {"id": 1}},
            "ChangeAvailability",
            {"connectorId": 1, "type": "Inoperative"},
            {"status": "Scheduled"},
            {"status": "Scheduled"},
        ),
        (
            "UnlockConnector",
            {"evseId": 1, "connectorId": 1},
            "UnlockConnector",
            {"connectorId": 1},
            {"status": "NotSupported"},
            {"status": "UnlockFailed"},
        ),
        (
            "TriggerMessage",
            {"requestedMessage": "LogStatusNotification"},
            "TriggerMessage",
            {"requestedMessage": "DiagnosticsStatusNotification"},
            {"status": "Accepted"},
            {"status": "Accepted"},
        ),
        ("ClearCache", {}, "ClearCache", {}, {"status": "Rejected"}, {"status": "Rejected"}),
        (
            "DataTransfer",
            {"vendorId": "acme", "data": {"a": [1]}},
            "DataTransfer",
            {"vendorId": "acme", "data": '{"a":[1]}'},
            {"status": "UnknownVendorId"},
            {"status": "UnknownVendorId"},
        ),
        (
            "ReserveNow",
            {
                "id": 3,
                "expiryDateTime": TS,
                "idToken": {"idToken": "C1", "type": "ISO14443"},
                "evseId": 1,
            },
            "ReserveNow",
            {"connectorId": 1, "expiryDate": TS, "idTag": "C1", "reservationId": 3},
            {"status": "Occupied"},
            {"status": "Occupied"},
        ),
        (
            "CancelReservation",
            {"reservationId": 3},
            "CancelReservation",
            {"reservationId": 3},
            {"status": "Accepted"},
            {"status": "Accepted"},
        ),
        (
            "SendLocalList",
            {
                "versionNumber": 4,
                "updateType": "Full",
                "localAuthorizationList": [
                    {
                        "idToken": {"idToken": "C1", "type": "ISO14443"},
                        "idTokenInfo": {"status": "NoCredit"},
                    }
                ],
            },
            "SendLocalList",
            {
                "listVersion": 4,
                "updateType": "Full",
                "localAuthorizationList": [{"idTag": "C1", "idTagInfo": {"status": "Invalid"}}],
            },
            {"status": "NotSupported"},
            {"status": "Failed"},
        ),
        (
            "GetLocalListVersion",
            {},
            "GetLocalListVersion",
            {},
            {"listVersion": 4},
            {"versionNumber": 4},
        ),
        (
            "ClearChargingProfile",
            {
                "chargingProfileCriteria": {
                    "evseId": 1,
                    "chargingProfilePurpose": "ChargingStationMaxProfile",
                }
            },
            "ClearChargingProfile",
            {"connectorId": 1, "chargingProfilePurpose": "ChargePointMaxProfile"},
            {"status": "Unknown"},
            {"status": "Unknown"},
        ),
        (
            "GetLog",
            {
                "logType": "DiagnosticsLog",
                "requestId": 8,
                "log": {"remoteLocation": "ftp://x/", "oldestTimestamp": TS},
            },
            "GetDiagnostics",
            {"location": "ftp://x/", "startTime": TS},
            {"fileName": "diag.zip"},
            {"status": "Accepted", "filename": "diag.zip"},
        ),
        (
            "UpdateFirmware",
            {
                "requestId": 9,
                "firmware": {"location": "https://fw/1.bin", "retrieveDateTime": TS},
                "retries": 2,
            },
            "UpdateFirmware",
            {"location": "https://fw/1.bin", "retrieveDate": TS, "retries": 2},
            {},
            {"status": "Accepted"},
        ),
    ]
    for action, payload, action_16, expected, answer_16, expected_answer in cases:
        sent = forward(link.down(action, payload))
        assert (sent.action, sent.payload) == (action_16, expected), action
        assert link.answer_down(action, sent, answer_16) == expected_answer, action
    # The firmware and log request ids come back in the 1.6 charger's notifications.
    firmware = forward(link.up("FirmwareStatusNotification", {"status": "Installed"}))
    assert firmware.payload == {"status": "Installed", "requestId": 9}
    diag = forward(link.up("DiagnosticsStatusNotification", {"status": "Uploaded"}))
    assert diag.payload == {"status": "Uploaded", "requestId": 8}


@BACKENDS_2X
def test_charging_profiles_from_a_2x_backend(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    start = forward(
        link.up(
            "StartTransaction",
            {"connectorId": 2, "idTag": "T", "meterStart": 0, "timestamp": TS},
            tx=21,
        )
    )
    tx_id = start.payload["transactionInfo"]["transactionId"]
    profile = {
        "id": 12,
        "stackLevel": 2,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": tx_id,
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": TS,
                "duration": 3600,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 7400.0, "numberPhases": 3},
                    {"startPeriod": 1800, "limit": 3680},
                ],
            }
        ],
    }
    sent = forward(link.down("SetChargingProfile", {"evseId": 2, "chargingProfile": profile}))
    assert sent.payload == {
        "connectorId": 2,
        "csChargingProfiles": {
            "chargingProfileId": 12,
            "stackLevel": 2,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": 21,
            "chargingSchedule": {
                "duration": 3600,
                "startSchedule": TS,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 7400, "numberPhases": 3},
                    {"startPeriod": 1800, "limit": 3680},
                ],
            },
        },
    }
    assert link.answer_down("SetChargingProfile", sent, {"status": "NotSupported"}) == {
        "status": "Rejected"
    }
    composite = forward(
        link.down("GetCompositeSchedule", {"duration": 600, "evseId": 2, "chargingRateUnit": "A"})
    )
    assert composite.payload == {"connectorId": 2, "duration": 600, "chargingRateUnit": "A"}
    answer = link.answer_down(
        "GetCompositeSchedule",
        composite,
        {
            "status": "Accepted",
            "connectorId": 2,
            "scheduleStart": TS,
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            },
        },
    )
    assert answer["schedule"]["duration"] == 600 and answer["schedule"]["evseId"] == 2
    external = {**profile, "chargingProfilePurpose": "ChargingStationExternalConstraints"}
    refused = link.down("SetChargingProfile", {"evseId": 2, "chargingProfile": external})
    assert isinstance(refused, Refuse) and refused.code == "NotSupported"
    assert (
        "SetChargingProfile" in refused.description
        and "ChargingStationExternalConstraints" in refused.description
    )


@BACKENDS_2X
def test_variables_of_a_2x_backend_are_a_16_chargers_configuration(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    asked = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedMeasurands"},
            },
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NoSuchVariable"}},
            {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}},
        ]
    }
    sent = forward(link.down("GetVariables", asked))
    assert sent.payload == {"key": ["HeartbeatInterval", "MeterValuesSampledData"]}
    answer = link.answer_down(
        "GetVariables",
        sent,
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ],
            "unknownKey": ["MeterValuesSampledData"],
        },
    )
    assert [
        (r["attributeStatus"], r.get("attributeValue")) for r in answer["getVariableResult"]
    ] == [
        ("Accepted", "300"),
        ("UnknownVariable", None),
        ("UnknownVariable", None),
        ("UnknownComponent", None),
    ]
    change = forward(
        link.down(
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "attributeValue": "60",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        )
    )
    assert (change.action, change.payload) == (
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "60"},
    )
    answer = link.answer_down("SetVariables", change, {"status": "RebootRequired"})
    assert answer["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
    two = link.down(
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "60",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                },
                {
                    "attributeValue": "true",
                    "component": {"name": "AuthCtrlr"},
                    "variable": {"name": "LocalPreAuthorize"},
                },
            ]
        },
    )
    assert isinstance(two, Refuse) and "SetVariables" in two.description


@BACKENDS_2X
def test_untranslatable_2x_commands_are_refused_naming_the_action(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    report = link.down("GetReport", {"requestId": 1})
    assert isinstance(report, Refuse) and report.code == "NotSupported"
    assert "GetReport" in report.description and "1.6" in report.description
    long_token = {"idToken": {"idToken": "X" * 21, "type": "eMAID"}, "remoteStartId": 1}
    refused = link.down("RequestStartTransaction", long_token)
    assert isinstance(refused, Refuse) and "longer than a 1.6 idTag" in refused.description
    per_evse = link.down("Reset", {"type": "Immediate", "evseId": 1})
    assert isinstance(per_evse, Refuse) and "EVSE" in per_evse.description
    link.up(
        "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}, tx=1
    )
    on_idle = link.down("Reset", {"type": "OnIdle"})
    assert isinstance(on_idle, Refuse) and "OnIdle" in on_idle.description


# == a 2.x charging station, a 1.6 backend =======================================================


@pytest.mark.parametrize("charger", [V201, V21], ids=["2.0.1", "2.1"])
def test_a_whole_2x_session_reaches_a_16_backend(charger: OcppVersion) -> None:
    link = Link(charger, V16)
    boot = forward(
        link.up(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "model": "M2",
                    "vendorName": "A very long vendor name, Inc.",
                    "serialNumber": "S",
                },
            },
        )
    )
    assert boot.payload == {
        "chargePointVendor": "A very long vendor n",
        "chargePointModel": "M2",
        "chargePointSerialNumber": "S",
    }
    link.answer_up(boot, {"currentTime": TS, "interval": 300, "status": "Accepted"})
    tx = "d4f0c1e2-tx"
    plugged = link.up(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": TS,
            "triggerReason": "CablePluggedIn",
            "seqNo": 0,
            "transactionInfo": {"transactionId": tx, "chargingState": "EVConnected"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": TS,
                    "sampledValue": [{"value": 12.5, "unitOfMeasure": {"unit": "kWh"}}],
                }
            ],
        },
    )
    # No id token yet: a 1.6 backend has no transaction to hear of; the station is answered.
    assert isinstance(plugged, Reply) and plugged.payload == {}
    start = forward(
        link.up(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": TS,
                "triggerReason": "Authorized",
                "seqNo": 1,
                "transactionInfo": {"transactionId": tx},
                "idToken": {"idToken": "CARD-2", "type": "ISO14443"},
            },
        )
    )
    assert start.action == "StartTransaction"
    assert start.payload == {
        "connectorId": 1,
        "idTag": "CARD-2",
        "meterStart": 12500,
        "timestamp": TS,
    }
    answer = link.answer_up(start, {"transactionId": 555, "idTagInfo": {"status": "Accepted"}})
    assert answer == {"idTokenInfo": {"status": "Accepted"}}
    meter = forward(
        link.up(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": TS,
                "triggerReason": "MeterValuePeriodic",
                "seqNo": 2,
                "transactionInfo": {"transactionId": tx, "chargingState": "Charging"},
                "meterValue": [
                    {
                        "timestamp": TS,
                        "sampledValue": [
                            {"value": 13.0, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}
                        ],
                    }
                ],
            },
        )
    )
    assert meter.action == "MeterValues"
    assert meter.payload["transactionId"] == 555
    assert meter.payload["meterValue"][0]["sampledValue"] == [{"value": "13000", "unit": "Wh"}]
    status = forward(
        link.up(
            "StatusNotification",
            {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        )
    )
    assert status.payload["status"] == "Charging"
    suspended = forward(
        link.up(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": TS,
                "triggerReason": "ChargingStateChanged",
                "seqNo": 3,
                "transactionInfo": {"transactionId": tx, "chargingState": "SuspendedEV"},
            },
        )
    )
    assert (suspended.action, suspended.payload["status"]) == ("StatusNotification", "SuspendedEV")
    # A 1.6 backend stops with its own id; the station hears of its own.
    stop_command = forward(link.down("RemoteStopTransaction", {"transactionId": 555}))
    assert stop_command.payload == {"transactionId": tx}
    assert link.answer_down("RemoteStopTransaction", stop_command, {"status": "Accepted"}) == {
        "status": "Accepted"
    }
    ended = forward(
        link.up(
            "TransactionEvent",
            {
                "eventType": "Ended",
                "timestamp": TS,
                "triggerReason": "RemoteStop",
                "seqNo": 4,
                "transactionInfo": {"transactionId": tx, "stoppedReason": "Remote"},
                "meterValue": [
                    {
                        "timestamp": TS,
                        "sampledValue": [
                            {
                                "value": 14200,
                                "context": "Transaction.End",
                                "measurand": "Energy.Active.Import.Register",
                            }
                        ],
                    }
                ],
            },
        )
    )
    assert ended.action == "StopTransaction"
    assert (
        ended.payload["transactionId"],
        ended.payload["meterStop"],
        ended.payload["reason"],
    ) == (555, 14200, "Remote")
    assert link.answer_up(ended, {"idTagInfo": {"status": "Accepted"}}) == {
        "idTokenInfo": {"status": "Accepted"}
    }
    finishing = forward(
        link.up(
            "StatusNotification",
            {"timestamp": TS, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        )
    )
    assert finishing.payload["status"] == "Finishing"
    # A connector's problem is a 1.6 StatusNotification error; other events are answered.
    problem = forward(
        link.up(
            "NotifyEvent",
            {
                "generatedAt": TS,
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": 1,
                        "timestamp": TS,
                        "trigger": "Alerting",
                        "actualValue": "true",
                        "techCode": "E42",
                        "techInfo": "cable lock jammed",
                        "eventNotificationType": "HardWiredNotification",
                        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                        "variable": {"name": "Problem"},
                    }
                ],
            },
        )
    )
    assert problem.action == "StatusNotification"
    assert (problem.payload["errorCode"], problem.payload["vendorErrorCode"]) == (
        "OtherError",
        "E42",
    )
    assert problem.payload["status"] == "Finishing"  # the connector's last status, unchanged
    other = link.up(
        "NotifyEvent",
        {
            "generatedAt": TS,
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 2,
                    "timestamp": TS,
                    "trigger": "Delta",
                    "actualValue": "Locked",
                    "eventNotificationType": "HardWiredNotification",
                    "component": {"name": "Connector", "evse": {"id": 1}},
                    "variable": {"name": "ConnectorLocked"},
                }
            ],
        },
    )
    assert isinstance(other, Reply)
    # 2.x-only messages are answered on the 1.6 backend's behalf.
    report = link.up(
        "NotifyReport",
        {
            "requestId": 1,
            "generatedAt": TS,
            "seqNo": 0,
            "reportData": [
                {
                    "component": {"name": "X"},
                    "variable": {"name": "Y"},
                    "variableAttribute": [{"value": "1"}],
                }
            ],
        },
    )
    assert isinstance(report, Reply)
    log = forward(link.up("LogStatusNotification", {"status": "PermissionDenied", "requestId": 3}))
    assert (log.action, log.payload) == (
        "DiagnosticsStatusNotification",
        {"status": "UploadFailed"},
    )
    firmware = forward(
        link.up("FirmwareStatusNotification", {"status": "InstallRebooting", "requestId": 1})
    )
    assert firmware.payload == {"status": "Installing"}
    auth = forward(link.up("Authorize", {"idToken": {"idToken": "CARD-3", "type": "ISO14443"}}))
    assert link.answer_up(auth, {"idTagInfo": {"status": "Blocked", "parentIdTag": "GROUP"}}) == {
        "idTokenInfo": {
            "status": "Blocked",
            "groupIdToken": {"idToken": "GROUP", "type": "Central"},
        }
    }
    too_long = link.up("Authorize", {"idToken": {"idToken": "E" * 30, "type": "eMAID"}})
    assert isinstance(too_long, Reply) and too_long.payload == {
        "idTokenInfo": {"status": "Unknown"}
    }


@pytest.mark.parametrize("charger", [V201, V21], ids=["2.0.1", "2.1"])
def test_16_backend_commands_reach_a_2x_charger(charger: OcppVersion) -> None:
    link = Link(charger, V16)
    remote = forward(link.down("RemoteStartTransaction", {"idTag": "APP", "connectorId": 1}))
    assert remote.payload == {
        "idToken": {"idToken": "APP", "type": "Central"},
        "remoteStartId": 1,
        "evseId": 1,
    }
    assert link.answer_down(
        "RemoteStartTransaction", remote, {"status": "Accepted", "transactionId": "t"}
    ) == {"status": "Accepted"}
    assert forward(link.down("Reset", {"type": "Hard"})).payload == {"type": "Immediate"}
    assert forward(
        link.down("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    ).payload == {"operationalStatus": "Inoperative"}
    unlock = forward(link.down("UnlockConnector", {"connectorId": 2}))
    assert unlock.payload == {"evseId": 2, "connectorId": 1}
    assert link.answer_down(
        "UnlockConnector", unlock, {"status": "OngoingAuthorizedTransaction"}
    ) == {"status": "UnlockFailed"}
    trigger = forward(
        link.down("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
    )
    assert trigger.payload == {"requestedMessage": "LogStatusNotification"}
    extended = forward(
        link.down("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    )
    assert extended.payload == {"requestedMessage": "SignChargingStationCertificate"}
    assert link.answer_down("ExtendedTriggerMessage", extended, {"status": "Rejected"}) == {
        "status": "Rejected"
    }
    forward(link.down("ClearCache", {}))
    transfer = forward(link.down("DataTransfer", {"vendorId": "acme", "data": "hello"}))
    assert link.answer_down("DataTransfer", transfer, {"status": "Accepted", "data": [1, 2]}) == {
        "status": "Accepted",
        "data": "[1,2]",
    }
    reserve = forward(
        link.down(
            "ReserveNow",
            {
                "connectorId": 1,
                "expiryDate": TS,
                "idTag": "C",
                "reservationId": 4,
                "parentIdTag": "G",
            },
        )
    )
    assert reserve.payload["groupIdToken"] == {"idToken": "G", "type": "Central"}
    forward(link.down("CancelReservation", {"reservationId": 4}))
    local_list = forward(
        link.down(
            "SendLocalList",
            {
                "listVersion": 2,
                "updateType": "Differential",
                "localAuthorizationList": [{"idTag": "C", "idTagInfo": {"status": "Accepted"}}],
            },
        )
    )
    assert local_list.payload["localAuthorizationList"][0]["idToken"] == {
        "idToken": "C",
        "type": "ISO14443",
    }
    version = forward(link.down("GetLocalListVersion", {}))
    assert link.answer_down("GetLocalListVersion", version, {"versionNumber": 2}) == {
        "listVersion": 2
    }
    config = forward(
        link.down(
            "GetConfiguration",
            {"key": ["HeartbeatInterval", "ConnectionTimeOut", "VendorSpecificKey"]},
        )
    )
    assert config.payload == {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "EVConnectionTimeOut"}},
        ]
    }
    answer = link.answer_down(
        "GetConfiguration",
        config,
        {
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": "120",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                },
                {
                    "attributeStatus": "UnknownVariable",
                    "component": {"name": "TxCtrlr"},
                    "variable": {"name": "EVConnectionTimeOut"},
                },
            ]
        },
    )
    assert answer == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "120"}],
        "unknownKey": ["VendorSpecificKey", "ConnectionTimeOut"],
    }
    everything = forward(link.down("GetConfiguration", {}))
    assert len(everything.payload["getVariableData"]) > 20
    change = forward(
        link.down("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"})
    )
    assert change.payload["setVariableData"][0]["variable"] == {"name": "TxUpdatedInterval"}
    assert link.answer_down(
        "ChangeConfiguration",
        change,
        {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": {"name": "SampledDataCtrlr"},
                    "variable": {"name": "TxUpdatedInterval"},
                }
            ]
        },
    ) == {"status": "Accepted"}
    unknown = link.down("ChangeConfiguration", {"key": "VendorKey", "value": "1"})
    assert isinstance(unknown, Reply) and unknown.payload == {"status": "NotSupported"}
    profile = forward(
        link.down(
            "SetChargingProfile",
            {
                "connectorId": 0,
                "csChargingProfiles": {
                    "chargingProfileId": 3,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "ChargePointMaxProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
                    },
                },
            },
        )
    )
    assert profile.payload["evseId"] == 0
    assert (
        profile.payload["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    )
    forward(link.down("ClearChargingProfile", {"id": 3}))
    composite = forward(link.down("GetCompositeSchedule", {"connectorId": 1, "duration": 60}))
    got = link.answer_down(
        "GetCompositeSchedule",
        composite,
        {
            "status": "Accepted",
            "schedule": {
                "evseId": 1,
                "duration": 60,
                "scheduleStart": TS,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.25}],
            },
        },
    )
    assert got["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 10.2}]
    diagnostics = forward(link.down("GetDiagnostics", {"location": "ftp://x/"}))
    assert diagnostics.payload["logType"] == "DiagnosticsLog"
    assert link.answer_down(
        "GetDiagnostics", diagnostics, {"status": "Accepted", "filename": "d.log"}
    ) == {"fileName": "d.log"}
    firmware = forward(link.down("UpdateFirmware", {"location": "https://fw", "retrieveDate": TS}))
    assert firmware.payload["firmware"] == {"location": "https://fw", "retrieveDateTime": TS}
    assert link.answer_down("UpdateFirmware", firmware, {"status": "Accepted"}) == {}


@BACKENDS_2X
def test_a_base_report_of_a_16_charger_is_its_configuration_reported(backend: OcppVersion) -> None:
    link = Link(V16, backend)
    sent = forward(link.down("GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"}))
    assert sent == Forward("GetConfiguration", {})
    answer = link.answer_down(
        "GetBaseReport",
        sent,
        {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
                {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"},
            ]
        },
    )
    assert answer == {"status": "Accepted"}
    # The report follows as the proxy's own NotifyReport (OCPP 2.0.1 B07), table keys only.
    ((unique_id, action, report),) = link.t.take_follow_ups(lambda: "n1")
    assert (unique_id, action) == ("n1", "NotifyReport") and link.t.is_own_call("n1")
    valid(backend, MessageType.Call, action, report)
    assert report["requestId"] == 5 and report["tbc"] is False
    assert [
        (r["component"]["name"], r["variable"]["name"], r["variableAttribute"][0])
        for r in report["reportData"]
    ] == [
        (
            "OCPPCommCtrlr",
            "HeartbeatInterval",
            {"type": "Actual", "mutability": "ReadWrite", "value": "300"},
        ),
        (
            "SmartChargingCtrlr",
            "ProfileStackLevel",
            {"type": "Actual", "mutability": "ReadOnly", "value": "8"},
        ),
    ]
    summary = link.down("GetBaseReport", {"requestId": 6, "reportBase": "SummaryInventory"})
    assert isinstance(summary, Reply) and summary.payload == {"status": "NotSupported"}


def test_error_codes_are_named_as_the_receiver_names_them() -> None:
    up = Translator(V16, V201)
    assert up.error_to_charger(None, "FormatViolation") == "FormationViolation"
    assert up.error_to_charger(None, "RpcFrameworkError") == "ProtocolError"
    assert (
        up.error_to_backend(None, "OccurenceConstraintViolation") == "OccurrenceConstraintViolation"
    )
    down = Translator(V201, V16)
    assert down.error_to_backend(None, "MessageTypeNotSupported") == "NotSupported"
    assert down.error_to_charger(None, "FormationViolation") == "FormatViolation"


def test_what_survives_a_restart_is_taken_once_the_backend_confirmed_it() -> None:
    down = Translator(V201, V16, "CP-1", clock=lambda: NOW)
    started = {
        "eventType": "Started",
        "timestamp": TS,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t-1"},
        "idToken": {"idToken": "CARD", "type": "ISO14443"},
        "evse": {"id": 1},
    }
    assert isinstance(down.charger_call("s1", "TransactionEvent", started), Forward)
    # Not answered yet: nothing to keep (a restart sends the start again from the outbox).
    assert down.take_changes() == [("t-1", None)]
    down.backend_answer("s1", {"transactionId": 41, "idTagInfo": {"status": "Accepted"}})
    ((transaction_id, kept),) = down.take_changes()
    assert transaction_id == "t-1" and kept is not None and kept["backend_id"] == 41
    again = Translator(V201, V16, "CP-1", clock=lambda: NOW)
    again.restore({"t-1": kept})
    ended = {**started, "eventType": "Ended", "seqNo": 1, "triggerReason": "StopAuthorized"}
    stop = again.charger_call("s2", "TransactionEvent", ended)
    assert isinstance(stop, Forward) and stop.payload["transactionId"] == 41

    up = Translator(V16, V201, "CP-1", clock=lambda: NOW)
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": TS}
    first = up.charger_call("u1", "StartTransaction", start, 9)
    assert isinstance(first, Forward) and up.take_changes() == []
    up.backend_answer("u1", {"idTokenInfo": {"status": "Accepted"}})
    ((transaction_id, kept),) = up.take_changes()
    assert kept == {"kind": "16", "seq_no": 1, "transaction_id": 9, "connector": 1}
    later = Translator(V16, V201, "CP-1", clock=lambda: NOW)
    later.restore({transaction_id: kept})
    meter = {
        "connectorId": 1,
        "transactionId": 9,
        "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "5"}]}],
    }
    updated = later.charger_call("u2", "MeterValues", meter, 9)
    assert isinstance(updated, Forward) and updated.payload["seqNo"] == 1


# == every mapped action, both directions, against both versions' schemas ========================

HASH = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "a" * 16,
    "issuerKeyHash": "b" * 16,
    "serialNumber": "01",
}
PROFILE_16 = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
    },
}
PROFILE_2X = {
    "id": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": [
        {
            "id": 1,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
        }
    ],
}
TOKEN = {"idToken": "CARD", "type": "ISO14443"}
SAMPLE_16 = {"timestamp": TS, "sampledValue": [{"value": "10"}]}
SAMPLE_2X = {"timestamp": TS, "sampledValue": [{"value": 10}]}

#: A request of each charger-initiated action, charger 1.6 (the transaction id, if any).
CHARGER_16 = {
    "BootNotification": ({"chargePointVendor": "V", "chargePointModel": "M"}, None),
    "Heartbeat": ({}, None),
    "StatusNotification": ({"connectorId": 1, "errorCode": "NoError", "status": "Charging"}, None),
    "Authorize": ({"idTag": "CARD"}, None),
    "StartTransaction": ({"connectorId": 1, "idTag": "CARD", "meterStart": 0, "timestamp": TS}, 3),
    "MeterValues": ({"connectorId": 1, "transactionId": 3, "meterValue": [SAMPLE_16]}, 3),
    "StopTransaction": ({"transactionId": 3, "meterStop": 5, "timestamp": TS}, 3),
    "DataTransfer": ({"vendorId": "acme"}, None),
    "FirmwareStatusNotification": ({"status": "Installed"}, None),
    "DiagnosticsStatusNotification": ({"status": "Uploading"}, None),
    "SecurityEventNotification": ({"type": "StartupOfTheDevice", "timestamp": TS}, None),
    "LogStatusNotification": ({"status": "Uploaded", "requestId": 1}, None),
    "SignCertificate": ({"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, None),
    "SignedFirmwareStatusNotification": ({"status": "SignatureVerified", "requestId": 2}, None),
}
#: ... charger 2.x.
CHARGER_2X = {
    "BootNotification": {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    "Heartbeat": {},
    "StatusNotification": {
        "timestamp": TS,
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    },
    "Authorize": {"idToken": TOKEN},
    "TransactionEvent": {
        "eventType": "Started",
        "timestamp": TS,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t"},
        "idToken": TOKEN,
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [SAMPLE_2X],
    },
    "MeterValues": {"evseId": 1, "meterValue": [SAMPLE_2X]},
    "DataTransfer": {"vendorId": "acme", "data": {"x": 1}},
    "FirmwareStatusNotification": {"status": "Downloading", "requestId": 1},
    "LogStatusNotification": {"status": "Uploading", "requestId": 1},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "NotifyEvent": {
        "generatedAt": TS,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": TS,
                "trigger": "Alerting",
                "actualValue": "true",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector", "evse": {"id": 1}},
                "variable": {"name": "Problem"},
            }
        ],
    },
}
#: A command of each backend-initiated action, backend 2.x (charger 1.6).
BACKEND_2X = {
    "RequestStartTransaction": {"idToken": TOKEN, "remoteStartId": 1, "evseId": 1},
    "RequestStopTransaction": {"transactionId": "unknown"},
    "Reset": {"type": "Immediate"},
    "ChangeAvailability": {"operationalStatus": "Operative"},
    "UnlockConnector": {"evseId": 1, "connectorId": 1},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "ClearCache": {},
    "DataTransfer": {"vendorId": "acme", "messageId": "m", "data": "x"},
    "ReserveNow": {"id": 1, "expiryDateTime": TS, "idToken": TOKEN},
    "CancelReservation": {"reservationId": 1},
    "SendLocalList": {"versionNumber": 1, "updateType": "Full"},
    "GetLocalListVersion": {},
    "GetVariables": {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    },
    "SetVariables": {
        "setVariableData": [
            {
                "attributeValue": "1",
                "component": {"name": "AuthCtrlr"},
                "variable": {"name": "LocalPreAuthorize"},
            }
        ]
    },
    "GetBaseReport": {"requestId": 1, "reportBase": "FullInventory"},
    "SetChargingProfile": {"evseId": 0, "chargingProfile": PROFILE_2X},
    "ClearChargingProfile": {"chargingProfileId": 1},
    "GetCompositeSchedule": {"duration": 60, "evseId": 1},
    "GetLog": {"logType": "SecurityLog", "requestId": 1, "log": {"remoteLocation": "ftp://x"}},
    "UpdateFirmware": {
        "requestId": 1,
        "firmware": {
            "location": "https://fw",
            "retrieveDateTime": TS,
            "signingCertificate": "c",
            "signature": "s",
        },
    },
    "CertificateSigned": {"certificateChain": "-----BEGIN CERTIFICATE-----"},
    "DeleteCertificate": {"certificateHashData": HASH},
}
#: ... backend 1.6 (charger 2.x).
BACKEND_16 = {
    "RemoteStartTransaction": {
        "idTag": "APP",
        "chargingProfile": {**PROFILE_16, "chargingProfilePurpose": "TxProfile"},
    },
    "RemoteStopTransaction": {"transactionId": 99},
    "Reset": {"type": "Soft"},
    "ChangeAvailability": {"connectorId": 1, "type": "Inoperative"},
    "UnlockConnector": {"connectorId": 1},
    "TriggerMessage": {"requestedMessage": "StatusNotification", "connectorId": 1},
    "ExtendedTriggerMessage": {"requestedMessage": "LogStatusNotification"},
    "ClearCache": {},
    "DataTransfer": {"vendorId": "acme", "data": "x"},
    "ReserveNow": {"connectorId": 0, "expiryDate": TS, "idTag": "CARD", "reservationId": 2},
    "CancelReservation": {"reservationId": 2},
    "SendLocalList": {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [{"idTag": "CARD"}],
    },
    "GetLocalListVersion": {},
    "GetConfiguration": {"key": ["WebSocketPingInterval"]},
    "ChangeConfiguration": {"key": "LocalAuthorizeOffline", "value": "true"},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": PROFILE_16},
    "ClearChargingProfile": {
        "connectorId": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "stackLevel": 0,
    },
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"},
    "GetDiagnostics": {"location": "ftp://x", "startTime": TS, "stopTime": TS, "retries": 1},
    "UpdateFirmware": {"location": "https://fw", "retrieveDate": TS},
    "GetLog": {"logType": "DiagnosticsLog", "requestId": 3, "log": {"remoteLocation": "ftp://x"}},
    "SignedUpdateFirmware": {
        "requestId": 4,
        "firmware": {
            "location": "https://fw",
            "retrieveDateTime": TS,
            "signingCertificate": "c",
            "signature": "s",
        },
    },
    "CertificateSigned": {"certificateChain": "-----BEGIN CERTIFICATE-----"},
    "DeleteCertificate": {"certificateHashData": HASH},
    "InstallCertificate": {"certificateType": "CentralSystemRootCertificate", "certificate": "c"},
}


def _answer_of(version: OcppVersion, action: str) -> dict[str, Any]:
    """A schema-valid answer of ``version`` to ``action`` (the local CSMS's minimal one)."""
    answer = local_answer(version, action, {}, transaction_id=1)
    assert answer is not None, action
    return answer


def test_every_mapped_action_has_a_sample_here() -> None:
    assert set(CHARGER_16) == set(charger_messages.FROM_16_TO_2X)
    assert set(CHARGER_2X) == set(charger_messages.FROM_2X_TO_16)
    assert set(BACKEND_2X) == set(backend_commands.FROM_2X_TO_16)
    assert set(BACKEND_16) == set(backend_commands.FROM_16_TO_2X)


@pytest.mark.parametrize("other", [V201, V21], ids=["2.0.1", "2.1"])
def test_every_mapped_action_translates_validly_both_ways(other: OcppVersion) -> None:
    """Each request and its answer, in both directions: valid in the receiver's schema."""
    for charger, backend, charger_calls, commands in (
        (V16, other, CHARGER_16, BACKEND_2X),
        (other, V16, {a: (p, None) for a, p in CHARGER_2X.items()}, BACKEND_16),
    ):
        link = Link(charger, backend)
        for action, (payload, tx) in charger_calls.items():
            out = link.up(action, payload, tx)  # validated inside
            if isinstance(out, Forward):
                back = link.answer_up(out, _answer_of(backend, out.action))
                valid(charger, MessageType.CallResult, action, back)
        for action, payload in commands.items():
            out = link.down(action, payload)  # validated inside
            assert not isinstance(out, Refuse), (action, out)
            if isinstance(out, Forward):
                link.answer_down(action, out, _answer_of(charger, out.action))
