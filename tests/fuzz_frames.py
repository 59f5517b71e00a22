"""Fuzz frames for the proxy: arbitrary text and near-valid OCPP-J 1.6 frames.

Shared by ``tests/test_fuzz.py`` (driven by hypothesis through ``st.randoms()``, so that a
failure is reproducible and shrinks) and ``benchmarks/fuzz.py`` (driven by a seeded
``random.Random`` for many cases). Each generator takes a ``random.Random`` and returns the
text of one WebSocket message; it never contains a lone surrogate (a text frame must be valid
UTF-8), though it may contain JSON escapes of one (``\\ud800``).

Also: :func:`well_formed`, the check that a frame the proxy sends is a proper OCPP-J frame.
"""

from __future__ import annotations

import json
import random
from typing import Any

#: Unique ids of the fuzz frames start with this; the probes that follow them never do.
FUZZ_ID_PREFIX = "f"
SENTINEL_PREFIX = "sentinel-"

# Realistic frames a 1.6 charger sends (CALLs, and answers to commands).
CHARGER_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("Heartbeat", {}),
    ("BootNotification", {"chargePointVendor": "Fuzz", "chargePointModel": "F1"}),
    (
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    ),
    ("Authorize", {"idTag": "TAG1"}),
    (
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2025-01-01T00:00:00Z"},
    ),
    (
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 1,
            "meterValue": [
                {
                    "timestamp": "2025-01-01T00:00:00Z",
                    "sampledValue": [
                        {"value": "10", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                    ],
                }
            ],
        },
    ),
    (
        "StopTransaction",
        {"transactionId": 1, "meterStop": 10, "timestamp": "2025-01-01T01:00:00Z"},
    ),
    ("DataTransfer", {"vendorId": "fuzz", "messageId": "m", "data": "d"}),
    ("FirmwareStatusNotification", {"status": "Idle"}),
    ("DiagnosticsStatusNotification", {"status": "Idle"}),
]

_METER_VALUE_201 = [
    {
        "timestamp": "2025-01-01T00:00:00Z",
        "sampledValue": [
            {
                "value": 10.5,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "kWh", "multiplier": 3},
            }
        ],
    }
]

# Realistic frames a 2.0.1 charger sends.
CHARGER_CALLS_201: list[tuple[str, dict[str, Any]]] = [
    ("Heartbeat", {}),
    (
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "F1", "vendorName": "Fuzz"}},
    ),
    (
        "StatusNotification",
        {
            "timestamp": "2025-01-01T00:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
    ),
    ("Authorize", {"idToken": {"idToken": "TAG1", "type": "ISO14443"}}),
    (
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": "2025-01-01T00:00:00Z",
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-1", "remoteStartId": 7},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": "TAG1", "type": "ISO14443"},
            "meterValue": _METER_VALUE_201,
        },
    ),
    (
        "TransactionEvent",
        {
            "eventType": "Updated",
            "timestamp": "2025-01-01T00:10:00Z",
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 1,
            "transactionInfo": {"transactionId": "tx-1"},
            "meterValue": _METER_VALUE_201,
        },
    ),
    (
        "TransactionEvent",
        {
            "eventType": "Ended",
            "timestamp": "2025-01-01T01:00:00Z",
            "triggerReason": "StopAuthorized",
            "seqNo": 2,
            "transactionInfo": {"transactionId": "tx-1", "stoppedReason": "Local"},
        },
    ),
    ("MeterValues", {"evseId": 1, "meterValue": _METER_VALUE_201}),
    ("DataTransfer", {"vendorId": "fuzz", "messageId": "m", "data": {"a": 1}}),
    ("NotifyEvent", {"generatedAt": "2025-01-01T00:00:00Z", "seqNo": 0, "eventData": []}),
]

