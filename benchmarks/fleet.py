"""Fleet benchmark: many chargers on one proxy process, as at a depot or during a CSMS migration.

Run by hand from the repository root::

    python benchmarks/fleet.py                      # 2,000 chargers, 60 s of steady state
    python benchmarks/fleet.py --chargers 200 --steady 20
    python benchmarks/fleet.py --json out.json

Method
------
* One CSMS peer (``_peers.csms_servers``: raw ``websockets``, answers every CALL at once) and
  ``python -m ocpp_proxy`` as a subprocess with one ``ocpp_services`` entry and every feature at
  its default (message log, durable outbox, schema checks).
* **Boot storm**: all chargers connect at once (up to ``--connect-concurrency`` handshakes in
  flight) and send a BootNotification. Settled = every BootNotification answered by the CSMS
  (not the proxy's local fallback) and every upstream link reported ``connected`` in
  ``/status``; the figure is the time from the first connect to that point.
* **Steady state**: every charger sends a MeterValues (OCPP 1.6, outside a transaction) every
  ``--interval`` s, each at its own phase, for ``--steady`` s; each round trip is timed.
* **Memory**: the proxy's VmRSS and VmHWM at the end, from ``/proc``.
* **Message log**: frames logged and dropped over the whole run, from ``/status`` at the end.

Goals (issue 11): RSS ≤ 300 MB, steady-state p99 round trip ≤ 250 ms, boot storm settled within
15 s, for 2,000 chargers; no frame dropped by the message log. Loopback only; the chargers run in
this process, so with 2 cores the figures include the load generator's own scheduling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _peers import (
    BOOT_ANSWER,
    CURRENT_TIME,
    BenchmarkError,
    Charger,
    Goal,
    Memory,
    _open_charger,
    csms_servers,
    message_log_goal,
    message_log_line,
    percentile,
    running_proxy,
)
from websockets.asyncio.client import ClientConnection

TARGET_RSS_MB = 300.0
TARGET_P99_MS = 250.0
TARGET_STORM_S = 15.0

METER_VALUES = json.dumps(
    {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": CURRENT_TIME,
                "sampledValue": [
                    {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    },
    separators=(",", ":"),
)


def csms_answer(action: str, payload: Any) -> Any:
    """Boot Accepted (interval 12345), MeterValues {}, anything else the current time."""
    if action == "BootNotification":
        return BOOT_ANSWER
    return {} if action == "MeterValues" else {"currentTime": CURRENT_TIME}


@dataclass(frozen=True)
class Figures:
    chargers: int
    storm_s: float
    meter_values: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    memory: Memory | None
    #: ``/status``'s message log counts at the end (logged, buffered, dropped).
    message_log: dict[str, Any]


async def _wait_links(
    session: aiohttp.ClientSession, http_url: str, count: int, deadline: float
) -> None:
    """Poll ``/status`` until ``count`` chargers each have every backend link connected."""
    while time.perf_counter() < deadline:
        async with session.get(f"{http_url}/status") as response:
            status = await response.json()
        up = sum(
            1
            for hub in status["chargers"]
            if hub["backends"] and {link["state"] for link in hub["backends"]} == {"connected"}
        )
        if up >= count:
            return
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"the upstream links did not all come up ({count} chargers)")


async def _storm(
    url: str, ids: Sequence[str], concurrency: int
) -> tuple[list[ClientConnection], float]:
    limit = asyncio.Semaphore(concurrency)

    async def one(cp: str) -> ClientConnection:
        ws = await _open_charger(f"{url}/{cp}", limit)
        await Charger(ws).boot()
        return ws

    started = time.perf_counter()
    results = await asyncio.gather(*(one(cp) for cp in ids), return_exceptions=True)
    sockets = [r for r in results if isinstance(r, ClientConnection)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        raise BenchmarkError(f"{len(failures)} charger(s) failed the boot storm: {failures[0]!r}")
    return sockets, started


async def _meter(ws: ClientConnection, interval_s: float, until: float, out: list[int]) -> None:
    charger = Charger(ws)
    await asyncio.sleep(random.uniform(0, interval_s))  # each charger at its own phase
    while time.perf_counter() < until:
        tick = time.perf_counter()
        elapsed, _ = await charger.call("MeterValues", METER_VALUES)
        out.append(elapsed)
        await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - tick)))


async def run(args: argparse.Namespace, csms_port: int) -> Figures:
    ids = [f"FLEET-{index:05d}" for index in range(args.chargers)]
    options = {"response_timeout": 30.0}
    async with (
        aiohttp.ClientSession() as session,
        running_proxy(session, [csms_port], None, options) as proxy,
    ):
        sockets, started = await _storm(proxy.charger_url, ids, args.connect_concurrency)
        try:
            await _wait_links(session, proxy.http_url, len(ids), started + 120)
            storm_s = time.perf_counter() - started
            samples: list[int] = []
            until = time.perf_counter() + args.steady
            await asyncio.gather(*(_meter(ws, args.interval, until, samples) for ws in sockets))
            memory = proxy.memory()
            message_log = await proxy.message_log(session)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    if not samples:
        raise BenchmarkError("no MeterValues was answered in the steady-state window")
    ordered = sorted(samples)
    return Figures(
        chargers=len(ids),
        storm_s=storm_s,
        meter_values=len(ordered),
        p50_ms=percentile(ordered, 0.50) / 1e6,
        p99_ms=percentile(ordered, 0.99) / 1e6,
        max_ms=ordered[-1] / 1e6,
        memory=memory,
        message_log=message_log,
    )


def goals(figures: Figures) -> list[Goal]:
    rss = figures.memory.rss_mb if figures.memory else None
    return [
        Goal(
            "proxy RSS",
            rss,
            "MB",
            f"<= {TARGET_RSS_MB:g} MB",
            None if rss is None else rss <= TARGET_RSS_MB,
        ),
        Goal(
            "steady-state p99",
            figures.p99_ms,
            "ms",
            f"<= {TARGET_P99_MS:g} ms",
            figures.p99_ms <= TARGET_P99_MS,
        ),
        Goal(
            "boot storm settled",
            figures.storm_s,
            "s",
            f"<= {TARGET_STORM_S:g} s",
            figures.storm_s <= TARGET_STORM_S,
        ),
        message_log_goal("message log, frames dropped", figures.message_log),
    ]


def report(figures: Figures, args: argparse.Namespace) -> str:
    memory = figures.memory
    lines = [
        f"Fleet: {figures.chargers} chargers, 1 backend, MeterValues every {args.interval:g} s "
        f"for {args.steady:g} s",
        f"  boot storm settled in {figures.storm_s:.2f} s (every Boot answered by the CSMS, "
        "every upstream link connected)",
        f"  {figures.meter_values} MeterValues: p50 {figures.p50_ms:.1f} ms, "
        f"p99 {figures.p99_ms:.1f} ms, max {figures.max_ms:.1f} ms",
        "  proxy memory: "
        + (
            f"VmRSS {memory.rss_mb:.1f} MB, peak (VmHWM) {memory.peak_rss_mb:.1f} MB"
            if memory
            else "not available (no /proc)"
        ),
        f"  message log: {message_log_line(figures.message_log)}",
        "",
        "Goals",
    ]
    for goal in goals(figures):
        value = "n/a" if goal.value is None else f"{goal.value:.1f} {goal.unit}"
        lines.append(f"  {goal.verdict:<5} {goal.name}: {value} (target {goal.target})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=10.0, help="s between MeterValues")
    parser.add_argument("--steady", type=float, default=60.0, help="s of steady state")
    parser.add_argument("--connect-concurrency", type=int, default=500)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.chargers < 1 or not 0 < args.interval <= 600 or not 0 < args.steady <= 3600:
        parser.error("--chargers >= 1, --interval in (0, 600], --steady in (0, 3600]")
    try:
        with csms_servers(1, csms_answer) as csms:
            figures = asyncio.run(asyncio.wait_for(run(args, csms.ports[0]), args.steady + 300))
    except (BenchmarkError, TimeoutError) as err:
        print(f"benchmark failed: {err or type(err).__name__}", file=sys.stderr)
        return 1
    print(report(figures, args))
    if args.json:
        data = asdict(figures) | {
            "goals": [asdict(g) | {"verdict": g.verdict} for g in goals(figures)]
        }
        Path(args.json).write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
