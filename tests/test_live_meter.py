"""The latest readings of a running session, as Home Assistant shows them."""

from __future__ import annotations

from ocpp_proxy.metering import LiveMeter
from ocpp_proxy.store.rows import MeterSample

ENERGY = "Energy.Active.Import.Register"


def sample(measurand: str, value: float, unit: str | None, phase: str | None = None) -> MeterSample:
    return MeterSample(at=0.0, measurand=measurand, phase=phase, value=value, unit=unit)


def test_phases_are_summed_for_power_and_the_highest_current_counts() -> None:
    live = LiveMeter(started_at=0.0, meter_start_wh=1000.0)
    live.update(
        [
            sample(ENERGY, 2.5, "kWh"),
            *(sample("Power.Active.Import", 2.3, "kW", f"L{n}") for n in (1, 2, 3)),
            sample("Current.Import", 10.0, "A", "L1"),
            sample("Current.Import", 10.5, "A", "L2"),
        ]
    )
    assert (live.energy_wh, round(live.power_w or 0), live.current_a) == (2500.0, 6900, 10.5)
    assert live.session_energy_kwh == 1.5
    live.update(
        [sample("Power.Active.Import", 7000, None), sample("Power.Active.Import", 1, "W", "L1")]
    )
    assert live.power_w == 7000  # a total wins over a phase


def test_without_a_start_reading_the_first_register_sample_is_the_start() -> None:
    live = LiveMeter(started_at=0.0)
    assert live.session_energy_kwh is None
    live.update([sample(ENERGY, 5000, "Wh")])
    live.update([sample(ENERGY, 5750, None)])
    assert live.session_energy_kwh == 0.75