# Commands a 1.6 backend sends.
BACKEND_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("GetConfiguration", {}),
    ("GetConfiguration", {"key": ["HeartbeatInterval"]}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
    ("DataTransfer", {"vendorId": "fuzz"}),
    ("UnlockConnector", {"connectorId": 1}),
    ("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1}),
    ("RemoteStopTransaction", {"transactionId": 1}),
    ("Reset", {"type": "Soft"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Operative"}),
    ("ClearCache", {}),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": "2025-01-01T00:00:00Z", "idTag": "T", "reservationId": 1},
    ),
    (
        "SetChargingProfile",
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
                },
            },
        },
    ),
]

_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    2**31,
    2**63,
    2**64 + 1,
    10**30,
    1e308,
    -1e308,
    "",
    "x" * 300,
    "é✓😀\u0000\u200b",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": None}},
]

_RAW_NUMBERS = [
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" * 400,
    "0.0000001e-400",
    "9" * 5000,
    "-0",
    "1E+2",
    "00",
    "0x10",
]


def _char(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.5:
        return chr(rng.randint(0x20, 0x7E))
    if pick < 0.6:
        return rng.choice('[]{}",:\\ \t\n0123456789')
    if pick < 0.7:
        return chr(rng.randint(0, 0x1F))
    code = rng.randint(0x80, 0x10FFFF)
    if 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    return chr(code)


def random_text(rng: random.Random, max_len: int = 64) -> str:
    """Arbitrary text (no lone surrogates)."""
    return "".join(_char(rng) for _ in range(rng.randint(0, max_len)))


def _odd_string(rng: random.Random) -> str:
    choice = rng.randrange(8)
    if choice == 0:
        return ""
    if choice == 1:
        return "u" * rng.choice([36, 37, 100, 1000])
    if choice == 2:
        return random_text(rng, 40)
    if choice == 3:
        return "\\ud800"  # as JSON text: the escape of a lone surrogate
    if choice == 4:
        return "é✓😀"
    if choice == 5:
        return "\u0000"
    if choice == 6:
        return rng.choice(["__proto__", "constructor", "Heartbeat ", "heartbeat", "Heart\nbeat"])
    return "".join(rng.choice("abcXYZ_") for _ in range(rng.randint(1, 12)))


def _json_string(value: str) -> str:
    # Keep an intended "\\ud800" escape as the six characters of a JSON escape.
    if value == "\\ud800":
        return '"\\ud800"'
    return json.dumps(value, ensure_ascii=False)


def _odd_json(rng: random.Random) -> str:
    """The text of an odd JSON value (or of a not quite JSON one)."""
    choice = rng.randrange(5)
    if choice == 0:
        return json.dumps(rng.choice(_ODD_VALUES), ensure_ascii=False)
    if choice == 1:
        return rng.choice(_RAW_NUMBERS)
    if choice == 2:
        return _json_string(_odd_string(rng))
    if choice == 3:
        return _nested(rng)
    return str(rng.randint(-(2**70), 2**70))


def _nested(rng: random.Random) -> str:
    depth = rng.choice([2, 10, 100, 500, 900, 990, 1000, 1100, 3000, 20000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return opener * depth + "1" + closer * depth


def _mutate_payload(rng: random.Random, payload: dict[str, Any]) -> str:
    """The text of ``payload`` with one or more values replaced, removed, or added."""
    items = [
        (json.dumps(k, ensure_ascii=False), json.dumps(v, ensure_ascii=False))
        for k, v in payload.items()
    ]
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        if op == 0 and items:  # a value of the wrong type
            index = rng.randrange(len(items))
            items[index] = (items[index][0], _odd_json(rng))
        elif op == 1 and items:  # a field missing
            del items[rng.randrange(len(items))]
        elif op == 2:  # an unknown field
            items.append((_json_string(_odd_string(rng)), _odd_json(rng)))
        elif items:  # a duplicate key
            items.append((items[0][0], _odd_json(rng)))
    if rng.random() < 0.3:  # a value of the wrong type deeper down
        items = [(k, _mutate_deep(rng, v)) for k, v in items]
    return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"


def _mutate_deep(rng: random.Random, text: str) -> str:
    """``text`` (JSON) with a nested object's values swapped for odd ones, if it has one."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[" + _mutate_payload(rng, value[0]) + "]"
    if isinstance(value, dict) and value:
        return _mutate_payload(rng, value)
    return text


def _unique_id(rng: random.Random, serial: int) -> str:
    """The JSON text of a unique id: mostly a fresh string, sometimes something odd."""
    if rng.random() < 0.75:
        return json.dumps(f"{FUZZ_ID_PREFIX}{serial}")
    choice = rng.randrange(7)
    if choice == 0:
        return str(rng.choice([0, 7, -1, 2**64]))
    if choice == 1:
        return rng.choice(["null", "true", "[]", "{}", "1.5"])
    if choice == 2:
        return json.dumps(FUZZ_ID_PREFIX + "u" * rng.choice([35, 36, 37, 200, 5000]))
    if choice == 3:
        return json.dumps(FUZZ_ID_PREFIX + "é✓😀" + str(serial), ensure_ascii=rng.random() < 0.5)
    if choice == 4:
        return f'"{FUZZ_ID_PREFIX}\\ud800{serial}"'
    if choice == 5:
        return json.dumps(FUZZ_ID_PREFIX + '"\\\n' + str(serial))
    return '""'


def _type_id(rng: random.Random) -> str:
    return rng.choice(
        [
            "0",
            "1",
            "5",
            "6",
            "7",
            "-1",
            "2.0",
            '"2"',
            "null",
            "true",
            "[2]",
            "18446744073709551617",
            "9" * 5000,
            "02",
            "1e1",
        ]
    )


def near_valid(rng: random.Random, calls: list[tuple[str, dict[str, Any]]], serial: int) -> str:
    """A valid OCPP-J frame from ``calls`` (or an answer), with zero or more mutations."""
    kind = rng.random()
    uid = _unique_id(rng, serial)
    if kind < 0.7:
        action, payload = rng.choice(calls)
        type_id = "2"
        action_text = json.dumps(action)
        if rng.random() < 0.15:
            action_text = _json_string(_odd_string(rng)) if rng.random() < 0.8 else _odd_json(rng)
        payload_text = json.dumps(payload)
        if rng.random() < 0.6:
            payload_text = _mutate_payload(rng, payload)
        elif rng.random() < 0.2:
            payload_text = _odd_json(rng)
        if rng.random() < 0.1:
            type_id = _type_id(rng)
        elements = [type_id, uid, action_text, payload_text]
    elif kind < 0.85:  # a CALLRESULT
        elements = ["3", uid, json.dumps({}) if rng.random() < 0.5 else _odd_json(rng)]
    else:  # a CALLERROR
        elements = [
            "4",
            uid,
            json.dumps(rng.choice(["GenericError", "NotImplemented", ""])),
            _json_string(_odd_string(rng)),
            json.dumps({}),
        ]
    shape = rng.random()
    if shape < 0.08 and elements:
        del elements[rng.randrange(len(elements))]
    elif shape < 0.16:
        elements.insert(rng.randrange(len(elements) + 1), _odd_json(rng))
    separator = rng.choice([",", ",", ",", " , ", ",\n"])
    text = "[" + separator.join(elements) + "]"
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text) + 1)]  # truncated
    elif rng.random() < 0.05:
        text = " \t\n" + text + " \n"
    return text


def repeated_key(rng: random.Random, calls: list[tuple[str, dict[str, Any]]], serial: int) -> str:
    """A valid CALL whose JSON repeats a key, at the top of its payload or deeper.

    A backend's must get a CALLERROR (issue 16: a charger's parser may keep the first value,
    the proxy's rules read the last); a charger's is forwarded unless strict mode is on.
    """
    action, payload = rng.choice(calls)
    body = json.dumps(payload)
    if payload and rng.random() < 0.5:
        key = rng.choice(list(payload))
        value = json.dumps(rng.choice([payload[key], 0, "x", None, {"a": 1}]))
        body = "{" + json.dumps(key) + ":" + value + ("," if len(body) > 2 else "") + body[1:]
    else:
        nested = '{"a":{"b":1,"b":2}}' if rng.random() < 0.5 else '[{"c":[],"c":{}}]'
        body = '{"x":' + nested + ("," if len(body) > 2 else "") + body[1:]
    return f"[2,{json.dumps(FUZZ_ID_PREFIX + str(serial))},{json.dumps(action)},{body}]"


def large_frame(rng: random.Random, serial: int) -> str:
    """A DataTransfer of 5-60 kB: under the benchmark's frame limit, over the log's cut."""
    data = "".join(rng.choice("abcdef0123456789") for _ in range(64)) * rng.randrange(80, 950)
    payload = {"vendorId": "fuzz", "data": data}
    return json.dumps([2, f"{FUZZ_ID_PREFIX}{serial}", "DataTransfer", payload])


def fuzz_frame(rng: random.Random, serial: int, direction: str = "charger") -> str:
    """One fuzz case: ``direction`` "charger", "charger201" or "backend" picks the frames."""
    calls = {"charger": CHARGER_CALLS, "charger201": CHARGER_CALLS_201}.get(
        direction, BACKEND_CALLS
    )
    pick = rng.random()
    if pick < 0.1:
        return random_text(rng)
    if pick < 0.15:
        return _odd_json(rng)
    if pick < 0.2:
        return repeated_key(rng, calls, serial)
    if pick < 0.22:
        return large_frame(rng, serial)
    return near_valid(rng, calls, serial)


# -- checking what the proxy sends ------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


_STRICT = json.JSONDecoder(parse_constant=_no_constants)


def well_formed(text: str) -> list[Any]:
    """Parse a frame the proxy sent; raise AssertionError unless it is a proper OCPP-J frame.

    Strict JSON (no NaN or Infinity), an array of the shape of its message type (OCPP-J 1.6
    §4.1), with a string unique id (an answer carries the asker's id, whatever its length).
    """
    assert isinstance(text, str), f"not a text frame: {text!r:.200}"
    try:
        frame = _STRICT.decode(text)
    except ValueError as err:
        raise AssertionError(f"not strict JSON ({err}): {text!r:.300}") from None
    assert isinstance(frame, list) and frame, f"not an array: {text!r:.300}"
    kind = frame[0]
    assert kind in (2, 3, 4), f"message type {kind!r}: {text!r:.300}"
    assert isinstance(frame[1], str), f"unique id not a string: {text!r:.300}"
    if kind == 2:
        assert len(frame) == 4 and isinstance(frame[2], str) and isinstance(frame[3], dict), text
    elif kind == 3:
        assert len(frame) == 3 and isinstance(frame[2], dict), text[:300]
    else:
        assert len(frame) == 5, text[:300]
        assert isinstance(frame[2], str) and isinstance(frame[3], str), text[:300]
        assert isinstance(frame[4], dict), text[:300]
    return frame


def _pairs_unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise KeyError("repeated")
    return dict(pairs)


def repeats_a_key(text: str) -> bool:
    """Whether ``text`` is a CALL (JSON) in which some object repeats a key."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == 2):
        return False
    try:
        json.loads(text, object_pairs_hook=_pairs_unique)
    except KeyError:
        return True
    return False


def is_call(text: str, max_bytes: int) -> bool:
    """Whether ``text`` is a well-formed CALL of at most ``max_bytes``: it must get one answer."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not (
        isinstance(frame, list)
        and len(frame) == 4
        and type(frame[0]) is int
        and frame[0] == 2
        and isinstance(frame[1], str)
        and isinstance(frame[2], str)
        and frame[2]
        and isinstance(frame[3], dict)
    ):
        return False
    try:
        return len(text.encode("utf-8")) <= max_bytes and "\\ud" not in text.lower()
    except UnicodeEncodeError:
        return False
