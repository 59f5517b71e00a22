from __future__ import annotations

import decimal
import importlib.resources
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from jsonschema import Draft4Validator

from ocpp_proxy.protocol import schemas
from ocpp_proxy.protocol.local_csms import local_answer, refusal
from ocpp_proxy.protocol.versions import OcppVersion

NOW = datetime(2024, 5, 17, 12, 34, 56, 789012, tzinfo=UTC)
NOW_TEXT = "2024-05-17T12:34:56.789Z"


def _library_files(version: OcppVersion) -> list[str]:
    """List the library's schema files directly, independently of the module under test."""
    root = importlib.resources.files(version.facts.schema_package)
    return sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".json"))


def _response_actions(version: OcppVersion) -> list[str]:
    return [
        name.removesuffix("Response.json")
        for name in _library_files(version)
        if name.endswith("Response.json")
    ]


def _validator(version: OcppVersion, action: str) -> Draft4Validator:
    """A validator read straight from the library file, floats as Decimal (as ocpp does)."""
    root = importlib.resources.files(version.facts.schema_package)
    text = root.joinpath(f"{action}Response.json").read_text(encoding="utf-8-sig")
    return Draft4Validator(json.loads(text, parse_float=decimal.Decimal))


def _assert_valid(version: OcppVersion, action: str, payload: dict[str, Any]) -> None:
    # Through JSON and back, as on the wire, so that e.g. a float that should be an int shows.
    wire = json.loads(json.dumps(payload), parse_float=decimal.Decimal)
    errors = [e.message for e in _validator(version, action).iter_errors(wire)]
    assert not errors, (version, action, payload, errors)


ALL_RESPONSES = [
    pytest.param(version, action, id=f"{version.value}-{action}")
    for version in OcppVersion
    for action in _response_actions(version)
]


def test_library_has_the_expected_number_of_response_schemas() -> None:
    counts = {v: len(_response_actions(v)) for v in OcppVersion}
    assert counts == {OcppVersion.V16: 39, OcppVersion.V201: 64, OcppVersion.V21: 90}


@pytest.mark.parametrize(("version", "action"), ALL_RESPONSES)
def test_local_answer_is_schema_valid(version: OcppVersion, action: str) -> None:
    transaction_id = 1 if action == "StartTransaction" else None
    answer = local_answer(version, action, {}, transaction_id=transaction_id, now=NOW)
    assert answer is not None
    _assert_valid(version, action, answer)


@pytest.mark.parametrize(("version", "action"), ALL_RESPONSES)
def test_refusal_is_none_or_schema_valid_rejected(version: OcppVersion, action: str) -> None:
    answer = refusal(version, action)
    schema = schemas.response_schema(version, action)
    assert schema is not None
    status = schema.get("properties", {}).get("status", {})
    if "$ref" in status:
        status = schema["definitions"][status["$ref"].rsplit("/", 1)[1]]
    expect_refusal = "status" in schema.get("required", ()) and "Rejected" in status.get("enum", ())
    if not expect_refusal:
        assert answer is None
        return
    assert answer is not None
    assert answer["status"] == "Rejected"
    _assert_valid(version, action, answer)


# --- schemas module ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(OcppVersion))
def test_actions_match_request_files(version: OcppVersion) -> None:
    names = schemas.actions(version)
    assert "BootNotification" in names
    assert not any(n.endswith(("Response", "Request")) for n in names)
    for name in names:
        assert schemas.request_schema(version, name) is not None, name
    # Every action has a response schema except 2.1's SEND-only NotifyPeriodicEventStream.
    without_response = {n for n in names if schemas.response_schema(version, n) is None}
    expected = {"NotifyPeriodicEventStream"} if version is OcppVersion.V21 else set()
    assert without_response == expected


def test_schema_lookups() -> None:
    v16_boot = schemas.request_schema(OcppVersion.V16, "BootNotification")
    assert v16_boot is not None
    assert "chargePointVendor" in v16_boot["properties"]
    v201_boot = schemas.request_schema(OcppVersion.V201, "BootNotification")
    assert v201_boot is not None
    assert "chargingStation" in v201_boot["properties"]
    assert schemas.request_schema(OcppVersion.V21, "NotifyPeriodicEventStream") is not None
    assert schemas.response_schema(OcppVersion.V16, "Heartbeat") is not None
    # A cached dict is shared: same object on the second call.
    assert schemas.response_schema(OcppVersion.V16, "Heartbeat") is schemas.response_schema(
        OcppVersion.V16, "Heartbeat"
    )


