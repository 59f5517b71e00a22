"""Relay benchmark: what the proxy adds to an OCPP 1.6 round trip, in time, throughput and memory.

Run by hand from the repository root::

    python benchmarks/relay.py            # full run (10 s throughput windows)
    python benchmarks/relay.py --quick    # 3 s throughput windows
    python benchmarks/relay.py --json out.json

Method
------
The CSMS, charger and proxy plumbing lives in ``_peers.py`` (shared with ``durability.py``).

* **CSMS peers**: a minimal raw ``websockets`` server (no ``ocpp`` library) that answers every
  CALL ``[2, id, action, payload]`` with ``[3, id, {"currentTime": ...}]``, and a
  BootNotification with ``Accepted`` and ``interval`` 12345. Three such servers run on loopback
  ports in one child process (``multiprocessing``, spawn). They are fast and do no validation, so
  that what is measured is the proxy's overhead, not a CSMS's.
* **Chargers**: raw ``websockets`` clients (subprotocol ``ocpp1.6``) in the benchmark's own
  process. Each sends a BootNotification, then Heartbeats one after the other; a round trip is
  timed with ``time.perf_counter_ns`` from just before the send to just after the answer.
* **Proxy**: ``python -m ocpp_proxy`` as a subprocess, on a free loopback port, with a temporary
  config file and data dir and log level WARNING; started afresh for each proxied scenario and
  stopped with SIGTERM. The benchmark polls ``/health`` until it answers, and before measuring
  checks that the Boot answer came from a CSMS (interval 12345; the proxy's local fallback says
  300) and polls ``/status`` until every backend link of every charger is ``connected``.
* **Direct** runs use the same charger and CSMS code, with the charger dialling the first CSMS.
* **Floor** runs put ``bare_relay.py`` between them: the same stack as the proxy (aiohttp server
  and client, uvloop) copying frames unparsed. It is what any relay on this stack costs, so
  "proxy against floor" is the cost of the proxy's own work.

So three processes share the machine: proxy, chargers (this process) and CSMS servers. The
proxy is the only process of the three that does a frame's work twice (charger side and CSMS
side) and runs the relay logic, so under load it should be the bottleneck; with 2 cores, the
three processes still compete for CPU in the throughput runs, which favours the direct run
(two busy processes, two cores) over the proxied one (three busy processes). The latency runs
are sequential, so only one process is busy at a time there.

Figures
-------
1. p50/p99 round trip (us) of ``--calls`` sequential Heartbeats (after ``--warmup`` calls):
   direct, through the floor, through the proxy with 1 backend, and with 3 backends (the
   charger gets the first backend's answer; all three get the CALL). Added p50 = relayed p50 -
   direct p50. ``proxy_translated``: 1 backend that speaks OCPP 2.0.1 to the 1.6 charger, so
   each Heartbeat and its answer are translated (what translating adds to a message beside the
   relaying; richer payloads: ``benchmarks/translation.py``).
2. Heartbeats answered per second by ``--chargers`` concurrent chargers for ``--duration`` s,
   direct, through the floor, through nginx and through the proxy with 1 backend; the ratios
   proxy/direct, proxy/floor and proxy/nginx, and the relay process's CPU per call, proxy over
   floor. nginx (a plain WebSocket forwarder: one process, no logs) is measured in latency and
   throughput when an ``nginx`` binary is on PATH or in /usr/sbin; otherwise its goal is n/a.
3. The proxy's VmRSS with 1 charger and 3 backends connected, right after the 3-backend latency
   run, and its peak (VmHWM), from ``/proc/<pid>/status`` (MB here means MiB).
4. The message log of the proxy's throughput run (its own maximum rate), from ``/status``
   once the window closed and the log's buffer was written: frames logged and dropped.

Caveats
-------
* Loopback only, small frames, no TLS, no permessage-deflate (the chargers and CSMS servers
  turn compression off, which many real chargers never negotiate anyway), no WebSocket pings
  from the peers. Real networks add far more latency than the proxy does.
* The load generator is Python too: direct throughput is bounded by this process and the CSMS
  process, not by the network, so the ratio is "proxy vs. a minimal Python relay-free path".
* Numbers vary with the machine, its load and CPU frequency scaling: compare runs on one
  machine, and repeat a run before reading much into a few percent.
* ``--profile-proxy PREFIX`` runs the proxy under cProfile (one ``PREFIX-<scenario>.prof`` per
  proxied scenario); the figures of such a run are distorted by the profiler.
* Memory and CPU are read from ``/proc``: on a system without it those figures are absent.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from _peers import (
    BOOT_ANSWER,
    CURRENT_TIME,
    HOST,
    BenchmarkError,
    Charger,
    CpuMeter,
    CsmsServers,
    Goal,
    Latency,
    Memory,
    Proxy,
    Throughput,
    connected_chargers,
    csms_servers,
    message_log_goal,
    message_log_line,
    nginx_path,
    optional,
    running_floor,
    running_nginx,
    running_proxy,
    summarize,
)

_T = TypeVar("_T")

CSMS_COUNT = 3
#: The bare relay's scenario name (``bare_relay.py``): the stack's floor.
FLOOR = "floor_1_backend"
#: nginx as a plain WebSocket forwarder, when installed.
NGINX = "nginx"
#: The scenario of the proxy from ``--before DIR`` (another checkout), 1 backend.
BEFORE = "before_1_backend"

#: Goals against the floor (``bare_relay.py``: same stack, frames copied unparsed), issue 11.
TARGET_CPU_PER_CALL_VS_FLOOR = 1.5
TARGET_THROUGHPUT_VS_FLOOR = 0.6
TARGET_THROUGHPUT_VS_NGINX = 0.5
TARGET_ADDED_P50_OVER_FLOOR_US = 50.0
TARGET_RSS_MB = 60.0

#: Bound on a scenario, so that the benchmark always ends by itself.
SCENARIO_BASE_TIMEOUT_S = 120.0

_CSMS_HEARTBEAT_ANSWER = {"currentTime": CURRENT_TIME}


@dataclass(frozen=True)
class Settings:
    calls: int
    warmup: int
    chargers: int
    duration_s: float
    throughput_warmup: int
    profile_prefix: str | None
    #: Another checkout's directory: its proxy is measured too, in the same run ("before").
    before: Path | None = None


# --- the CSMS peers (child process, see _peers) ----------------------------------------------


def csms_answer(action: str, payload: Any) -> Any:
    """Boot with Accepted/12345, anything else with currentTime."""
    return BOOT_ANSWER if action == "BootNotification" else _CSMS_HEARTBEAT_ANSWER


# --- the charger (this process) --------------------------------------------------------------


class HeartbeatCharger(Charger):
    """A charger that sends Heartbeats one after the other."""

    async def heartbeat(self) -> int:
        """One Heartbeat; its round trip in ns. Fails unless a CSMS answered it."""
        elapsed, result = await self.call("Heartbeat")
        if result.get("currentTime") != CURRENT_TIME:  # the proxy's own answer has the time
            raise BenchmarkError(f"Heartbeat was not answered by a CSMS: {result}")
        return elapsed

    async def heartbeats(self, count: int) -> list[int]:
        """``count`` sequential Heartbeats; their round trips in ns."""
        return [await self.heartbeat() for _ in range(count)]

    async def heartbeats_until(self, deadline: float) -> int:
        """Sequential Heartbeats until ``deadline`` (perf_counter s); how many were answered."""
        answered = 0
        while time.perf_counter() < deadline:
            await self.heartbeat()
            answered += 1
        return answered


# --- scenarios -------------------------------------------------------------------------------


async def _prepare(
    chargers: Sequence[Charger],
    ids: Sequence[str],
    proxy: Proxy | None,
    session: aiohttp.ClientSession,
) -> None:
    await asyncio.gather(*(charger.boot() for charger in chargers))
    if proxy is not None:
        await proxy.wait_links_up(session, ids)


async def measure_latency(
    name: str,
    base_url: str,
    settings: Settings,
    session: aiohttp.ClientSession,
    proxy: Proxy | None = None,
) -> tuple[Latency, Memory | None]:
    """Sequential Heartbeats from one charger; also the proxy's memory right after them."""
    ids = ["BENCH-LATENCY"]
    async with connected_chargers(base_url, ids, HeartbeatCharger) as [charger]:
        await _prepare([charger], ids, proxy, session)
        await charger.heartbeats(settings.warmup)
        gc.collect()
        samples = await charger.heartbeats(settings.calls)
        memory = proxy.memory() if proxy is not None else None
    return summarize(name, samples), memory


