"""Frame parsing and the byte-preserving rewrites of unique ids and 1.6 transaction ids."""

from __future__ import annotations

import json

import pytest

from ocpp_proxy.protocol.frames import (
    CALL,
    CALLERROR,
    CALLRESULT,
    FrameError,
    build_call_error,
    parse_frame,
    with_unique_id,
)
from ocpp_proxy.relay.transaction_ids import TransactionIds, rewrite_transaction_id


def test_parse_each_message_type() -> None:
    call = parse_frame('[2,"a","Heartbeat",{}]')
    assert (call.message_type, call.unique_id, call.action, call.payload) == (
        CALL,
        "a",
        "Heartbeat",
        {},
    )
    result = parse_frame('[3, "b", {"status": "Accepted"}]')
    assert (result.message_type, result.payload) == (CALLRESULT, {"status": "Accepted"})
    error = parse_frame('[4,"c","GenericError","boom",{}]')
    assert (error.message_type, error.error) == (CALLERROR, ("GenericError", "boom", {}))
    # Some chargers leave out errorDetails.
    assert parse_frame('[4,"d","GenericError","boom"]').error == ("GenericError", "boom", {})


@pytest.mark.parametrize(
    ("raw", "unique_id", "unknown_type"),
    [
        ('[2,"u1","Heartbeat",{', "u1", False),
        ('[2,"u\\"q","Heartbeat"]', 'u"q', False),
        ("nonsense", None, False),
        ('[8,"u2",{}]', "u2", True),
        ('["2","u3","Heartbeat",{}]', "u3", False),
        ("[]", None, False),
    ],
)
def test_malformed_frames_keep_what_can_be_read(
    raw: str, unique_id: str | None, unknown_type: bool
) -> None:
    with pytest.raises(FrameError) as err:
        parse_frame(raw)
    assert err.value.unique_id == unique_id
    assert err.value.unknown_type is unknown_type


def test_size_limit_counts_utf8_bytes() -> None:
    frame = '[2,"u","DataTransfer",{"vendorId":"' + "é" * 600 + '"}]'
    assert parse_frame(frame, max_bytes=2048).action == "DataTransfer"
    with pytest.raises(FrameError, match="exceeds 1024") as err:
        parse_frame(frame, max_bytes=1024)
    assert err.value.unique_id == "u"


def test_unique_id_rewrite_keeps_every_other_byte() -> None:
    raw = '[ 2 , "backend-7" , "Reset",{"type":"Soft", "x": 1.50}]'
    assert with_unique_id(raw, "proxy-1") == '[ 2 , "proxy-1" , "Reset",{"type":"Soft", "x": 1.50}]'
    assert with_unique_id('[3,"p",{}]', 'we"ird') == '[3,"we\\"ird",{}]'


def test_call_error_description_is_cut_to_the_schema_limit() -> None:
    error = parse_frame(build_call_error("u", "GenericError", "x" * 400))
    assert error.error is not None and len(error.error[1]) == 255


def test_transaction_id_rewrite_touches_only_that_id() -> None:
    raw = '[2,"m","MeterValues",{"connectorId":1,"transactionId": 42,"meterValue":[{"v":42}]}]'
    assert rewrite_transaction_id(raw, 42, 9) == (
        '[2,"m","MeterValues",{"connectorId":1,"transactionId": 9,"meterValue":[{"v":42}]}]'
    )
    assert rewrite_transaction_id(raw, 7, 9) == raw
    nested = '{"csChargingProfiles":{"transactionId":5,"chargingProfileId":5}}'
    assert rewrite_transaction_id(nested, 5, 77) == (
        '{"csChargingProfiles":{"transactionId":77,"chargingProfileId":5}}'
    )


def test_transaction_ids_map_both_ways() -> None:
    ids = TransactionIds()
    ids.add(1000)
    ids.record(1000, "a", 7)
    ids.record(1000, "b", 7)
    assert ids.for_backend(1000, "a") == 7 and ids.for_backend(1000, "c") is None
    assert ids.to_charger("b", 7) == 1000 and ids.to_charger("c", 7) is None
    assert ids.is_known(1000) and not ids.is_known(999)
    restored = TransactionIds()
    restored.load({1000: {"a": 7}, 1001: {}})
    assert restored.to_charger("a", 7) == 1000 and restored.is_known(1001)


@pytest.mark.parametrize(
    "raw",
    [
        '[2,"b","DataTransfer",{"vendorId":"v","data":1032786387340114152892}]',  # past 64 bits
        '[2,"b","DataTransfer",{"vendorId":"v","data":-9223372036854775809}]',
        '[2,"b","DataTransfer",{"vendorId":"v","data":NaN}]',  # not JSON, taken as ever
        '[2,"b","DataTransfer",{"vendorId":"v","data":' + "[" * 600 + "]" * 600 + "}]",
    ],
)
def test_payload_values_are_those_pythons_json_reads(raw: str) -> None:
    frame = parse_frame(raw)
    assert repr(frame.payload) == repr(json.loads(raw)[3])  # the same values, exactly