@pytest.mark.parametrize(
    "action",
    [
        "Nope",
        "",
        "BootNotificationResponse",
        "BootNotificationRequest",
        "../v201/schemas/BootNotificationRequest",
        "bootnotification",
    ],
)
@pytest.mark.parametrize("version", list(OcppVersion))
def test_unknown_schema_names(version: OcppVersion, action: str) -> None:
    assert schemas.request_schema(version, action) is None
    assert schemas.response_schema(version, action) is None
    assert local_answer(version, action, {}, transaction_id=1) is None
    assert refusal(version, action) is None


def test_2x_only_actions_are_unknown_in_16() -> None:
    assert schemas.request_schema(OcppVersion.V16, "TransactionEvent") is None
    assert local_answer(OcppVersion.V16, "TransactionEvent", {}) is None
    assert local_answer(OcppVersion.V201, "StartTransaction", {}, transaction_id=1) is None
    assert local_answer(OcppVersion.V201, "AFRRSignal", {}) is None
    assert local_answer(OcppVersion.V21, "AFRRSignal", {}) is not None


# --- semantic overrides ------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(OcppVersion))
def test_boot_notification(version: OcppVersion) -> None:
    answer = local_answer(version, "BootNotification", {}, heartbeat_interval_s=42, now=NOW)
    assert answer == {"status": "Accepted", "interval": 42, "currentTime": NOW_TEXT}
    parsed = datetime.fromisoformat(answer["currentTime"].replace("Z", "+00:00"))
    assert parsed == NOW.replace(microsecond=789000)


def test_boot_default_interval_and_current_time() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    answer = local_answer(OcppVersion.V201, "BootNotification", {})
    assert answer is not None
    assert answer["interval"] == 300
    assert answer["currentTime"].endswith("Z")
    parsed = datetime.fromisoformat(answer["currentTime"].replace("Z", "+00:00"))
    assert before <= parsed <= datetime.now(UTC) + timedelta(seconds=1)


def test_time_is_converted_to_utc_and_naive_is_utc() -> None:
    cest = timezone(timedelta(hours=2))
    local_time = datetime(2024, 5, 17, 14, 34, 56, 789000, tzinfo=cest)
    answer = local_answer(OcppVersion.V16, "Heartbeat", {}, now=local_time)
    assert answer == {"currentTime": NOW_TEXT}
    naive = datetime(2024, 5, 17, 12, 34, 56, 789999)
    assert local_answer(OcppVersion.V21, "Heartbeat", {}, now=naive) == {"currentTime": NOW_TEXT}


def test_answers_are_fresh_copies() -> None:
    first = local_answer(OcppVersion.V16, "StartTransaction", {}, transaction_id=7, now=NOW)
    assert first is not None
    first["idTagInfo"]["status"] = "Blocked"
    second = local_answer(OcppVersion.V16, "StartTransaction", {}, transaction_id=8, now=NOW)
    assert second == {"idTagInfo": {"status": "Accepted"}, "transactionId": 8}


def test_start_transaction_16() -> None:
    request = {"connectorId": 1, "idTag": "ABC", "meterStart": 0, "timestamp": NOW_TEXT}
    answer = local_answer(OcppVersion.V16, "StartTransaction", request, transaction_id=4711)
    assert answer == {"idTagInfo": {"status": "Accepted"}, "transactionId": 4711}
    _assert_valid(OcppVersion.V16, "StartTransaction", answer)


def test_start_transaction_16_needs_transaction_id() -> None:
    with pytest.raises(ValueError, match="transaction_id"):
        local_answer(OcppVersion.V16, "StartTransaction", {"idTag": "ABC"})


def test_authorize() -> None:
    v16 = local_answer(OcppVersion.V16, "Authorize", {"idTag": "ABC"})
    assert v16 == {"idTagInfo": {"status": "Accepted"}}
    for version in (OcppVersion.V201, OcppVersion.V21):
        request = {"idToken": {"idToken": "ABC", "type": "ISO14443"}}
        answer = local_answer(version, "Authorize", request)
        assert answer == {"idTokenInfo": {"status": "Accepted"}}