async def measure_throughput(
    name: str,
    base_url: str,
    settings: Settings,
    session: aiohttp.ClientSession,
    pids: dict[str, int],
    proxy: Proxy | None = None,
) -> Throughput:
    """Concurrent chargers, each sending Heartbeats one after the other for a fixed time."""
    ids = [f"BENCH-{index:04d}" for index in range(settings.chargers)]
    if proxy is not None:
        pids = {**pids, "proxy": proxy.process.pid}
    cpu = CpuMeter(pids)
    async with connected_chargers(base_url, ids, HeartbeatCharger) as chargers:
        await _prepare(chargers, ids, proxy, session)
        await asyncio.gather(*(c.heartbeats(settings.throughput_warmup) for c in chargers))
        gc.collect()
        cpu.start()
        start = time.perf_counter()
        deadline = start + settings.duration_s
        counts = await asyncio.gather(*(c.heartbeats_until(deadline) for c in chargers))
        seconds = time.perf_counter() - start
        cpu_percent = cpu.stop()
    calls = sum(counts)
    return Throughput(name, len(chargers), calls, seconds, calls / seconds, cpu_percent)


def _profile_path(settings: Settings, scenario: str) -> str | None:
    return f"{settings.profile_prefix}-{scenario}.prof" if settings.profile_prefix else None


