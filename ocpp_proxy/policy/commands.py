"""What each CSMS-to-charger command does, as data: its class and what it targets.

One table per OCPP version. The class decides which rules apply: read-only commands are
always allowed; session control is checked against who owns the session; charger-wide changes
need the backend to be trusted with the charger's configuration. An action the table does not
know counts as a charger-wide change: the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ocpp_proxy.protocol.versions import OcppVersion


class CommandClass(StrEnum):
    """How much a command changes the charger."""

    READ_ONLY = "read_only"
    SESSION_CONTROL = "session_control"
    CHARGER_WIDE = "charger_wide"


class Effect(StrEnum):
    """What a session-control command does, for the ownership and safety rules."""

    START = "start"
    STOP = "stop"
    UNLOCK = "unlock"
    RESERVE = "reserve"
    PROFILE = "profile"
    CLEAR_PROFILE = "clear_profile"
    OTHER = "other"


_R, _S, _W = CommandClass.READ_ONLY, CommandClass.SESSION_CONTROL, CommandClass.CHARGER_WIDE

#: OCPP 1.6 §5 (and the 1.6 security whitepaper's messages).
TABLE_16: dict[str, CommandClass] = {
    "GetConfiguration": _R,
    "GetCompositeSchedule": _R,
    "TriggerMessage": _R,
    "ExtendedTriggerMessage": _R,
    "GetLocalListVersion": _R,
    "DataTransfer": _R,
    "GetDiagnostics": _R,
    "GetLog": _R,
    "GetInstalledCertificateIds": _R,
    "RemoteStartTransaction": _S,
    "RemoteStopTransaction": _S,
    "UnlockConnector": _S,
    "ReserveNow": _S,
    "CancelReservation": _S,
    "SetChargingProfile": _S,
    "ClearChargingProfile": _S,
    "Reset": _W,
    "ChangeConfiguration": _W,
    "ChangeAvailability": _W,
    "UpdateFirmware": _W,
    "SignedUpdateFirmware": _W,
    "SendLocalList": _W,
    "ClearCache": _W,
    "InstallCertificate": _W,
    "DeleteCertificate": _W,
    "CertificateSigned": _W,
}

#: OCPP 2.0.1 part 2 (CSMS-initiated messages).
TABLE_201: dict[str, CommandClass] = {
    "GetVariables": _R,
    "GetBaseReport": _R,
    "GetReport": _R,
    "GetMonitoringReport": _R,
    "GetCompositeSchedule": _R,
    "GetChargingProfiles": _R,
    "GetTransactionStatus": _R,
    "GetDisplayMessages": _R,
    "GetLocalListVersion": _R,
    "GetInstalledCertificateIds": _R,
    "GetLog": _R,
    "TriggerMessage": _R,
    "DataTransfer": _R,
    "RequestStartTransaction": _S,
    "RequestStopTransaction": _S,
    "UnlockConnector": _S,
    "ReserveNow": _S,
    "CancelReservation": _S,
    "SetChargingProfile": _S,
    "ClearChargingProfile": _S,
    "CostUpdated": _S,
    "Reset": _W,
    "SetVariables": _W,
    "ChangeAvailability": _W,
    "UpdateFirmware": _W,
    "PublishFirmware": _W,
    "UnpublishFirmware": _W,
    "SendLocalList": _W,
    "ClearCache": _W,
    "SetNetworkProfile": _W,
    "SetMonitoringBase": _W,
    "SetMonitoringLevel": _W,
    "SetVariableMonitoring": _W,
    "ClearVariableMonitoring": _W,
    "SetDisplayMessage": _W,
    "ClearDisplayMessage": _W,
    "CustomerInformation": _W,
    "InstallCertificate": _W,
    "DeleteCertificate": _W,
    "CertificateSigned": _W,
}

#: OCPP 2.1 adds to 2.0.1's messages (part 2, new use cases: tariffs, DER, streams, V2X).
TABLE_21: dict[str, CommandClass] = {
    **TABLE_201,
    "GetTariffs": _R,
    "GetPeriodicEventStream": _R,
    "GetDERControl": _R,
    "ChangeTransactionTariff": _S,
    "UpdateDynamicSchedule": _S,
    "UsePriorityCharging": _S,
    "NotifyAllowedEnergyTransfer": _S,
    "NotifyWebPaymentStarted": _S,
    "RequestBatterySwap": _S,
    "SetDefaultTariff": _W,
    "ClearTariffs": _W,
    "SetDERControl": _W,
    "ClearDERControl": _W,
    "AFRRSignal": _W,
    "OpenPeriodicEventStream": _W,
    "ClosePeriodicEventStream": _W,
    "AdjustPeriodicEventStream": _W,
}

TABLES: dict[OcppVersion, dict[str, CommandClass]] = {
    OcppVersion.V16: TABLE_16,
    OcppVersion.V201: TABLE_201,
    OcppVersion.V21: TABLE_21,
}

#: The session-control commands whose effect the rules look at (same names across versions).
EFFECTS: dict[str, Effect] = {
    "RemoteStartTransaction": Effect.START,
    "RequestStartTransaction": Effect.START,
    "RemoteStopTransaction": Effect.STOP,
    "RequestStopTransaction": Effect.STOP,
    "UnlockConnector": Effect.UNLOCK,
    "ReserveNow": Effect.RESERVE,
    "SetChargingProfile": Effect.PROFILE,
    "ClearChargingProfile": Effect.CLEAR_PROFILE,
}

#: The charger-wide maximum the homeowner's limit lives in (1.6 §7.13; 2.0.1 §2.12).
MAX_PROFILE_PURPOSES = frozenset({"ChargePointMaxProfile", "ChargingStationMaxProfile"})


@dataclass(frozen=True, slots=True)
class Command:
    """A command as the rules see it.

    ``connector`` is the connector (1.6) or EVSE (2.x) it targets, None for none or all;
    ``transaction`` the 2.x transaction id it names (1.6 ids are resolved by the relay);
    ``profile_purpose`` and ``profile_id`` describe a charging profile it sets or clears.
    """

    action: str
    command_class: CommandClass
    effect: Effect
    connector: int | None = None
    transaction: str | None = None
    profile_purpose: str | None = None
    profile_id: int | None = None


def describe(version: OcppVersion, action: str, payload: dict[str, Any]) -> Command:
    """Classify a command and read what it targets from its payload.

    Connector fields: 1.6 ``connectorId``; 2.x ``evseId`` (also inside a 2.x
    ``chargingProfileCriteria``). Unknown actions are charger-wide changes.
    """
    command_class = TABLES[version].get(action, CommandClass.CHARGER_WIDE)
    effect = EFFECTS.get(action, Effect.OTHER)
    profile = payload.get("csChargingProfiles") or payload.get("chargingProfile") or {}
    criteria = payload.get("chargingProfileCriteria") or {}
    # Actions without a schema reach this unchecked: any JSON value may stand here.
    profile = profile if isinstance(profile, dict) else {}
    criteria = criteria if isinstance(criteria, dict) else {}
    connector = _first_int(
        payload.get("connectorId"), payload.get("evseId"), criteria.get("evseId")
    )
    if version is not OcppVersion.V16 and effect is Effect.UNLOCK:
        connector = _first_int(payload.get("evseId"))
    transaction = payload.get("transactionId")
    return Command(
        action=action,
        command_class=command_class,
        effect=effect,
        connector=connector,
        transaction=transaction if isinstance(transaction, str) else None,
        profile_purpose=_first_str(
            profile.get("chargingProfilePurpose"),
            payload.get("chargingProfilePurpose"),
            criteria.get("chargingProfilePurpose"),
        ),
        profile_id=_first_int(
            profile.get("chargingProfileId"),
            profile.get("id"),
            payload.get("id"),
            payload.get("chargingProfileId"),
        ),
    )


def _first_int(*values: Any) -> int | None:
    return next((v for v in values if type(v) is int), None)


def _first_str(*values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str)), None)
