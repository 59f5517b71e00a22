"""Relay benchmark: what the proxy adds to an OCPP 1.6 round trip, in time, throughput and memory.

Run by hand from the repository root::

    python benchmarks/relay.py            # full run (10 s throughput windows)
    python benchmarks/relay.py --quick    # 3 s throughput windows
    python benchmarks/relay.py --json out.json

Method
------
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

So three processes share the machine: proxy, chargers (this process) and CSMS servers. The
proxy is the only process of the three that does a frame's work twice (charger side and CSMS
side) and runs the relay logic, so under load it should be the bottleneck; with 2 cores, the
three processes still compete for CPU in the throughput runs, which favours the direct run
(two busy processes, two cores) over the proxied one (three busy processes). The latency runs
are sequential, so only one process is busy at a time there.

Figures
-------
1. p50/p99 round trip (us) of ``--calls`` sequential Heartbeats (after ``--warmup`` calls):
   direct, through the proxy with 1 backend, and with 3 backends (the charger gets the first
   backend's answer; all three get the CALL). Added p50 = proxied p50 - direct p50.
2. Heartbeats answered per second by ``--chargers`` concurrent chargers for ``--duration`` s,
   direct and through the proxy with 1 backend, and their ratio.
3. The proxy's VmRSS with 1 charger and 3 backends connected, right after the 3-backend latency
   run, and its peak (VmHWM), from ``/proc/<pid>/status`` (MB here means MiB).

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
import contextlib
import gc
import json
import math
import multiprocessing
import os
import platform
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

HOST = "127.0.0.1"
SUBPROTOCOL = "ocpp1.6"
CSMS_COUNT = 3
#: The heartbeat interval the benchmark CSMS answers a BootNotification with. The proxy's local
#: fallback answers with its configured ``heartbeat_interval`` (300), so this tells them apart.
CSMS_INTERVAL = 12345
CURRENT_TIME = "2025-01-01T00:00:00.000Z"
BOOT_PAYLOAD = '{"chargePointVendor":"Bench","chargePointModel":"Relay"}'

TARGET_ADDED_P50_US = 150.0
TARGET_THROUGHPUT_RATIO = 0.35
TARGET_RSS_MB = 60.0

#: Bounds on waiting, so that the benchmark always ends by itself.
POLL_TRIES = 200
POLL_PAUSE_S = 0.05
CONNECT_CONCURRENCY = 20
PROXY_STOP_TIMEOUT_S = 10.0
CSMS_START_TIMEOUT_S = 15.0
SCENARIO_BASE_TIMEOUT_S = 120.0

_CSMS_HEARTBEAT_ANSWER = {"currentTime": CURRENT_TIME}
_CSMS_BOOT_ANSWER = {"status": "Accepted", "currentTime": CURRENT_TIME, "interval": CSMS_INTERVAL}


class BenchmarkError(Exception):
    """The benchmark could not measure what it meant to (a peer failed or misbehaved)."""


@dataclass(frozen=True)
class Settings:
    calls: int
    warmup: int
    chargers: int
    duration_s: float
    throughput_warmup: int
    profile_prefix: str | None


# --- the CSMS peers (child process) ----------------------------------------------------------


async def _csms_connection(ws: ServerConnection) -> None:
    """Answer every CALL at once: Boot with Accepted/12345, anything else with currentTime."""
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            try:
                frame = json.loads(text)
            except ValueError:
                continue
            if not isinstance(frame, list) or len(frame) < 3 or frame[0] != 2:
                continue
            boot = frame[2] == "BootNotification"
            payload = _CSMS_BOOT_ANSWER if boot else _CSMS_HEARTBEAT_ANSWER
            await ws.send(json.dumps([3, frame[1], payload], separators=(",", ":")))


async def _serve_csms(count: int, control: Connection) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ports = []
        for _ in range(count):
            server = await stack.enter_async_context(
                serve(
                    _csms_connection,
                    HOST,
                    0,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=None,
                    ping_interval=None,
                )
            )
            ports.append(server.sockets[0].getsockname()[1])
        control.send(ports)
        await asyncio.to_thread(_wait_for_stop, control)


def _wait_for_stop(control: Connection) -> None:
    # Any message, or the parent's end closing (EOFError), means stop.
    with contextlib.suppress(EOFError, OSError):
        control.recv()


def csms_process_main(count: int, control: Connection) -> None:
    """Entry point of the CSMS child process: serve ``count`` CSMS servers until told to stop."""
    asyncio.run(_serve_csms(count, control))


@dataclass(frozen=True)
class CsmsServers:
    ports: list[int]
    pid: int


@contextlib.contextmanager
def csms_servers(count: int) -> Iterator[CsmsServers]:
    """Run ``count`` CSMS servers in a child process; yield their ports and its pid."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=csms_process_main, args=(count, theirs), daemon=True)
    process.start()
    try:
        if not ours.poll(CSMS_START_TIMEOUT_S):
            raise BenchmarkError("the CSMS process did not report its ports")
        assert process.pid is not None
        yield CsmsServers(ours.recv(), process.pid)
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)