def _bounded(settings: Settings) -> asyncio.Timeout:
    return asyncio.timeout(SCENARIO_BASE_TIMEOUT_S + settings.duration_s)


@dataclass
class Results:
    latency: dict[str, Latency]
    throughput: dict[str, Throughput]
    memory: Memory | None
    #: ``/status``'s ``message_log`` after the proxy's throughput run (logged, dropped, ...).
    message_log: dict[str, Any] | None = None


async def run_scenarios(settings: Settings, csms: CsmsServers) -> Results:
    """Every scenario in turn, each with a fresh proxy; the CSMS servers stay up throughout."""
    csms_ports = csms.ports
    pids = {"chargers": os.getpid(), "csms": csms.pid}
    direct_url = f"ws://{HOST}:{csms_ports[0]}"
    latency: dict[str, Latency] = {}
    throughput: dict[str, Throughput] = {}
    memory: Memory | None = None
    message_log: dict[str, Any] | None = None
    async with aiohttp.ClientSession() as session:
        async with _bounded(settings):
            latency["direct"], _ = await measure_latency("direct", direct_url, settings, session)
        async with _bounded(settings), running_floor(session, csms_ports[0]) as floor:
            latency[FLOOR], _ = await measure_latency(
                FLOOR, floor.charger_url, settings, session, floor
            )
        nginx = nginx_path()

        async def through_nginx(measure: Callable[[Proxy], Awaitable[_T]]) -> _T | None:
            """``measure(nginx)``, or None (said on stderr): nginx is a reference only."""
            if nginx is None:
                return None
            try:
                async with (
                    _bounded(settings),
                    running_nginx(session, csms_ports[0], nginx) as relay,
                ):
                    return await measure(relay)
            except BenchmarkError as err:
                print(f"nginx ({nginx}) could not be measured, left out: {err}", file=sys.stderr)
                return None

        nginx_latency = await through_nginx(
            lambda relay: measure_latency(NGINX, relay.charger_url, settings, session, relay)
        )
        if nginx_latency is not None:
            latency[NGINX] = nginx_latency[0]
        else:
            nginx = None  # it failed once: not tried again for throughput
        for backends in (1, CSMS_COUNT):
            name = f"proxy_{backends}_backend{'s' if backends > 1 else ''}"
            profile = _profile_path(settings, f"latency-{name}")
            async with (
                _bounded(settings),
                running_proxy(session, csms_ports[:backends], profile) as proxy,
            ):
                latency[name], after = await measure_latency(
                    name, proxy.charger_url, settings, session, proxy
                )
            if backends == CSMS_COUNT:
                memory = after
        # The same, with the backend speaking OCPP 2.0.1: every frame translated (issue 13).
        translated = {
            "ocpp_services": [
                {"id": "csms1", "url": f"ws://{HOST}:{csms_ports[0]}", "version": "2.0.1"}
            ]
        }
        name = "proxy_translated"
        profile = _profile_path(settings, f"latency-{name}")
        async with (
            _bounded(settings),
            running_proxy(session, csms_ports[:1], profile, translated) as proxy,
        ):
            latency[name], _ = await measure_latency(
                name, proxy.charger_url, settings, session, proxy
            )
        async with _bounded(settings):
            throughput["direct"] = await measure_throughput(
                "direct", direct_url, settings, session, pids
            )
        async with _bounded(settings), running_floor(session, csms_ports[0]) as floor:
            throughput[FLOOR] = await measure_throughput(
                FLOOR, floor.charger_url, settings, session, pids, floor
            )
        nginx_throughput = await through_nginx(
            lambda relay: measure_throughput(
                NGINX, relay.charger_url, settings, session, pids, relay
            )
        )
        if nginx_throughput is not None:
            throughput[NGINX] = nginx_throughput
        profile = _profile_path(settings, "throughput-proxy_1_backend")
        async with _bounded(settings), running_proxy(session, csms_ports[:1], profile) as proxy:
            throughput["proxy_1_backend"] = await measure_throughput(
                "proxy_1_backend", proxy.charger_url, settings, session, pids, proxy
            )
            message_log = await proxy.message_log(session)
        if settings.before is not None:
            # The same two scenarios with the proxy of another checkout, in this very run.
            async with (
                _bounded(settings),
                running_proxy(session, csms_ports[:1], None, source=settings.before) as proxy,
            ):
                latency[BEFORE], _ = await measure_latency(
                    BEFORE, proxy.charger_url, settings, session, proxy
                )
            async with (
                _bounded(settings),
                running_proxy(session, csms_ports[:1], None, source=settings.before) as proxy,
            ):
                throughput[BEFORE] = await measure_throughput(
                    BEFORE, proxy.charger_url, settings, session, pids, proxy
                )
    return Results(latency, throughput, memory, message_log)


