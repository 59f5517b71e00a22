"""Meter samples out of OCPP ``meterValue`` lists, as numbers with their units.

OCPP 1.6 §7.45 SampledValue carries the value as a string, ``unit`` (default ``Wh``) and
``measurand`` (default ``Energy.Active.Import.Register``); OCPP 2.0.1 §2.50 SampledValueType
carries a number, ``unitOfMeasure`` {``unit``, ``multiplier``} (a power of ten) and the same
measurand names.
"""

from __future__ import annotations

import math
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
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):  # e.g. 0001-01-01T00:00:00+14:00
        return default


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
        sampled_values = meter_value.get("sampledValue")
        if not isinstance(sampled_values, list):
            continue
        for sampled in sampled_values:
            sample = _sample(sampled, at)
            if sample is not None:
                samples.append(sample)
    return samples


def _sample(sampled: Any, at: float) -> MeterSample | None:
    if not isinstance(sampled, dict) or sampled.get("format") == "SignedData":
        return None
    try:
        value = float(sampled.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1e308
        return None
    unit = sampled.get("unit")
    unit_of_measure = sampled.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):
        unit = unit_of_measure.get("unit", "Wh")
        multiplier = unit_of_measure.get("multiplier", 0)
        if type(multiplier) is int and multiplier:
            try:
                value *= 10.0**multiplier
            except OverflowError:
                return None
    if not math.isfinite(value):  # "NaN", "1e999": no reading
        return None
    measurand = sampled.get("measurand") or DEFAULT_MEASURAND
    if not isinstance(measurand, str):
        return None
    if unit is None and measurand == DEFAULT_MEASURAND:
        unit = "Wh"
    # Only text is stored: a field of another JSON type counts as absent.
    return MeterSample(
        at=at,
        measurand=measurand,
        phase=_text(sampled.get("phase")),
        value=value,
        unit=_text(unit),
        context=_text(sampled.get("context")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
