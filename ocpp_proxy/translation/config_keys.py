"""OCPP 1.6 configuration keys against OCPP 2.0.1 / 2.1 component variables, as data.

OCPP 1.6 §9 lists the standard configuration keys (GetConfiguration §5.8, ChangeConfiguration
§5.3); OCPP 2.0.1 part 2 appendix 3 ("Standardized components and variables") names the
variables that replaced them (GetVariables B06, SetVariables B05). Only keys with one variable of
the same meaning and the same value format (seconds as integers, booleans as ``true``/``false``,
comma-separated measurand lists) are here; a key that is not in the table is answered as unknown
(1.6 ``unknownKey`` / ``NotSupported``; 2.x ``UnknownVariable``) rather than guessed.

Each row is ``(1.6 key, 2.x component name, 2.x variable name, read-only)``.
"""

from __future__ import annotations

from typing import NamedTuple


class ConfigKey(NamedTuple):
    """One 1.6 configuration key and the 2.x component and variable that hold the same setting."""

    key: str
    component: str
    variable: str
    readonly: bool = False


#: The table (documented in docs/translation.md). Values pass unchanged in both directions.
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("HeartbeatInterval", "OCPPCommCtrlr", "HeartbeatInterval"),
    ConfigKey("MeterValueSampleInterval", "SampledDataCtrlr", "TxUpdatedInterval"),
    ConfigKey("MeterValuesSampledData", "SampledDataCtrlr", "TxUpdatedMeasurands"),
    ConfigKey("StopTxnSampledData", "SampledDataCtrlr", "TxEndedMeasurands"),
    ConfigKey("StopTxnAlignedData", "AlignedDataCtrlr", "TxEndedMeasurands"),
    ConfigKey("ClockAlignedDataInterval", "AlignedDataCtrlr", "Interval"),
    ConfigKey("MeterValuesAlignedData", "AlignedDataCtrlr", "Measurands"),
    ConfigKey("ConnectionTimeOut", "TxCtrlr", "EVConnectionTimeOut"),
    ConfigKey("StopTransactionOnEVSideDisconnect", "TxCtrlr", "StopTxOnEVSideDisconnect"),
    ConfigKey("StopTransactionOnInvalidId", "TxCtrlr", "StopTxOnInvalidId"),
    ConfigKey("LocalAuthorizeOffline", "AuthCtrlr", "LocalAuthorizeOffline"),
    ConfigKey("LocalPreAuthorize", "AuthCtrlr", "LocalPreAuthorize"),
    ConfigKey("AuthorizeRemoteTxRequests", "AuthCtrlr", "AuthorizeRemoteStart"),
    ConfigKey("AllowOfflineTxForUnknownId", "AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
    ConfigKey("AuthorizationCacheEnabled", "AuthCacheCtrlr", "Enabled"),
    ConfigKey("LocalAuthListEnabled", "LocalAuthListCtrlr", "Enabled"),
    ConfigKey("LocalAuthListMaxLength", "LocalAuthListCtrlr", "Entries", readonly=True),
    ConfigKey("SendLocalListMaxLength", "LocalAuthListCtrlr", "ItemsPerMessage", readonly=True),
    ConfigKey("TransactionMessageAttempts", "OCPPCommCtrlr", "MessageAttempts"),
    ConfigKey("TransactionMessageRetryInterval", "OCPPCommCtrlr", "MessageAttemptInterval"),
    ConfigKey("WebSocketPingInterval", "OCPPCommCtrlr", "WebSocketPingInterval"),
    ConfigKey("ResetRetries", "OCPPCommCtrlr", "ResetRetries"),
    ConfigKey("GetConfigurationMaxKeys", "DeviceDataCtrlr", "ItemsPerMessage", readonly=True),
    ConfigKey("ChargeProfileMaxStackLevel", "SmartChargingCtrlr", "ProfileStackLevel", True),
    ConfigKey(
        "ChargingScheduleAllowedChargingRateUnit", "SmartChargingCtrlr", "RateUnit", readonly=True
    ),
    ConfigKey("ChargingScheduleMaxPeriods", "SmartChargingCtrlr", "PeriodsPerSchedule", True),
    ConfigKey("MaxChargingProfilesInstalled", "SmartChargingCtrlr", "Entries", readonly=True),
)

# Both versions compare these names case-insensitively (OCPP 1.6 §9; 2.0.1 part 2 §1.3).
_BY_KEY: dict[str, ConfigKey] = {row.key.lower(): row for row in CONFIG_KEYS}
_BY_VARIABLE: dict[tuple[str, str], ConfigKey] = {
    (row.component.lower(), row.variable.lower()): row for row in CONFIG_KEYS
}
_COMPONENTS: frozenset[str] = frozenset(row.component.lower() for row in CONFIG_KEYS)


def by_key(key: str) -> ConfigKey | None:
    """The row of 1.6 configuration key ``key`` (any case), or None if it has no 2.x variable."""
    return _BY_KEY.get(key.lower())


def by_variable(component: str, variable: str) -> ConfigKey | None:
    """The row of the 2.x ``component``.``variable`` (any case), or None if not in the table."""
    return _BY_VARIABLE.get((component.lower(), variable.lower()))


def known_component(component: str) -> bool:
    """Whether ``component`` has a variable in the table (else 2.x says UnknownComponent)."""
    return component.lower() in _COMPONENTS