# --- report ----------------------------------------------------------------------------------


def added_p50_us(results: Results, name: str) -> float:
    return results.latency[name].p50_us - results.latency["direct"].p50_us


def throughput_ratio(results: Results, against: str = "direct") -> float:
    base = results.throughput[against].calls_per_s
    return results.throughput["proxy_1_backend"].calls_per_s / base


def cpu_ratio(results: Results, name: str = "proxy_1_backend") -> float | None:
    """The CPU per relayed call of scenario ``name`` over the floor's (None without /proc)."""
    proxy = results.throughput[name].proxy_cpu_us_per_call
    floor = results.throughput[FLOOR].proxy_cpu_us_per_call
    return None if proxy is None or not floor else proxy / floor


def goals(results: Results) -> list[Goal]:
    over_floor = added_p50_us(results, "proxy_1_backend") - added_p50_us(results, FLOOR)
    vs_floor = throughput_ratio(results, FLOOR)
    cpu = cpu_ratio(results)
    rss = results.memory.rss_mb if results.memory else None
    vs_nginx = throughput_ratio(results, NGINX) if NGINX in results.throughput else None
    return [
        Goal(
            "proxy CPU per call / floor's",
            cpu,
            "x",
            f"<= {TARGET_CPU_PER_CALL_VS_FLOOR:g} x",
            None if cpu is None else cpu <= TARGET_CPU_PER_CALL_VS_FLOOR,
        ),
        Goal(
            "throughput proxy/floor",
            vs_floor * 100,
            "%",
            f">= {TARGET_THROUGHPUT_VS_FLOOR:.0%}",
            vs_floor >= TARGET_THROUGHPUT_VS_FLOOR,
        ),
        Goal(
            "throughput proxy/nginx",
            None if vs_nginx is None else vs_nginx * 100,
            "%",
            f">= {TARGET_THROUGHPUT_VS_NGINX:.0%}",
            None if vs_nginx is None else vs_nginx >= TARGET_THROUGHPUT_VS_NGINX,
        ),
        Goal(
            "added p50, proxy with 1 backend, over the floor's added p50",
            over_floor,
            "us",
            f"<= {TARGET_ADDED_P50_OVER_FLOOR_US:g} us",
            over_floor <= TARGET_ADDED_P50_OVER_FLOOR_US,
        ),
        Goal(
            "proxy RSS, 1 charger + 3 backends",
            rss,
            "MB",
            f"<= {TARGET_RSS_MB:g} MB",
            None if rss is None else rss <= TARGET_RSS_MB,
        ),
        message_log_goal("message log, frames dropped in the throughput run", results.message_log),
    ]