def test_stop_transaction_16() -> None:
    with_tag = {"idTag": "ABC", "meterStop": 10, "timestamp": NOW_TEXT, "transactionId": 1}
    answer = local_answer(OcppVersion.V16, "StopTransaction", with_tag)
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    _assert_valid(OcppVersion.V16, "StopTransaction", answer)
    without_tag = {"meterStop": 10, "timestamp": NOW_TEXT, "transactionId": 1}
    assert local_answer(OcppVersion.V16, "StopTransaction", without_tag) == {}


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
def test_transaction_event(version: OcppVersion) -> None:
    with_token = {"eventType": "Started", "idToken": {"idToken": "ABC", "type": "ISO14443"}}
    answer = local_answer(version, "TransactionEvent", with_token)
    assert answer == {"idTokenInfo": {"status": "Accepted"}}
    _assert_valid(version, "TransactionEvent", answer)
    assert local_answer(version, "TransactionEvent", {"eventType": "Updated"}) == {}


@pytest.mark.parametrize("version", list(OcppVersion))
def test_data_transfer_unknown_vendor(version: OcppVersion) -> None:
    answer = local_answer(version, "DataTransfer", {"vendorId": "acme"})
    assert answer == {"status": "UnknownVendorId"}


def test_plain_acknowledgements() -> None:
    assert local_answer(OcppVersion.V16, "MeterValues", {}) == {}
    assert local_answer(OcppVersion.V16, "StatusNotification", {}) == {}
    assert local_answer(OcppVersion.V201, "StatusNotification", {}) == {}
    assert local_answer(OcppVersion.V21, "NotifyEvent", {}) == {}


def test_certificate_requests_are_not_accepted() -> None:
    assert local_answer(OcppVersion.V16, "SignCertificate", {}) == {"status": "Rejected"}
    answer = local_answer(OcppVersion.V201, "Get15118EVCertificate", {})
    assert answer == {"status": "Failed", "exiResponse": ""}
    assert local_answer(OcppVersion.V21, "GetCertificateStatus", {}) == {"status": "Failed"}


def test_certificate_chain_status_is_not_good() -> None:
    answer = local_answer(OcppVersion.V21, "GetCertificateChainStatus", {}, now=NOW)
    assert answer is not None
    assert [item["status"] for item in answer["certificateStatus"]] == ["Failed"]
    assert answer["certificateStatus"][0]["nextUpdate"] == NOW_TEXT
    _assert_valid(OcppVersion.V21, "GetCertificateChainStatus", answer)


def test_vat_number_validation_echoes_number() -> None:
    answer = local_answer(OcppVersion.V21, "VatNumberValidation", {"vatNumber": "DE123"})
    assert answer == {"status": "Rejected", "vatNumber": "DE123"}
    odd = local_answer(OcppVersion.V21, "VatNumberValidation", {"vatNumber": 5})
    assert odd == {"status": "Rejected", "vatNumber": ""}


def test_minimal_arrays_have_min_items() -> None:
    answer = local_answer(OcppVersion.V201, "GetVariables", {})
    assert answer is not None
    assert len(answer["getVariableResult"]) == 1
    result = answer["getVariableResult"][0]
    assert result["attributeStatus"] == "Accepted"
    assert set(result) == {"attributeStatus", "component", "variable"}


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "action", "expected"),
    [
        (OcppVersion.V16, "RemoteStartTransaction", {"status": "Rejected"}),
        (OcppVersion.V16, "RemoteStopTransaction", {"status": "Rejected"}),
        (OcppVersion.V16, "ChangeConfiguration", {"status": "Rejected"}),
        (OcppVersion.V16, "GetConfiguration", None),
        (OcppVersion.V16, "UnlockConnector", None),
        (OcppVersion.V16, "ClearChargingProfile", None),
        (OcppVersion.V201, "RequestStartTransaction", {"status": "Rejected"}),
        (OcppVersion.V201, "RequestStopTransaction", {"status": "Rejected"}),
        (OcppVersion.V201, "SetVariables", None),
        (OcppVersion.V21, "RequestStartTransaction", {"status": "Rejected"}),
        (OcppVersion.V21, "ClearDisplayMessage", {"status": "Rejected"}),
        (OcppVersion.V201, "ClearDisplayMessage", None),
    ],
)
def test_refusal_examples(
    version: OcppVersion, action: str, expected: dict[str, Any] | None
) -> None:
    assert refusal(version, action) == expected


def test_refusal_with_other_required_fields() -> None:
    # 2.1 VatNumberValidation requires vatNumber next to status.
    assert refusal(OcppVersion.V21, "VatNumberValidation") == {
        "status": "Rejected",
        "vatNumber": "",
    }
