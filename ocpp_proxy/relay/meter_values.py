"""Meter samples out of OCPP ``meterValue`` lists, as numbers with their units.

OCPP 1.6 §7.45 SampledValue carries the value as a string, ``unit`` (default ``Wh``) and
``measurand`` (default ``Energy.Active.Import.Register``); OCPP 2.0.1 §2.50 SampledValueType
carries a number, ``unitOfMeasure`` {``unit``, ``multiplier``} (a power of ten) and the same
measurand names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp_proxy.store.rows import MeterSample

DEFAULT_MEASURAND = "Energy.Active.Import.Register"


def parse_timestamp(value: Any, default: float) -> float:
    """An OCPP dateTime (RFC 3339) as Unix seconds, or ``default`` if absent or unreadable."""
    if not isinstance(value, str):
        return default
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return default
    if parsed.tzinfo is None:
        return default  # OCPP requires a time zone; a local time without one is a guess
    return parsed.timestamp()


def meter_samples(meter_values: Any, default_at: float) -> list[MeterSample]:
    """The numeric samples of a 1.6 or 2.0.1 ``meterValue`` list (signed data is skipped).

    Args:
        meter_values: the ``meterValue`` (or 1.6 ``transactionData``) list of a message.
        default_at: the time to use for a MeterValue without a readable timestamp (Unix s).

    Returns:
        One :class:`MeterSample` per numeric sampled value, in message order.
    """
    samples: list[MeterSample] = []
    if not isinstance(meter_values, list):
        return samples
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            continue
        at = parse_timestamp(meter_value.get("timestamp"), default_at)
        for sampled in meter_value.get("sampledValue") or ():
            sample = _sample(sampled, at)
            if sample is not None:
                samples.append(sample)
    return samples


def _sample(sampled: Any, at: float) -> MeterSample | None:
    if not isinstance(sampled, dict) or sampled.get("format") == "SignedData":
        return None
    try:
        value = float(sampled.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    unit = sampled.get("unit")
    unit_of_measure = sampled.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):
        unit = unit_of_measure.get("unit", "Wh")
        multiplier = unit_of_measure.get("multiplier", 0)
        if isinstance(multiplier, int) and multiplier:
            value *= 10.0**multiplier
    measurand = sampled.get("measurand") or DEFAULT_MEASURAND
    if unit is None and measurand == DEFAULT_MEASURAND:
        unit = "Wh"
    return MeterSample(
        at=at,
        measurand=measurand,
        phase=sampled.get("phase"),
        value=value,
        unit=unit,
        context=sampled.get("context"),
    )