def format_report(results: Results, settings: Settings) -> str:
    lines = [
        f"Latency: {settings.calls} sequential Heartbeats, 1 charger, "
        f"after {settings.warmup} warm-up calls (us)",
        f"  {'scenario':<20}{'p50':>10}{'p99':>10}{'mean':>10}{'max':>10}{'added p50':>12}",
    ]
    for name, figures in results.latency.items():
        added = "-" if name == "direct" else f"{added_p50_us(results, name):+.1f}"
        lines.append(
            f"  {name:<20}{figures.p50_us:>10.1f}{figures.p99_us:>10.1f}"
            f"{figures.mean_us:>10.1f}{figures.max_us:>10.1f}{added:>12}"
        )
    lines += [
        "",
        f"Throughput: {settings.chargers} concurrent chargers, sequential Heartbeats, "
        f"{settings.duration_s:g} s",
        f"  {'scenario':<20}{'calls':>10}{'seconds':>10}{'calls/s':>10}"
        f"{'CPU%:chargers':>14}{'CSMS':>6}{'proxy':>7}{'proxy CPU us/call':>19}",
    ]
    for name, figures in results.throughput.items():
        cpu = figures.cpu_percent
        per_call = figures.proxy_cpu_us_per_call
        lines.append(
            f"  {name:<20}{figures.calls:>10}{figures.seconds:>10.2f}{figures.calls_per_s:>10.0f}"
            f"{optional(cpu.get('chargers'), '.0f'):>14}{optional(cpu.get('csms'), '.0f'):>6}"
            f"{optional(cpu.get('proxy'), '.0f'):>7}{optional(per_call, '.1f'):>19}"
        )
    lines.append(f"  {'ratio proxy/direct':<20}{throughput_ratio(results):>30.1%}")
    lines.append(f"  {'ratio proxy/floor':<20}{throughput_ratio(results, FLOOR):>30.1%}")
    if NGINX in results.throughput:
        lines.append(f"  {'ratio proxy/nginx':<20}{throughput_ratio(results, NGINX):>30.1%}")
    cpu = cpu_ratio(results)
    lines.append(f"  {'CPU/call proxy/floor':<20}{optional(cpu, '.2f'):>30}")
    if BEFORE in results.throughput:
        before = cpu_ratio(results, BEFORE)
        lines.append(f"  {'CPU/call before/floor':<20}{optional(before, '.2f'):>30}")
    lines += ["", "Memory: proxy process, 1 charger + 3 backends connected, after the latency run"]
    if results.memory is None:
        lines.append("  not available (no /proc)")
    else:
        lines.append(
            f"  VmRSS {results.memory.rss_mb:.1f} MB   peak (VmHWM) "
            f"{results.memory.peak_rss_mb:.1f} MB"
        )
    if results.message_log is not None:
        lines += [
            "",
            "Message log: the proxy's throughput run",
            f"  {message_log_line(results.message_log)}",
        ]
    lines += ["", "Goals"]
    for goal in goals(results):
        value = "n/a" if goal.value is None else f"{goal.value:.1f} {goal.unit}"
        lines.append(f"  {goal.verdict:<5} {goal.name}: {value} (target {goal.target})")
    return "\n".join(lines)


