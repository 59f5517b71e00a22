"""Power, current and energy out of a charger's meter samples: the one computation of them.

The web page, Home Assistant and the store all read their figures from here, so that a
charger shows the same watts everywhere. The rules:

- **Power** (``Power.Active.Import``, W or kW) at one sampling instant: the total (a sample
  without a phase) when the charger sent one, else the sum of the phases (L1, L2, L3, ...).
- **Current** (``Current.Import``, A) at one instant: the highest phase (or the total).
- **Energy** is the rise of the register ``Energy.Active.Import.Register`` (Wh or kWh; OCPP 1.6
  §7.31, OCPP 2.0.1 part 2 appendix 2): from ``meterStart`` (else the first register
  reading) to the newest reading while a session runs, and to ``meterStop`` (else the last
  reading) once it ended.

Samples of one instant are the sampled values of one ``meterValue`` entry (they share its
timestamp: OCPP 1.6 §7.17 MeterValue, OCPP 2.0.1 §2.47 MeterValueType).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the type: the store imports this module
    from ocpp_proxy.store.rows import MeterSample

_LOGGER = logging.getLogger(__name__)

#: The measurand of the cumulative imported active energy register.
ENERGY_REGISTER = "Energy.Active.Import.Register"
#: The measurand of the active power drawn.
POWER = "Power.Active.Import"
#: The measurand of the current drawn.
CURRENT = "Current.Import"

#: Decimals kept of an energy in kWh (1 mWh), so that float noise does not show.
ENERGY_DECIMALS = 6


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


def power_w(sample: MeterSample) -> float | None:
    """Return a :data:`POWER` sample's value in W (unit ``W``, no unit, or ``kW``), else None."""
    if sample.measurand != POWER:
        return None
    unit = (sample.unit or "W").lower()
    if unit == "w":
        return sample.value
    if unit == "kw":
        return sample.value * 1000.0
    return None


@dataclass(frozen=True, slots=True)
class Reading:
    """What the charger measured at one instant (Unix s ``at``); None: not reported."""

    at: float
    power_w: float | None = None
    current_a: float | None = None
    energy_wh: float | None = None


def readings(samples: Iterable[MeterSample]) -> Iterator[Reading]:
    """The readings of ``samples``, one per instant, in the order given.

    Consecutive samples with the same ``at`` form one instant. Power: the total, else the sum of
    the phases (W); current: the highest value (A); energy: the register total, else the sum of
    the phases (Wh). A measurand without a usable value is None.
    """
    group: list[MeterSample] = []
    for sample in samples:
        if group and sample.at != group[0].at:
            yield _reading(group)
            group = []
        group.append(sample)
    if group:
        yield _reading(group)


def _reading(group: Sequence[MeterSample]) -> Reading:
    power: dict[str | None, float] = {}
    energy: dict[str | None, float] = {}
    currents: list[float] = []
    for sample in group:
        if sample.measurand == POWER:
            watts = power_w(sample)
            if watts is not None:
                power[sample.phase or None] = watts
        elif sample.measurand == CURRENT:
            currents.append(sample.value)
        elif sample.measurand == ENERGY_REGISTER:
            wh = register_wh(sample)
            if wh is not None:
                energy[sample.phase or None] = wh
    return Reading(
        at=group[0].at,
        power_w=_total(power),
        current_a=max(currents) if currents else None,
        energy_wh=_total(energy),
    )


def _total(by_phase: dict[str | None, float]) -> float | None:
    # A total (no phase) wins over per-phase values, which are summed otherwise.
    if not by_phase:
        return None
    return by_phase[None] if None in by_phase else sum(by_phase.values())


@dataclass(slots=True)
class LiveMeter:
    """The newest readings of one running session, kept in memory for live displays.

    ``meter_start_wh`` is the register at the start (from the start message, else the first
    register reading). ``energy_wh`` is the newest register value (Wh), ``power_w`` the newest
    power (W), ``current_a`` the newest current (A); see the module for the rules.
    """

    started_at: float
    meter_start_wh: float | None = None
    energy_wh: float | None = None
    power_w: float | None = None
    current_a: float | None = None

    @property
    def session_energy_kwh(self) -> float | None:
        """Energy delivered so far (kWh), or None before the first register reading."""
        if self.energy_wh is None or self.meter_start_wh is None:
            return None
        return round(max(self.energy_wh - self.meter_start_wh, 0.0) / 1000, ENERGY_DECIMALS)

    def update(self, samples: Iterable[MeterSample]) -> None:
        """Take the readings of one message (samples of one instant, or several in order)."""
        for reading in readings(samples):
            if reading.energy_wh is not None:
                self.energy_wh = reading.energy_wh
                if self.meter_start_wh is None:
                    self.meter_start_wh = reading.energy_wh
            if reading.power_w is not None:
                self.power_w = reading.power_w
            if reading.current_a is not None:
                self.current_a = reading.current_a


def power_series(samples: Iterable[MeterSample]) -> list[tuple[float, float]]:
    """``(at, W)`` of every instant of ``samples`` that reported power, in order."""
    return [(r.at, r.power_w) for r in readings(samples) if r.power_w is not None]


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
    by_phase: dict[str | None, list[float]] = {}
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.measurand != ENERGY_REGISTER:
            continue
        wh = register_wh(sample)
        if wh is not None:
            by_phase.setdefault(sample.phase or None, []).append(wh)
    if not by_phase:
        return None
    groups = [by_phase[None]] if None in by_phase else list(by_phase.values())
    if any(len(group) < 2 for group in groups):
        return None
    return sum(group[-1] - group[0] for group in groups)


def session_energy_kwh(
    meter_start_wh: float | None,
    meter_stop_wh: float | None,
    samples: Iterable[MeterSample] = (),
) -> float | None:
    """Return the energy a finished session delivered, in kWh, rounded to :data:`ENERGY_DECIMALS`.

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