# --- the charger (this process) --------------------------------------------------------------


class Charger:
    """One OCPP 1.6 charger on a raw ``websockets`` connection, one CALL at a time."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next_id = 0

    async def call(self, action: str, payload: str = "{}") -> tuple[int, Any]:
        """Send one CALL, wait for its CALLRESULT; return (round trip in ns, result payload)."""
        self._next_id += 1
        unique_id = str(self._next_id)
        text = f'[2,"{unique_id}","{action}",{payload}]'
        start = time.perf_counter_ns()
        await self._ws.send(text)
        reply = await self._ws.recv()
        elapsed = time.perf_counter_ns() - start
        frame = json.loads(reply)
        if frame[0] != 3 or frame[1] != unique_id:
            raise BenchmarkError(f"unexpected answer to {action} {unique_id}: {reply!r:.200}")
        return elapsed, frame[2]

    async def boot(self) -> None:
        """BootNotification; fail unless a CSMS (not the proxy's local fallback) answered."""
        _, result = await self.call("BootNotification", BOOT_PAYLOAD)
        if result.get("interval") != CSMS_INTERVAL:
            raise BenchmarkError(f"BootNotification was not answered by a CSMS: {result}")

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


async def _open_charger(url: str, limit: asyncio.Semaphore) -> ClientConnection:
    async with limit:
        ws = await connect(
            url,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            ping_interval=None,
            open_timeout=10,
            close_timeout=2,
        )
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        raise BenchmarkError(f"{url} did not accept subprotocol {SUBPROTOCOL}")
    return ws


@contextlib.asynccontextmanager
async def connected_chargers(base_url: str, ids: Sequence[str]) -> AsyncIterator[list[Charger]]:
    """Connect one charger per id to ``<base_url>/<id>``; close them all afterwards."""
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    results = await asyncio.gather(
        *(_open_charger(f"{base_url}/{cp}", limit) for cp in ids), return_exceptions=True
    )
    sockets = [r for r in results if isinstance(r, ClientConnection)]
    try:
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BenchmarkError(f"{len(failures)} charger(s) could not connect: {failures[0]!r}")
        yield [Charger(ws) for ws in sockets]
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the proxy (subprocess) ------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_rss_mb: float


class Proxy:
    """A running proxy subprocess and how to reach it."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.process = process
        self.http_url = f"http://{HOST}:{port}"
        self.charger_url = f"ws://{HOST}:{port}/charger"
        self.log = log

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def wait_healthy(self, session: aiohttp.ClientSession) -> None:
        """Poll ``/health`` until it answers (a bounded number of times)."""
        for _ in range(POLL_TRIES):
            if self.process.returncode is not None:
                raise BenchmarkError(
                    f"the proxy exited with status {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{self.http_url}/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_PAUSE_S)
        raise BenchmarkError(f"the proxy did not answer /health:\n{self.log_tail()}")

    async def wait_links_up(self, session: aiohttp.ClientSession, ids: Sequence[str]) -> None:
        """Poll ``/status`` until every backend link of every charger in ``ids`` is connected."""
        states: dict[str, list[str]] = {}
        for _ in range(POLL_TRIES):
            async with session.get(f"{self.http_url}/status") as response:
                status = await response.json()
            states = {
                hub["id"]: [link["state"] for link in hub["backends"]] for hub in status["chargers"]
            }
            if all(cp in states and set(states[cp]) == {"connected"} for cp in ids):
                return
            await asyncio.sleep(POLL_PAUSE_S)
        raise BenchmarkError(f"backend links not all connected: {states}")

    def memory(self) -> Memory | None:
        """VmRSS and VmHWM of the proxy process, in MiB (None without /proc)."""
        try:
            text = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

        def mib(name: str) -> float:
            return int(fields[name].split()[0]) / 1024  # the value is in kB

        return Memory(rss_mb=mib("VmRSS"), peak_rss_mb=mib("VmHWM"))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (s), from /proc (None without it)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by a few processes between :meth:`start` and :meth:`stop`, in % of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._before: dict[str, float | None] = {}
        self._started = 0.0

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self._pids.items()}
        self._started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        seconds = time.perf_counter() - self._started
        percent = {}
        for name, pid in self._pids.items():
            before, after = self._before.get(name), cpu_seconds(pid)
            if before is not None and after is not None:
                percent[name] = 100 * (after - before) / seconds
        return percent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _write_config(folder: Path, csms_ports: Sequence[int]) -> Path:
    config = {
        "ocpp_version": "1.6",
        "response_timeout": 10.0,
        "preferred_provider": "csms1",
        "ocpp_services": [
            {"id": f"csms{index}", "url": f"ws://{HOST}:{port}", "version": "1.6"}
            for index, port in enumerate(csms_ports, start=1)
        ],
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def _proxy_command(config: Path, port: int, data_dir: Path, profile: str | None) -> list[str]:
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    return [
        sys.executable,
        *runner,
        "-m",
        "ocpp_proxy",
        "--config",
        str(config),
        "--host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "WARNING",
    ]


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), PROXY_STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def running_proxy(
    session: aiohttp.ClientSession, csms_ports: Sequence[int], profile: str | None
) -> AsyncIterator[Proxy]:
    """A proxy subprocess relaying to the CSMS servers on ``csms_ports``, ready for chargers."""
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-bench-") as tmp:
        folder = Path(tmp)
        config = _write_config(folder, csms_ports)
        port = _free_port()
        log = folder / "proxy.log"
        command = _proxy_command(config, port, folder / "data", profile)
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=log_file, stderr=log_file, cwd=tmp
            )
        proxy = Proxy(process, port, log)
        try:
            await proxy.wait_healthy(session)
            yield proxy
        finally:
            await _stop_process(process)


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    name: str
    calls: int
    p50_us: float
    p99_us: float
    mean_us: float
    max_us: float


@dataclass(frozen=True)
class Throughput:
    name: str
    chargers: int
    calls: int
    seconds: float
    calls_per_s: float
    #: CPU used during the window, in % of one core: "chargers", "csms", "proxy".
    cpu_percent: dict[str, float]

    @property
    def proxy_cpu_us_per_call(self) -> float | None:
        """The proxy's CPU time per answered CALL (us), if it ran and /proc was there."""
        percent = self.cpu_percent.get("proxy")
        if percent is None or not self.calls:
            return None
        return percent / 100 * self.seconds / self.calls * 1e6


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(name: str, samples_ns: Sequence[int]) -> Latency:
    ordered = sorted(samples_ns)
    return Latency(
        name=name,
        calls=len(ordered),
        p50_us=percentile(ordered, 0.50) / 1000,
        p99_us=percentile(ordered, 0.99) / 1000,
        mean_us=sum(ordered) / len(ordered) / 1000,
        max_us=ordered[-1] / 1000,
    )


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
    async with connected_chargers(base_url, ids) as [charger]:
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
    async with connected_chargers(base_url, ids) as chargers:
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


async def run_scenarios(settings: Settings, csms: CsmsServers) -> Results:
    """Every scenario in turn, each with a fresh proxy; the CSMS servers stay up throughout."""
    csms_ports = csms.ports
    pids = {"chargers": os.getpid(), "csms": csms.pid}
    direct_url = f"ws://{HOST}:{csms_ports[0]}"
    latency: dict[str, Latency] = {}
    throughput: dict[str, Throughput] = {}
    memory: Memory | None = None
    async with aiohttp.ClientSession() as session:
        async with _bounded(settings):
            latency["direct"], _ = await measure_latency("direct", direct_url, settings, session)
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
        async with _bounded(settings):
            throughput["direct"] = await measure_throughput(
                "direct", direct_url, settings, session, pids
            )
        profile = _profile_path(settings, "throughput-proxy_1_backend")
        async with _bounded(settings), running_proxy(session, csms_ports[:1], profile) as proxy:
            throughput["proxy_1_backend"] = await measure_throughput(
                "proxy_1_backend", proxy.charger_url, settings, session, pids, proxy
            )
    return Results(latency, throughput, memory)


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    name: str
    value: float | None
    unit: str
    target: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "MISS")


