"""The homeowner's current limit as the charger holds it: a charger-wide maximum profile.

The charger applies the lowest of all its active profiles (OCPP 1.6 §3.13.2; 2.0.1 K01), so a
limit held in the charger-wide maximum profile (1.6 ``ChargePointMaxProfile`` on connector 0;
2.0.1 ``ChargingStationMaxProfile`` on EVSE 0) caps every backend's TxProfile without the proxy
having to touch them, and stays in force while the proxy or the network is down. The proxy
sets it at the highest stack level the charger accepts, and sets it again on every connect.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ocpp_proxy.config import SchedulePeriod
from ocpp_proxy.protocol.versions import OcppVersion

#: The chargingProfileId of the homeowner's charger-wide limit, set by the proxy.
HOMEOWNER_PROFILE_ID = 9001

DAY_S = 86_400

#: (start in s after local midnight, limit in A)
Periods = list[tuple[int, float]]


def limit_periods(
    max_current_a: float | None, schedule: Sequence[SchedulePeriod]
) -> Periods | None:
    """The homeowner's limit over a day, or None when nothing limits charging.

    Without a schedule: ``max_current_a`` all day. With one: each period's limit inside its
    hours (capped by ``max_current_a``), 0 A outside them.
    """
    if not schedule:
        return None if max_current_a is None else [(0, max_current_a)]
    minute_limits = [0.0] * (24 * 60)
    for period in schedule:
        start, end = period.minutes()
        minutes = range(start, end) if end > start else [*range(start, 1440), *range(end)]
        for minute in minutes:
            minute_limits[minute] = max(minute_limits[minute], period.max_current_a)
    periods: Periods = []
    for minute, limit in enumerate(minute_limits):
        if max_current_a is not None:
            limit = min(limit, max_current_a)
        if not periods or periods[-1][1] != limit:
            periods.append((minute * 60, limit))
    return periods


def set_profile(
    version: OcppVersion,
    periods: Periods,
    *,
    stack_level: int,
    daily: bool,
    now: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SetChargingProfile (action, payload) that holds ``periods`` on the charger.

    ``daily`` makes it a daily recurring profile starting at local midnight; else an absolute
    one from ``now``. Limits are in A, rounded to 0.1 A (OCPP 1.6 §7.9 ``multipleOf 0.1``).
    """
    now = now or datetime.now().astimezone()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) if daily else now
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "startSchedule": start.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "chargingSchedulePeriod": [
            {"startPeriod": offset, "limit": round(limit, 1)} for offset, limit in periods
        ],
    }
    if daily:
        schedule["duration"] = DAY_S
    profile: dict[str, Any] = {
        "stackLevel": stack_level,
        "chargingProfileKind": "Recurring" if daily else "Absolute",
    }
    if daily:
        profile["recurrencyKind"] = "Daily"
    if version is OcppVersion.V16:
        profile |= {
            "chargingProfileId": HOMEOWNER_PROFILE_ID,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingSchedule": schedule,
        }
        return "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": profile}
    profile |= {
        "id": HOMEOWNER_PROFILE_ID,
        "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingSchedule": [{"id": 1, **schedule}],
    }
    return "SetChargingProfile", {"evseId": 0, "chargingProfile": profile}


def clear_profile(version: OcppVersion) -> tuple[str, dict[str, Any]]:
    """The ClearChargingProfile (action, payload) that removes the homeowner's limit."""
    if version is OcppVersion.V16:
        return "ClearChargingProfile", {"id": HOMEOWNER_PROFILE_ID}
    return "ClearChargingProfile", {"chargingProfileId": HOMEOWNER_PROFILE_ID}


def stack_level_query(version: OcppVersion) -> tuple[str, dict[str, Any]]:
    """The command that asks the charger for its highest profile stack level.

    1.6: GetConfiguration ``ChargeProfileMaxStackLevel`` (§9.4); 2.0.1: GetVariables
    ``SmartChargingCtrlr.ProfileStackLevel`` (appendix 3).
    """
    if version is OcppVersion.V16:
        return "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel"]}
    return "GetVariables", {
        "getVariableData": [
            {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "ProfileStackLevel"}}
        ]
    }


def stack_level_from(answer: dict[str, Any] | None, default: int = 1) -> int:
    """The stack level in the answer to :func:`stack_level_query`, or ``default``."""
    answer = answer or {}
    values = [k.get("value") for k in answer.get("configurationKey") or ()] + [
        r.get("attributeValue") for r in answer.get("getVariableResult") or ()
    ]
    for value in values:
        try:
            return max(0, int(str(value)))
        except ValueError:
            continue
    return default
