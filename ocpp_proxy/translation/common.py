"""The pieces every translation shares: outcomes, enum tables, and the data types of both versions.

Everything here is a pure function of its arguments. Types are converted field by field as
docs/translation.md describes: meter values (OCPP 1.6 §7.31 SampledValue against 2.0.1
SampledValueType), id tags against id tokens (1.6 §7.28 IdToken against 2.0.1 IdTokenType),
authorization info (1.6 §7.29 IdTagInfo against 2.0.1 IdTokenInfoType) and charging profiles
(1.6 §7.8 ChargingProfile against 2.0.1 ChargingProfileType).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Payload = dict[str, Any]

#: The error code a translation refusal carries (OCPP-J 1.6 §4.2.3 / 2.0.1 part 4 §4.2.3).
NOT_SUPPORTED = "NotSupported"
NOT_IMPLEMENTED = "NotImplemented"


@dataclass(frozen=True, slots=True)
class Forward:
    """Send this CALL to the other side instead (its action and payload in the other version)."""

    action: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class Reply:
    """Do not send anything on: this is the answer, in the version of whoever sent the CALL."""

    payload: Payload


@dataclass(frozen=True, slots=True)
class Refuse:
    """No faithful translation: answer the sender with a CALLERROR ``code`` and ``description``."""

    code: str
    description: str


Outcome = Forward | Reply | Refuse


class Untranslatable(Exception):
    """A message, or a field of one, has no faithful counterpart in the other version."""


def refuse(action: str, why: str, code: str = NOT_SUPPORTED) -> Refuse:
    """A refusal that names the action and the reason (OCPP-J 1.6 §4.2.3 CALLERROR)."""
    return Refuse(code, f"{action} cannot be translated: {why}"[:255])


def pick(source: Payload, *names: str) -> Payload:
    """The fields ``names`` of ``source`` that are present (not None)."""
    return {name: source[name] for name in names if source.get(name) is not None}


def empty_answer(_payload: Payload, _memo: dict) -> Payload:
    """An answer translated to ``{}`` (the target version's answer has no fields)."""
    return {}


def status_only(payload: Payload, _memo: dict) -> Payload:
    """An answer whose ``status`` means the same in both versions, and nothing else kept."""
    return pick(payload, "status")


# -- CALLERROR codes (OCPP-J 1.6 §4.2.3 against 2.0.1 part 4 §4.2.3) -----------------------

_ERRORS_TO_2X = {
    "FormationViolation": "FormatViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
}
_ERRORS_TO_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "MessageTypeNotSupported": "NotSupported",
    "RpcFrameworkError": "ProtocolError",
}
_ERRORS_16 = frozenset(
    {
        "NotImplemented",
        "NotSupported",
        "InternalError",
        "ProtocolError",
        "SecurityError",
        "FormationViolation",
        "PropertyConstraintViolation",
        "OccurenceConstraintViolation",
        "TypeConstraintViolation",
        "GenericError",
    }
)
_ERRORS_2X = frozenset(
    {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)


def error_code_to_2x(code: str) -> str:
    """A 1.6 CALLERROR code as 2.x names it (an unknown code becomes GenericError)."""
    code = _ERRORS_TO_2X.get(code, code)
    return code if code in _ERRORS_2X else "GenericError"


def error_code_to_16(code: str) -> str:
    """A 2.x CALLERROR code as 1.6 names it (an unknown code becomes GenericError)."""
    code = _ERRORS_TO_16.get(code, code)
    return code if code in _ERRORS_16 else "GenericError"


# -- authorization (1.6 §7.28-7.29; 2.0.1 IdTokenType, IdTokenInfoType) ---------------------

#: What a 1.6 id tag is taken to be when it becomes a 2.x id token: the card of an RFID reader
#: (the usual case); a 1.6 remote start's tag is a token the CSMS chose (``Central``).
CARD = "ISO14443"
CENTRAL = "Central"
#: The longest 1.6 id tag (1.6 §7.28 IdToken: CiString20Type).
ID_TAG_MAX = 20

_AUTH_STATUS_TO_16 = {
    "Accepted": "Accepted",
    "Blocked": "Blocked",
    "ConcurrentTx": "ConcurrentTx",
    "Expired": "Expired",
    "Invalid": "Invalid",
    # 2.x-only reasons for a refusal: 1.6 has only Invalid for "not allowed".
    "NoCredit": "Invalid",
    "NotAllowedTypeEVSE": "Invalid",
    "NotAtThisLocation": "Invalid",
    "NotAtThisTime": "Invalid",
    "Unknown": "Invalid",
}


def id_token(tag: str, kind: str = CARD) -> Payload:
    """A 1.6 id tag as a 2.x id token of type ``kind``."""
    return {"idToken": tag, "type": kind}


def id_tag(token: Any, action: str) -> str:
    """A 2.x id token as a 1.6 id tag.

    Raises:
        Untranslatable: the token is longer than the 20 characters a 1.6 id tag holds.
    """
    if not isinstance(token, dict):
        raise Untranslatable(f"{action} has no idToken")
    value = str(token.get("idToken", ""))
    if not value and token.get("type") == "NoAuthorization":
        value = "NoAuthorization"
    if len(value) > ID_TAG_MAX:
        raise Untranslatable(f"the idToken of {action} is longer than a 1.6 idTag (20)")
    return value


def id_token_info(tag_info: Any) -> Payload:
    """A 1.6 ``idTagInfo`` as a 2.x ``idTokenInfo``."""
    info = tag_info if isinstance(tag_info, dict) else {}
    result: Payload = {"status": info.get("status", "Invalid")}
    if info.get("expiryDate"):
        result["cacheExpiryDateTime"] = info["expiryDate"]
    if info.get("parentIdTag"):
        result["groupIdToken"] = id_token(info["parentIdTag"], CENTRAL)
    return result


def id_tag_info(token_info: Any) -> Payload:
    """A 2.x ``idTokenInfo`` as a 1.6 ``idTagInfo`` (2.x-only statuses become Invalid)."""
    info = token_info if isinstance(token_info, dict) else {}
    result: Payload = {"status": _AUTH_STATUS_TO_16.get(info.get("status", ""), "Invalid")}
    if info.get("cacheExpiryDateTime"):
        result["expiryDate"] = info["cacheExpiryDateTime"]
    group = info.get("groupIdToken")
    if isinstance(group, dict) and 0 < len(str(group.get("idToken", ""))) <= ID_TAG_MAX:
        result["parentIdTag"] = str(group["idToken"])
    return result


# -- meter values (1.6 §7.31 SampledValue; 2.0.1 SampledValueType) -------------------------

_UNITS_16 = frozenset(
    {
        "Wh",
        "kWh",
        "varh",
        "kvarh",
        "W",
        "kW",
        "VA",
        "kVA",
        "var",
        "kvar",
        "A",
        "V",
        "K",
        "Celsius",
        "Fahrenheit",
        "Percent",
    }
)
# 1.6 has Temperature and RPM, which 2.x measures with other components (not sampled values).
_MEASURANDS_16_ONLY = frozenset({"Temperature", "RPM"})
_MEASURANDS_16 = frozenset(
    {
        "Energy.Active.Export.Register",
        "Energy.Active.Import.Register",
        "Energy.Reactive.Export.Register",
        "Energy.Reactive.Import.Register",
        "Energy.Active.Export.Interval",
        "Energy.Active.Import.Interval",
        "Energy.Reactive.Export.Interval",
        "Energy.Reactive.Import.Interval",
        "Power.Active.Export",
        "Power.Active.Import",
        "Power.Offered",
        "Power.Reactive.Export",
        "Power.Reactive.Import",
        "Power.Factor",
        "Current.Import",
        "Current.Export",
        "Current.Offered",
        "Voltage",
        "Frequency",
        "SoC",
    }
)
_LOCATIONS_16 = frozenset({"Cable", "EV", "Inlet", "Outlet", "Body"})
#: The 2.x unit name of a 1.6 unit where they differ (2.0.1 part 2 appendix 2 units).
_UNIT_TO_2X = {"Celcius": "Celsius", "Percent": "Percent"}
ENERGY_REGISTER = "Energy.Active.Import.Register"


def _number(text: Any) -> float | int | None:
    """The number a 1.6 sampled value's string holds, or None if it holds none."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return text
    try:
        value = float(str(text))
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _text(value: Any) -> str:
    """A 2.x sampled value's number as a 1.6 string (no ``.0`` on whole numbers)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def sampled_value_to_2x(sample: Any) -> Payload | None:
    """One 1.6 sampled value as a 2.x one, or None when 2.x cannot carry it.

    Dropped: signed data (``format: SignedData``: 2.x needs the signing method and public key
    in ``signedMeterValue``, which 1.6 does not give) and the Temperature and RPM measurands.
    """
    if not isinstance(sample, dict) or sample.get("format") == "SignedData":
        return None
    if sample.get("measurand") in _MEASURANDS_16_ONLY:
        return None
    value = _number(sample.get("value"))
    if value is None:
        return None
    result: Payload = {"value": value}
    result.update(pick(sample, "context", "measurand", "phase", "location"))
    unit = sample.get("unit")
    if unit:
        result["unitOfMeasure"] = {"unit": _UNIT_TO_2X.get(unit, unit)}
    return result


def sampled_value_to_16(sample: Any) -> Payload | None:
    """One 2.x sampled value as a 1.6 one, or None when 1.6 cannot carry it.

    A unit multiplier is applied to the value (1.6 has none); a unit or measurand or location
    that 1.6 does not list drops the sample; signed meter data is dropped.
    """
    if not isinstance(sample, dict):
        return None
    value = _number(sample.get("value"))
    if value is None:
        return None
    measurand = sample.get("measurand")
    if measurand is not None and measurand not in _MEASURANDS_16:
        return None
    if sample.get("location") is not None and sample["location"] not in _LOCATIONS_16:
        return None
    unit_of_measure = (
        sample.get("unitOfMeasure") if isinstance(sample.get("unitOfMeasure"), dict) else {}
    )
    multiplier = unit_of_measure.get("multiplier", 0)
    if type(multiplier) is int and multiplier:
        value = value * 10**multiplier
    result: Payload = {"value": _text(value)}
    result.update(pick(sample, "context", "measurand", "phase", "location"))
    unit = unit_of_measure.get("unit")
    if unit is not None:
        if unit not in _UNITS_16:
            return None
        result["unit"] = unit
    return result


def meter_values_to_2x(meter_values: Any) -> list[Payload]:
    """1.6 ``meterValue`` items as 2.x ones; items left with no sample are dropped."""
    result = []
    for item in meter_values if isinstance(meter_values, list) else []:
        if not isinstance(item, dict):
            continue
        samples = [s for s in map(sampled_value_to_2x, item.get("sampledValue") or []) if s]
        if samples and item.get("timestamp"):
            result.append({"timestamp": item["timestamp"], "sampledValue": samples})
    return result


def meter_values_to_16(meter_values: Any) -> list[Payload]:
    """2.x ``meterValue`` items as 1.6 ones; items left with no sample are dropped."""
    result = []
    for item in meter_values if isinstance(meter_values, list) else []:
        if not isinstance(item, dict):
            continue
        samples = [s for s in map(sampled_value_to_16, item.get("sampledValue") or []) if s]
        if samples and item.get("timestamp"):
            result.append({"timestamp": item["timestamp"], "sampledValue": samples})
    return result


def energy_register_wh(meter_values: Any, context: str | None = None) -> int | None:
    """The last Energy.Active.Import.Register reading of 2.x ``meterValue`` items, in Wh.

    With ``context`` given, only samples of that reading context count. A sample without a
    measurand is an energy register reading (2.0.1 SampledValueType: the default measurand).
    """
    found: int | None = None
    for item in meter_values if isinstance(meter_values, list) else []:
        for sample in (item.get("sampledValue") or []) if isinstance(item, dict) else []:
            if not isinstance(sample, dict):
                continue
            if sample.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
                continue
            if context is not None and sample.get("context", "Sample.Periodic") != context:
                continue
            if sample.get("phase") is not None:
                continue
            value = _number(sample.get("value"))
            if value is None:
                continue
            unit = (
                sample.get("unitOfMeasure") if isinstance(sample.get("unitOfMeasure"), dict) else {}
            )
            scale = 10 ** unit.get("multiplier", 0) if type(unit.get("multiplier", 0)) is int else 1
            if unit.get("unit", "Wh") == "kWh":
                scale *= 1000
            elif unit.get("unit", "Wh") != "Wh":
                continue
            found = round(value * scale)
    return found


def energy_sample(wh: int, context: str, timestamp: str) -> Payload:
    """A 2.x ``meterValue`` item of one Energy.Active.Import.Register reading in Wh."""
    return {
        "timestamp": timestamp,
        "sampledValue": [
            {
                "value": wh,
                "context": context,
                "measurand": ENERGY_REGISTER,
                "unitOfMeasure": {"unit": "Wh"},
            }
        ],
    }


def data_to_16(data: Any) -> str | None:
    """A 2.x DataTransfer ``data`` (any JSON) as the string 1.6 carries (JSON if not a string)."""
    if data is None:
        return None
    return data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))


