"""What the charger is doing now: power, energy and duration of each running session."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store import ENERGY_REGISTER, MeterSample
from ocpp_proxy.store.energy import register_wh

#: The measurand of the active power drawn.
POWER = "Power.Active.Import"

#: How many power samples of a session the live view carries (the newest).
MAX_POINTS = 500


def power_w(sample: MeterSample) -> float | None:
    """A power sample in W (unit W or kW; None for another unit or a single phase)."""
    if sample.measurand != POWER or sample.phase not in (None, ""):
        return None
    unit = (sample.unit or "W").lower()
    if unit == "w":
        return sample.value
    if unit == "kw":
        return sample.value * 1000.0
    return None


def summarize(samples: Sequence[MeterSample], meter_start_wh: float | None) -> dict[str, Any]:
    """Power now (W), energy so far (kWh) and the power series of a session's samples."""
    series = [(s.at, w) for s in samples if (w := power_w(s)) is not None]
    registers = [
        wh
        for s in samples
        if s.measurand == ENERGY_REGISTER
        and s.phase in (None, "")
        and (wh := register_wh(s)) is not None
    ]
    start = meter_start_wh if meter_start_wh is not None else (registers[0] if registers else None)
    energy = None
    if registers and start is not None:
        energy = round(max(0.0, registers[-1] - start) / 1000.0, 6)
    return {
        "power_w": series[-1][1] if series else None,
        "energy_kwh": energy,
        "power_series": [[iso_utc(at), w] for at, w in series[-MAX_POINTS:]],
    }


async def live_sessions(registry: HubRegistry) -> list[dict[str, Any]]:
    """Every running session with its owner, power now, energy and duration."""
    now = time.time()
    out: list[dict[str, Any]] = []
    for hub in registry:
        for running in hub.sessions.running():
            row = await registry.store.open_session(hub.id, running.transaction)
            entry: dict[str, Any] = {
                "charge_point_id": hub.id,
                "connector": running.connector,
                "transaction_id": running.transaction,
                "owner": running.owner,
                "session_id": None,
                "started_at": None,
                "duration_s": None,
                "power_w": None,
                "energy_kwh": None,
                "power_series": [],
            }
            if row is not None:
                samples = await registry.store.session_samples(row.id)
                entry.update(summarize(samples, row.meter_start_wh))
                entry.update(
                    session_id=row.id,
                    started_at=iso_utc(row.started_at),
                    duration_s=round(max(0.0, now - row.started_at), 1),
                )
            out.append(entry)
    return out
