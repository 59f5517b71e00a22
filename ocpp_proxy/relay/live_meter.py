"""The latest readings of a running session, kept in memory for live displays (Home Assistant).

The store keeps every sample; this keeps only the newest power, current and energy register
value, so that a display need not read the database on every meter value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ocpp_proxy.store.energy import ENERGY_REGISTER, register_wh
from ocpp_proxy.store.rows import MeterSample

_POWER = "Power.Active.Import"
_CURRENT = "Current.Import"


@dataclass(slots=True)
class LiveMeter:
    """The newest readings of one session.

    ``meter_start_wh`` is the register at the start (from the start message, else the first
    register sample). ``energy_wh`` is the newest register value (Wh), ``power_w`` the newest
    power (W, phases summed), ``current_a`` the newest current (A, the highest phase).
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
        return round(max(self.energy_wh - self.meter_start_wh, 0.0) / 1000, 3)

    def update(self, samples: Iterable[MeterSample]) -> None:
        """Take the readings of one message (samples of one time, or several in order)."""
        latest: dict[str, dict[str | None, float]] = {}
        for sample in samples:
            if sample.measurand == ENERGY_REGISTER:
                wh = register_wh(sample)
                if wh is not None and sample.phase is None:
                    latest.setdefault("energy", {})[None] = wh
            elif sample.measurand == _POWER:
                unit = (sample.unit or "W").lower()
                watts = sample.value * 1000 if unit == "kw" else sample.value
                latest.setdefault("power", {})[sample.phase] = watts
            elif sample.measurand == _CURRENT:
                latest.setdefault("current", {})[sample.phase] = sample.value
        if "energy" in latest:
            self.energy_wh = latest["energy"][None]
            if self.meter_start_wh is None:
                self.meter_start_wh = self.energy_wh
        if "power" in latest:
            phases = latest["power"]
            # A total (no phase) wins over per-phase values, which are summed otherwise.
            self.power_w = phases[None] if None in phases else sum(phases.values())
        if "current" in latest:
            self.current_a = max(latest["current"].values())