# -- charging profiles (1.6 §7.8 ChargingProfile; 2.0.1 ChargingProfileType) --------------

_PURPOSE_TO_2X = {
    "ChargePointMaxProfile": "ChargingStationMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}
_PURPOSE_TO_16 = {two: one for one, two in _PURPOSE_TO_2X.items()}


def purpose_to_2x(purpose: Any) -> str | None:
    """A 1.6 charging profile purpose as 2.x names it, or None if unknown."""
    return _PURPOSE_TO_2X.get(purpose)


def purpose_to_16(purpose: Any) -> str | None:
    """A 2.x charging profile purpose as 1.6 names it (None: ChargingStationExternalConstraints)."""
    return _PURPOSE_TO_16.get(purpose)


def _tenth(value: Any) -> float | int:
    """A limit as 1.6 writes it: a multiple of 0.1 (1.6 schema ``multipleOf: 0.1``)."""
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded


def schedule_periods_to_16(periods: Any, action: str) -> list[Payload]:
    """2.x charging schedule periods as 1.6 ones (limits to 0.1 A or W).

    Raises:
        Untranslatable: a period names ``phaseToUse`` (1.6 cannot choose the phase).
    """
    result = []
    for period in periods if isinstance(periods, list) else []:
        if period.get("phaseToUse") is not None:
            raise Untranslatable(f"{action} names phaseToUse, which 1.6 cannot express")
        item: Payload = {"startPeriod": period.get("startPeriod", 0)}
        item["limit"] = _tenth(period.get("limit", 0))
        if period.get("numberPhases") is not None:
            item["numberPhases"] = period["numberPhases"]
        result.append(item)
    return result


def schedule_periods_to_2x(periods: Any) -> list[Payload]:
    """1.6 charging schedule periods as 2.x ones (the same fields)."""
    return [
        pick(period, "startPeriod", "limit", "numberPhases")
        for period in (periods if isinstance(periods, list) else [])
        if isinstance(period, dict)
    ]


def schedule_to_16(schedule: Payload, action: str) -> Payload:
    """One 2.x charging schedule as a 1.6 one (its ``id`` and sales tariff are dropped)."""
    result = pick(schedule, "duration", "startSchedule", "chargingRateUnit")
    result["chargingSchedulePeriod"] = schedule_periods_to_16(
        schedule.get("chargingSchedulePeriod"), action
    )
    if schedule.get("minChargingRate") is not None:
        result["minChargingRate"] = _tenth(schedule["minChargingRate"])
    return result


def schedule_to_2x(schedule: Payload, schedule_id: int) -> Payload:
    """One 1.6 charging schedule as a 2.x one with id ``schedule_id``."""
    result: Payload = {"id": schedule_id}
    result.update(pick(schedule, "startSchedule", "duration", "chargingRateUnit"))
    result["chargingSchedulePeriod"] = schedule_periods_to_2x(
        schedule.get("chargingSchedulePeriod")
    )
    if schedule.get("minChargingRate") is not None:
        result["minChargingRate"] = schedule["minChargingRate"]
    return result


def profile_to_16(profile: Any, action: str, transaction_id: int | None) -> Payload:
    """A 2.x charging profile as a 1.6 ``csChargingProfiles``.

    Raises:
        Untranslatable: a purpose 1.6 lacks (ChargingStationExternalConstraints), more than one
            schedule, a 2.1-only field that changes the limit, or ``phaseToUse``.
    """
    if not isinstance(profile, dict):
        raise Untranslatable(f"{action} has no chargingProfile")
    purpose = purpose_to_16(profile.get("chargingProfilePurpose"))
    if purpose is None:
        raise Untranslatable(
            f"charging profile purpose {profile.get('chargingProfilePurpose')} has no 1.6 purpose"
        )
    schedules = profile.get("chargingSchedule") or []
    if not isinstance(schedules, list) or len(schedules) != 1:
        raise Untranslatable("a 1.6 charging profile holds exactly one charging schedule")
    for only_21 in (
        "dynUpdateInterval",
        "dynUpdateTime",
        "priceScheduleSignature",
        "maxOfflineDuration",
    ):
        if profile.get(only_21) is not None:
            raise Untranslatable(f"charging profile field {only_21} has no 1.6 counterpart")
    result: Payload = {
        "chargingProfileId": profile.get("id", 0),
        "stackLevel": profile.get("stackLevel", 0),
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": profile.get("chargingProfileKind", "Absolute"),
        "chargingSchedule": schedule_to_16(schedules[0], action),
    }
    if profile.get("chargingProfileKind") not in ("Absolute", "Recurring", "Relative"):
        raise Untranslatable(
            f"charging profile kind {profile.get('chargingProfileKind')} is not 1.6's"
        )
    result.update(pick(profile, "recurrencyKind", "validFrom", "validTo"))
    if transaction_id is not None:
        result["transactionId"] = transaction_id
    return result


def profile_to_2x(profile: Any, transaction_id: str | None) -> Payload:
    """A 1.6 ``csChargingProfiles`` as a 2.x charging profile (schedule id = profile id)."""
    if not isinstance(profile, dict):
        raise Untranslatable("no charging profile")
    purpose = purpose_to_2x(profile.get("chargingProfilePurpose"))
    if purpose is None:
        raise Untranslatable("unknown charging profile purpose")
    profile_id = profile.get("chargingProfileId", 0)
    result: Payload = {
        "id": profile_id,
        "stackLevel": profile.get("stackLevel", 0),
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": profile.get("chargingProfileKind", "Absolute"),
        "chargingSchedule": [schedule_to_2x(profile.get("chargingSchedule") or {}, profile_id)],
    }
    result.update(pick(profile, "recurrencyKind", "validFrom", "validTo"))
    if transaction_id is not None:
        result["transactionId"] = transaction_id
    return result


# -- DataTransfer (OCPP 1.6 §6.17 against 2.0.1 P01/P02): either side may send it ----------


def data_transfer_to_16(p: Payload, _context: object) -> Outcome:
    """A 2.x DataTransfer for a 1.6 peer: ``data`` of any JSON type becomes a string."""
    payload = pick(p, "vendorId", "messageId")
    data = data_to_16(p.get("data"))
    if data is not None:
        payload["data"] = data
    return Forward("DataTransfer", payload)


def data_transfer_to_2x(p: Payload, _context: object) -> Outcome:
    """A 1.6 DataTransfer for a 2.x peer: the fields carry over as they are."""
    return Forward("DataTransfer", pick(p, "vendorId", "messageId", "data"))


def data_transfer_answer_16(p: Payload, _memo: dict) -> Payload:
    """A DataTransfer answer in 1.6 form: ``status``, and ``data`` as a string."""
    result = pick(p, "status")
    data = data_to_16(p.get("data"))
    if data is not None:
        result["data"] = data
    return result


def data_transfer_answer_2x(p: Payload, _memo: dict) -> Payload:
    """A DataTransfer answer in 2.x form: ``status`` and ``data`` as they are."""
    return pick(p, "status", "data")
