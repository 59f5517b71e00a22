"""Energy and revenue of a finished session: pure arithmetic, no database.

The energy of a session is the rise of the charger's energy register
(``Energy.Active.Import.Register``, OCPP 1.6 §7.31; OCPP 2.0.1 part 2 appendix 2): from
``meterStart`` to ``meterStop`` when the charger reported both (OCPP 1.6 StartTransaction /
StopTransaction), else from the first to the last register sample of the session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ocpp_proxy.store.rows import MeterSample

_LOGGER = logging.getLogger(__name__)

#: The measurand of the cumulative imported active energy register.
ENERGY_REGISTER = "Energy.Active.Import.Register"

#: Decimals kept of an energy in kWh (1 mWh), so that float noise does not show.
ENERGY_DECIMALS = 6

#: Decimals kept of a revenue (in currency units).
REVENUE_DECIMALS = 4


def register_wh(sample: MeterSample) -> float | None:
    """Return an energy register sample's value in Wh.

    Args:
        sample: a sample of :data:`ENERGY_REGISTER`.

    Returns:
        The value in Wh: as is for unit ``Wh`` or no unit (the OCPP default), times 1000 for
        ``kWh`` (case-insensitive); None for any other unit, which is not an energy.
    """
    unit = (sample.unit or "Wh").lower()
    if unit == "wh":
        return sample.value
    if unit == "kwh":
        return sample.value * 1000.0
    return None


def register_rise_wh(samples: Iterable[MeterSample]) -> float | None:
    """Return how far the energy register rose over ``samples``, in Wh.

    Only :data:`ENERGY_REGISTER` samples in Wh or kWh count, ordered by time (stable, so
    samples of the same time keep the given order). Samples without a phase (the total) are
    used when there are any; otherwise the rise of each phase is summed.

    Args:
        samples: the session's samples, of any measurand.

    Returns:
        Last minus first reading in Wh; None when there are fewer than two readings (of the
        total, or of some phase).
    """
    readings: dict[str | None, list[float]] = {}
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.measurand != ENERGY_REGISTER:
            continue
        wh = register_wh(sample)
        if wh is not None:
            readings.setdefault(sample.phase, []).append(wh)
    if not readings:
        return None
    groups = [readings[None]] if None in readings else list(readings.values())
    if any(len(group) < 2 for group in groups):
        return None
    return sum(group[-1] - group[0] for group in groups)


def session_energy_kwh(
    meter_start_wh: float | None,
    meter_stop_wh: float | None,
    samples: Iterable[MeterSample] = (),
) -> float | None:
    """Return the energy a session delivered, in kWh, rounded to :data:`ENERGY_DECIMALS`.

    Args:
        meter_start_wh: the register at the start (Wh), if the charger reported it.
        meter_stop_wh: the register at the stop (Wh), if the charger reported it.
        samples: the session's meter samples, used when either reading is missing.

    Returns:
        ``(meter_stop_wh - meter_start_wh) / 1000`` when both readings are known, else the
        rise of the register samples (see :func:`register_rise_wh`) / 1000; None when neither
        is available, or when the register went backwards (a replaced or reset meter).
    """
    if meter_start_wh is not None and meter_stop_wh is not None:
        rise_wh: float | None = meter_stop_wh - meter_start_wh
    else:
        rise_wh = register_rise_wh(samples)
    if rise_wh is None:
        return None
    if rise_wh < 0:
        _LOGGER.warning("energy register went backwards by %.0f Wh; energy unknown", -rise_wh)
        return None
    return round(rise_wh / 1000.0, ENERGY_DECIMALS)


def session_revenue(
    energy_kwh: float | None, owner: str | None, tariffs: Mapping[str, tuple[float, str]]
) -> tuple[float | None, str | None]:
    """Return what a session earns its owner: ``(revenue, currency)``.

    Args:
        energy_kwh: the session's energy (kWh), or None if unknown.
        owner: the backend id the session is attributed to, or None.
        tariffs: backend id -> (price per kWh, currency code).

    Returns:
        ``(round(energy_kwh * price, 4), currency)`` when the energy is known and the owner
        has a tariff; ``(None, None)`` otherwise.
    """
    if energy_kwh is None or owner is None or owner not in tariffs:
        return None, None
    rate, currency = tariffs[owner]
    return round(energy_kwh * rate, REVENUE_DECIMALS), currency