def report_json(results: Results, settings: Settings, elapsed_s: float) -> dict[str, Any]:
    return {
        "settings": asdict(settings) | {"before": str(settings.before or "") or None},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": multiprocessing.cpu_count(),
        },
        "latency_us": {name: asdict(figures) for name, figures in results.latency.items()},
        "added_p50_us": {
            name: added_p50_us(results, name) for name in results.latency if name != "direct"
        },
        "throughput": {
            name: asdict(figures) | {"proxy_cpu_us_per_call": figures.proxy_cpu_us_per_call}
            for name, figures in results.throughput.items()
        },
        "throughput_ratio": throughput_ratio(results),
        "throughput_ratio_vs_floor": throughput_ratio(results, FLOOR),
        "throughput_ratio_vs_nginx": (
            throughput_ratio(results, NGINX) if NGINX in results.throughput else None
        ),
        "cpu_per_call_vs_floor": cpu_ratio(results),
        "before_cpu_per_call_vs_floor": (
            cpu_ratio(results, BEFORE) if BEFORE in results.throughput else None
        ),
        "memory_mb": asdict(results.memory) if results.memory else None,
        "message_log": results.message_log,
        "goals": [asdict(goal) | {"verdict": goal.verdict} for goal in goals(results)],
        "elapsed_s": elapsed_s,
    }


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s throughput windows")
    parser.add_argument("--calls", type=int, default=5000, help="measured latency calls")
    parser.add_argument("--warmup", type=int, default=200, help="latency warm-up calls")
    parser.add_argument("--chargers", type=int, default=100, help="throughput chargers")
    parser.add_argument("--duration", type=float, help="throughput window (s); default 10, 3")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--before",
        metavar="DIR",
        type=Path,
        help="also measure the proxy of the checkout in DIR (e.g. a git worktree), same run",
    )
    parser.add_argument(
        "--profile-proxy",
        metavar="PREFIX",
        help="run the proxy under cProfile, writing PREFIX-<scenario>.prof (distorts figures)",
    )
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.chargers < 1:
        parser.error("--calls and --chargers must be >= 1, --warmup >= 0")
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    if not 0 < duration <= 600:
        parser.error("--duration must be in (0, 600] s")
    settings = Settings(
        calls=args.calls,
        warmup=args.warmup,
        chargers=args.chargers,
        duration_s=duration,
        throughput_warmup=20,
        profile_prefix=args.profile_proxy,
        before=args.before.resolve() if args.before else None,
    )
    return settings, args.json


def main(argv: Sequence[str] | None = None) -> int:
    settings, json_path = parse_args(argv)
    started = time.perf_counter()
    try:
        with csms_servers(CSMS_COUNT, csms_answer) as csms:
            results = asyncio.run(run_scenarios(settings, csms))
    except (BenchmarkError, TimeoutError) as err:
        print(f"benchmark failed: {err or type(err).__name__}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(format_report(results, settings))
    if settings.profile_prefix:
        print("\nNote: the proxy ran under cProfile; the figures above are distorted.")
    print(f"\nTotal time {elapsed:.1f} s")
    if json_path:
        Path(json_path).write_text(json.dumps(report_json(results, settings, elapsed), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