def added_p50_us(results: Results, name: str) -> float:
    return results.latency[name].p50_us - results.latency["direct"].p50_us


def throughput_ratio(results: Results) -> float:
    direct = results.throughput["direct"].calls_per_s
    return results.throughput["proxy_1_backend"].calls_per_s / direct


def goals(results: Results) -> list[Goal]:
    added = added_p50_us(results, "proxy_1_backend")
    ratio = throughput_ratio(results)
    rss = results.memory.rss_mb if results.memory else None
    return [
        Goal(
            "added p50 latency, proxy with 1 backend",
            added,
            "us",
            f"<= {TARGET_ADDED_P50_US:g} us",
            added <= TARGET_ADDED_P50_US,
        ),
        Goal(
            "throughput proxy/direct",
            ratio * 100,
            "%",
            f">= {TARGET_THROUGHPUT_RATIO:.0%}",
            ratio >= TARGET_THROUGHPUT_RATIO,
        ),
        Goal(
            "proxy RSS, 1 charger + 3 backends",
            rss,
            "MB",
            f"<= {TARGET_RSS_MB:g} MB",
            None if rss is None else rss <= TARGET_RSS_MB,
        ),
    ]


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


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
            f"{_optional(cpu.get('chargers'), '.0f'):>14}{_optional(cpu.get('csms'), '.0f'):>6}"
            f"{_optional(cpu.get('proxy'), '.0f'):>7}{_optional(per_call, '.1f'):>19}"
        )
    lines.append(f"  {'ratio proxy/direct':<20}{throughput_ratio(results):>30.1%}")
    lines += ["", "Memory: proxy process, 1 charger + 3 backends connected, after the latency run"]
    if results.memory is None:
        lines.append("  not available (no /proc)")
    else:
        lines.append(
            f"  VmRSS {results.memory.rss_mb:.1f} MB   peak (VmHWM) "
            f"{results.memory.peak_rss_mb:.1f} MB"
        )
    lines += ["", "Goals"]
    for goal in goals(results):
        value = "n/a" if goal.value is None else f"{goal.value:.1f} {goal.unit}"
        lines.append(f"  {goal.verdict:<5} {goal.name}: {value} (target {goal.target})")
    return "\n".join(lines)


def report_json(results: Results, settings: Settings, elapsed_s: float) -> dict[str, Any]:
    return {
        "settings": asdict(settings),
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
        "memory_mb": asdict(results.memory) if results.memory else None,
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
    )
    return settings, args.json


def main(argv: Sequence[str] | None = None) -> int:
    settings, json_path = parse_args(argv)
    started = time.perf_counter()
    try:
        with csms_servers(CSMS_COUNT) as csms:
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
