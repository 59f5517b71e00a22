"""What the charger is doing now: power, energy and duration of each running session.

The figures are :mod:`ocpp_proxy.metering`'s: the running session's live meter, the same one
Home Assistant's entities read, and the stored samples for the power series.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.metering import LiveMeter, power_series
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store import MeterSample

#: How many power samples of a session the live view carries (the newest).
MAX_POINTS = 500


def summarize(
    samples: Sequence[MeterSample], meter_start_wh: float | None, live: LiveMeter | None = None
) -> dict[str, Any]:
    """Power now (W), energy so far (kWh) and the power series ``[[ISO time, W], ...]``.

    ``live`` is the session's live meter when it runs; without one the stored ``samples`` are
    read the same way.
    """
    if live is None:
        live = LiveMeter(0.0, meter_start_wh)
        live.update(samples)
    series = power_series(samples)
    return {
        "power_w": live.power_w,
        "energy_kwh": live.session_energy_kwh,
        "power_series": [[iso_utc(at), w] for at, w in series[-MAX_POINTS:]],
    }


async def live_sessions(registry: HubRegistry) -> list[dict[str, Any]]:
    """Every running session with its owner, power now (W), energy (kWh) and duration (s)."""
    now = time.time()
    out: list[dict[str, Any]] = []
    for hub in registry:
        for running in hub.sessions.running():
            row = await registry.store.open_session(hub.id, running.transaction)
            live = hub.sessions.live.get(running.transaction)
            entry: dict[str, Any] = {
                "charge_point_id": hub.id,
                "connector": running.connector,
                "transaction_id": running.transaction,
                "owner": running.owner,
                "session_id": None,
                "started_at": None,
                "duration_s": None,
                "power_w": live.power_w if live else None,
                "energy_kwh": live.session_energy_kwh if live else None,
                "power_series": [],
            }
            if row is not None:
                samples = await registry.store.session_samples(row.id)
                # A session restored after a restart has no live reading until its next
                # MeterValues: its stored samples stand in.
                fresh = live is not None and (
                    live.power_w is not None or live.energy_wh is not None
                )
                entry.update(summarize(samples, row.meter_start_wh, live if fresh else None))
                entry.update(
                    session_id=row.id,
                    started_at=iso_utc(row.started_at),
                    duration_s=round(max(0.0, now - row.started_at), 1),
                )
            out.append(entry)
    return out
