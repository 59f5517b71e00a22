"""Durability benchmark: what the durable outbox and the message log cost an OCPP 1.6 MeterValues.

Run by hand from the repository root::

    python benchmarks/durability.py            # full run (10 s throughput windows)
    python benchmarks/durability.py --quick    # 3 s throughput windows
    python benchmarks/durability.py --json out.json

What is compared
----------------
Every OCPP 1.6 transaction message (StartTransaction, MeterValues with a transactionId,
StopTransaction) is committed to a per-backend outbox in SQLite before the proxy forwards it,
and deleted (committed) when the backend answers, before the charger gets its answer; every
frame in and out is also buffered for the message log, written behind in batches. Two proxy
configurations, each with ONE backend:

* **ON**: the defaults, ``durable_outbox: true`` and ``message_log: true``;
* **OFF**: ``durable_outbox: false`` (the outbox is kept in memory only) and
  ``message_log: false``.

Both still record sessions: the meter samples of every MeterValues are committed to SQLite
(one transaction) before it is forwarded, whatever the two switches say. OFF is therefore
"the proxy without the outbox and the message log", not "the proxy without SQLite".

Method
------
The CSMS, charger and proxy plumbing is ``_peers.py``, shared with ``relay.py``.

* **CSMS peer**: one minimal raw ``websockets`` server (no ``ocpp`` library) in a child process
  (``multiprocessing``, spawn). It answers BootNotification with ``Accepted`` and ``interval``
  12345, StartTransaction with the next ``transactionId`` of a counter and ``idTagInfo``
  ``{"status": "Accepted", "parentIdTag": "BENCH-CSMS"}``, and anything else with ``{}``. It
  counts the CALLs it got per action.
* **Chargers**: raw ``websockets`` clients (subprotocol ``ocpp1.6``) in the benchmark's own
  process. Each boots, sends one StartTransaction, and takes the transactionId the proxy
  answers with (the proxy's own id; it maps it to the CSMS's); then it sends MeterValues one
  after the other, each with that transactionId and one ``Energy.Active.Import.Register``
  sampled value in Wh, 10 Wh more each time. A round trip is timed with
  ``time.perf_counter_ns`` from just before the send to just after the answer.
* **Proxy**: ``python -m ocpp_proxy`` as a subprocess on a free loopback port, with a temporary
  config file and data dir and log level WARNING; started afresh for each scenario and stopped
  with SIGTERM.
* **Checks**: the Boot answer must come from the CSMS (interval 12345, not the proxy's local
  300), and so must the StartTransaction answer (``parentIdTag``); ``/status`` must show the
  backend link connected before and after the measurement; and the CSMS must have received
  exactly as many MeterValues as the chargers had answered during the scenario (the proxy's
  local fallback answers MeterValues with ``{}`` too, so this is what shows that every answer
  followed a forwarded frame).

Figures
-------
1. MeterValues answered per second by ``--chargers`` concurrent chargers (each sending one
   after the other) for ``--duration`` s, after ``--throughput-warmup`` calls each, ON and OFF;
   the ratio ON/OFF (goal: >= 70 %); the CPU each process used in the window (% of one core)
   and the proxy's CPU time per MeterValues.
2. p50/p99/mean/max round trip (us) of ``--calls`` sequential MeterValues from one charger
   (after ``--warmup`` calls), ON and OFF.
3. The SQLite file of each run: ``ocpp-proxy.sqlite3`` and ``-wal`` in the data dir, one second
   after the last answer (the message log is written at most 0.5 s behind) with the proxy
   still running, and the main file after the proxy stopped (closing checkpoints the WAL into
   it and removes it); with the rows it then holds (meter samples, message log, outbox).
   MB here means MiB.

Caveats
-------
* Loopback only, small frames, no TLS, no compression, no pings; a CSMS that answers at once.
  A real CSMS takes milliseconds to answer, which hides much of what is measured here.
* SQLite runs with ``journal_mode=WAL, synchronous=NORMAL``: a commit writes to the WAL but does
  not fsync, so the figures depend far more on CPU than on the disk.
* The throughput runs share the machine's cores between three busy processes; numbers vary
  with the machine and its load: compare ON and OFF from one run, and repeat a run before
  reading much into a few percent.
* ``--profile-proxy PREFIX`` runs the proxy under cProfile (one ``PREFIX-<scenario>.prof`` per
  scenario); the figures of such a run are distorted by the profiler.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import multiprocessing
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _peers import (
    BOOT_ANSWER,
    BenchmarkError,
    Charger,
    CpuMeter,
    CsmsServers,
    Goal,
    Latency,
    Proxy,
    Throughput,
    connected_chargers,
    csms_servers,
    optional,
    running_proxy,
    summarize,
)
from websockets.asyncio.client import ClientConnection

TARGET_THROUGHPUT_RATIO = 0.70

#: The configurations compared: name -> top-level options added to the proxy's config.
CONFIGS: dict[str, dict[str, Any]] = {
    "on": {"durable_outbox": True, "message_log": True},
    "off": {"durable_outbox": False, "message_log": False},
}

#: The StartTransaction answer of the benchmark CSMS says this, so that it is told apart from
#: the proxy's local fallback (which does not set ``parentIdTag``).
CSMS_MARK = "BENCH-CSMS"
ID_TAG = "BENCH"
ENERGY_STEP_WH = 10
MEASURAND = "Energy.Active.Import.Register"

DATABASE_FILE = "ocpp-proxy.sqlite3"
#: How long after the last answer the database files are measured: the message log is written
#: at most 0.5 s behind.
SETTLE_S = 1.0

#: Bound on a scenario, so that the benchmark always ends by itself.
SCENARIO_BASE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Settings:
    calls: int
    warmup: int
    chargers: int
    duration_s: float
    throughput_warmup: int
    profile_prefix: str | None


# --- the CSMS peer (child process, see _peers) -----------------------------------------------

_transaction_ids = itertools.count(1)


def csms_answer(action: str, payload: Any) -> Any:
    """Boot: Accepted/12345; StartTransaction: the next id and the mark; anything else: {}."""
    if action == "BootNotification":
        return BOOT_ANSWER
    if action == "StartTransaction":
        return {
            "transactionId": next(_transaction_ids),
            "idTagInfo": {"status": "Accepted", "parentIdTag": CSMS_MARK},
        }
    return {}


# --- the charger (this process) --------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class MeterCharger(Charger):
    """A charger that starts one transaction, then sends its MeterValues one after the other."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(ws)
        self.transaction_id: int | None = None
        self.energy_wh = 0

    async def start_transaction(self) -> None:
        """StartTransaction; keep the id. Fails unless the CSMS answered it."""
        payload = json.dumps(
            {"connectorId": 1, "idTag": ID_TAG, "meterStart": 0, "timestamp": _now()},
            separators=(",", ":"),
        )
        _, result = await self.call("StartTransaction", payload)
        transaction_id = result.get("transactionId")
        if (result.get("idTagInfo") or {}).get("parentIdTag") != CSMS_MARK:
            raise BenchmarkError(f"StartTransaction was not answered by the CSMS: {result}")
        if type(transaction_id) is not int:
            raise BenchmarkError(f"StartTransaction answered without a transactionId: {result}")
        self.transaction_id = transaction_id

    async def meter_value(self) -> int:
        """One MeterValues of the transaction; its round trip in ns."""
        self.energy_wh += ENERGY_STEP_WH
        payload = (
            f'{{"connectorId":1,"transactionId":{self.transaction_id},"meterValue":'
            f'[{{"timestamp":"{_now()}","sampledValue":[{{"value":"{self.energy_wh}",'
            f'"context":"Sample.Periodic","measurand":"{MEASURAND}","unit":"Wh"}}]}}]}}'
        )
        elapsed, result = await self.call("MeterValues", payload)
        if result != {}:
            raise BenchmarkError(f"unexpected answer to MeterValues: {result}")
        return elapsed

    async def meter_values(self, count: int) -> list[int]:
        """``count`` sequential MeterValues; their round trips in ns."""
        return [await self.meter_value() for _ in range(count)]

    async def meter_values_until(self, deadline: float) -> int:
        """Sequential MeterValues until ``deadline`` (perf_counter s); how many were answered."""
        answered = 0
        while time.perf_counter() < deadline:
            await self.meter_value()
            answered += 1
        return answered


# --- the database file -----------------------------------------------------------------------


@dataclass(frozen=True)
class Storage:
    """The SQLite files of one run (bytes) and the rows the database held after it."""

    name: str
    meter_values: int  # MeterValues the chargers had answered in the run (warm-up included)
    main_bytes: int  # ocpp-proxy.sqlite3, proxy running
    wal_bytes: int  # ocpp-proxy.sqlite3-wal, proxy running
    stopped_bytes: int  # ocpp-proxy.sqlite3 after the proxy stopped (WAL checkpointed)
    stopped_wal_bytes: int  # -wal after the proxy stopped (0: removed)
    rows: dict[str, int]  # table -> rows, after the proxy stopped

    @property
    def live_bytes(self) -> int:
        return self.main_bytes + self.wal_bytes

    @property
    def bytes_per_meter_value(self) -> float:
        return self.stopped_bytes / self.meter_values if self.meter_values else 0.0


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _database_files(data_dir: Path) -> tuple[int, int]:
    path = data_dir / DATABASE_FILE
    return _file_size(path), _file_size(Path(f"{path}-wal"))


def _row_counts(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("meter_samples", "message_log", "outbox")
        }
    finally:
        connection.close()


async def measure_storage(name: str, proxy: Proxy, meter_values: int) -> Storage:
    """Measure the database files (proxy running, then stopped); stops the proxy."""
    await asyncio.sleep(SETTLE_S)
    main_bytes, wal_bytes = _database_files(proxy.data_dir)
    await proxy.stop()
    stopped_bytes, stopped_wal_bytes = _database_files(proxy.data_dir)
    rows = await asyncio.to_thread(_row_counts, proxy.data_dir / DATABASE_FILE)
    return Storage(
        name, meter_values, main_bytes, wal_bytes, stopped_bytes, stopped_wal_bytes, rows
    )


# --- scenarios -------------------------------------------------------------------------------


async def _prepare(
    chargers: Sequence[MeterCharger],
    ids: Sequence[str],
    proxy: Proxy,
    session: aiohttp.ClientSession,
    warmup: int,
) -> int:
    """Boot, wait for the links, start a transaction each, warm up; MeterValues sent."""
    await asyncio.gather(*(charger.boot() for charger in chargers))
    await proxy.wait_links_up(session, ids)
    await asyncio.gather(*(charger.start_transaction() for charger in chargers))
    await asyncio.gather(*(charger.meter_values(warmup) for charger in chargers))
    return warmup * len(chargers)


async def _check_forwarded(
    proxy: Proxy,
    session: aiohttp.ClientSession,
    ids: Sequence[str],
    csms: CsmsServers,
    before: int,
    answered: int,
) -> None:
    """The links are still up, and the CSMS got every MeterValues the chargers had answered."""
    states = await proxy.link_states(session)
    if not all(set(states.get(cp, ())) == {"connected"} for cp in ids):
        raise BenchmarkError(f"a backend link went down during the run: {states}")
    received = csms.counts().get("MeterValues", 0) - before
    if received != answered:
        raise BenchmarkError(
            f"the CSMS got {received} MeterValues, the chargers had {answered} answered"
        )


async def measure_latency(
    name: str,
    proxy: Proxy,
    settings: Settings,
    session: aiohttp.ClientSession,
    csms: CsmsServers,
) -> tuple[Latency, int]:
    """Sequential MeterValues from one charger; also how many MeterValues were answered."""
    ids = ["BENCH-LATENCY"]
    before = csms.counts().get("MeterValues", 0)
    async with connected_chargers(proxy.charger_url, ids, MeterCharger) as [charger]:
        sent = await _prepare([charger], ids, proxy, session, settings.warmup)
        gc.collect()
        samples = await charger.meter_values(settings.calls)
        sent += len(samples)
        await _check_forwarded(proxy, session, ids, csms, before, sent)
    return summarize(name, samples), sent


async def measure_throughput(
    name: str,
    proxy: Proxy,
    settings: Settings,
    session: aiohttp.ClientSession,
    csms: CsmsServers,
) -> tuple[Throughput, int]:
    """Concurrent chargers, each sending MeterValues one after the other for a fixed time."""
    ids = [f"BENCH-{index:04d}" for index in range(settings.chargers)]
    pids = {"chargers": os.getpid(), "csms": csms.pid, "proxy": proxy.process.pid}
    cpu = CpuMeter(pids)
    before = csms.counts().get("MeterValues", 0)
    async with connected_chargers(proxy.charger_url, ids, MeterCharger) as chargers:
        sent = await _prepare(chargers, ids, proxy, session, settings.throughput_warmup)
        gc.collect()
        cpu.start()
        start = time.perf_counter()
        deadline = start + settings.duration_s
        counts = await asyncio.gather(*(c.meter_values_until(deadline) for c in chargers))
        seconds = time.perf_counter() - start
        cpu_percent = cpu.stop()
        calls = sum(counts)
        sent += calls
        await _check_forwarded(proxy, session, ids, csms, before, sent)
    return Throughput(name, len(chargers), calls, seconds, calls / seconds, cpu_percent), sent


def _profile_path(settings: Settings, scenario: str) -> str | None:
    return f"{settings.profile_prefix}-{scenario}.prof" if settings.profile_prefix else None


def _bounded(settings: Settings) -> asyncio.Timeout:
    return asyncio.timeout(SCENARIO_BASE_TIMEOUT_S + settings.duration_s)


@dataclass
class Results:
    throughput: dict[str, Throughput]
    latency: dict[str, Latency]
    storage: dict[str, Storage]


async def run_scenarios(settings: Settings, csms: CsmsServers) -> Results:
    """Each scenario with a fresh proxy and data dir; the CSMS server stays up throughout."""
    throughput: dict[str, Throughput] = {}
    latency: dict[str, Latency] = {}
    storage: dict[str, Storage] = {}
    async with aiohttp.ClientSession() as session:
        for config, options in CONFIGS.items():
            scenario = f"throughput-{config}"
            profile = _profile_path(settings, scenario)
            async with (
                _bounded(settings),
                running_proxy(session, csms.ports, profile, options) as proxy,
            ):
                throughput[config], sent = await measure_throughput(
                    config, proxy, settings, session, csms
                )
                storage[scenario] = await measure_storage(scenario, proxy, sent)
        for config, options in CONFIGS.items():
            scenario = f"latency-{config}"
            profile = _profile_path(settings, scenario)
            async with (
                _bounded(settings),
                running_proxy(session, csms.ports, profile, options) as proxy,
            ):
                latency[config], sent = await measure_latency(
                    config, proxy, settings, session, csms
                )
                storage[scenario] = await measure_storage(scenario, proxy, sent)
    return Results(throughput, latency, storage)


# --- report ----------------------------------------------------------------------------------


def source_revision() -> dict[str, Any] | None:
    """The repository's git commit, and whether ``ocpp_proxy/`` differs from it (None: no git)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        command = ["git", "-C", str(root), *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=10, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--", "ocpp_proxy").strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "proxy_changed": dirty}


def _revision_line(revision: dict[str, Any] | None) -> str:
    if revision is None:
        return "  proxy code: unknown (no git)"
    changed = " + uncommitted changes in ocpp_proxy/" if revision["proxy_changed"] else ""
    return f"  proxy code: commit {revision['commit'][:10]}{changed}"


def throughput_ratio(results: Results) -> float:
    return results.throughput["on"].calls_per_s / results.throughput["off"].calls_per_s


def goals(results: Results) -> list[Goal]:
    ratio = throughput_ratio(results)
    return [
        Goal(
            "throughput with durability ON / OFF",
            ratio * 100,
            "%",
            f">= {TARGET_THROUGHPUT_RATIO:.0%} of the throughput without them",
            ratio >= TARGET_THROUGHPUT_RATIO,
        )
    ]


def _mb(size: int) -> float:
    return size / (1024 * 1024)


def format_report(results: Results, settings: Settings, revision: dict[str, Any] | None) -> str:
    lines = [
        "Durability: OCPP 1.6 MeterValues through the proxy, 1 backend",
        "  ON  = durable_outbox: true, message_log: true (the defaults)",
        "  OFF = durable_outbox: false, message_log: false (sessions are recorded in both)",
        _revision_line(revision),
        "",
        f"Throughput: {settings.chargers} concurrent chargers, sequential MeterValues, "
        f"{settings.duration_s:g} s",
        f"  {'config':<8}{'calls':>10}{'seconds':>10}{'calls/s':>10}"
        f"{'CPU%:chargers':>14}{'CSMS':>6}{'proxy':>7}{'proxy CPU us/call':>19}",
    ]
    for name, figures in results.throughput.items():
        cpu = figures.cpu_percent
        per_call = figures.proxy_cpu_us_per_call
        lines.append(
            f"  {name.upper():<8}{figures.calls:>10}{figures.seconds:>10.2f}"
            f"{figures.calls_per_s:>10.0f}"
            f"{optional(cpu.get('chargers'), '.0f'):>14}{optional(cpu.get('csms'), '.0f'):>6}"
            f"{optional(cpu.get('proxy'), '.0f'):>7}{optional(per_call, '.1f'):>19}"
        )
    lines += [
        f"  {'ratio ON/OFF':<18}{throughput_ratio(results):>20.1%}",
        "",
        f"Latency: {settings.calls} sequential MeterValues, 1 charger, "
        f"after {settings.warmup} warm-up calls (us)",
        f"  {'config':<8}{'p50':>10}{'p99':>10}{'mean':>10}{'max':>10}",
    ]
    for name, figures in results.latency.items():
        lines.append(
            f"  {name.upper():<8}{figures.p50_us:>10.1f}{figures.p99_us:>10.1f}"
            f"{figures.mean_us:>10.1f}{figures.max_us:>10.1f}"
        )
    lines += [
        "",
        f"SQLite file ({DATABASE_FILE} + -wal, MB), {SETTLE_S:g} s after the run with the "
        "proxy running; main file after it stopped; rows then",
        f"  {'run':<16}{'main':>8}{'wal':>8}{'total':>8}{'stopped':>9}{'B/MV':>7}"
        f"{'MeterValues':>13}{'samples':>9}{'log rows':>10}{'outbox':>8}",
    ]
    for name, size in results.storage.items():
        rows = size.rows
        lines.append(
            f"  {name:<16}{_mb(size.main_bytes):>8.2f}{_mb(size.wal_bytes):>8.2f}"
            f"{_mb(size.live_bytes):>8.2f}{_mb(size.stopped_bytes):>9.2f}"
            f"{size.bytes_per_meter_value:>7.0f}{size.meter_values:>13}"
            f"{optional(rows.get('meter_samples'), 'd'):>9}"
            f"{optional(rows.get('message_log'), 'd'):>10}{optional(rows.get('outbox'), 'd'):>8}"
        )
    on, off = results.latency["on"], results.latency["off"]
    lines += ["", "Goals"]
    for goal in goals(results):
        value = "n/a" if goal.value is None else f"{goal.value:.1f} {goal.unit}"
        lines.append(f"  {goal.verdict:<5} {goal.name}: {value} (target {goal.target})")
    lines.append(
        f"  p99 latency: ON {on.p99_us:.1f} us, OFF {off.p99_us:.1f} us "
        f"({on.p99_us - off.p99_us:+.1f} us); p50 ON {on.p50_us:.1f} us, "
        f"OFF {off.p50_us:.1f} us ({on.p50_us - off.p50_us:+.1f} us)"
    )
    return "\n".join(lines)


def report_json(
    results: Results, settings: Settings, revision: dict[str, Any] | None, elapsed_s: float
) -> dict[str, Any]:
    return {
        "settings": asdict(settings),
        "configs": CONFIGS,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": multiprocessing.cpu_count(),
            "source": revision,
        },
        "throughput": {
            name: asdict(figures) | {"proxy_cpu_us_per_call": figures.proxy_cpu_us_per_call}
            for name, figures in results.throughput.items()
        },
        "throughput_ratio_on_off": throughput_ratio(results),
        "latency_us": {name: asdict(figures) for name, figures in results.latency.items()},
        "storage_bytes": {
            name: asdict(size)
            | {"live_bytes": size.live_bytes, "bytes_per_meter_value": size.bytes_per_meter_value}
            for name, size in results.storage.items()
        },
        "goals": [asdict(goal) | {"verdict": goal.verdict} for goal in goals(results)],
        "elapsed_s": elapsed_s,
    }


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s throughput windows")
    parser.add_argument("--calls", type=int, default=2000, help="measured latency calls")
    parser.add_argument("--warmup", type=int, default=200, help="latency warm-up calls")
    parser.add_argument("--chargers", type=int, default=50, help="throughput chargers")
    parser.add_argument("--duration", type=float, help="throughput window (s); default 10, 3")
    parser.add_argument(
        "--throughput-warmup", type=int, default=20, help="warm-up calls per throughput charger"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--profile-proxy",
        metavar="PREFIX",
        help="run the proxy under cProfile, writing PREFIX-<scenario>.prof (distorts figures)",
    )
    args = parser.parse_args(argv)
    if args.calls < 1 or args.chargers < 1 or args.warmup < 0 or args.throughput_warmup < 0:
        parser.error("--calls and --chargers must be >= 1, the warm-ups >= 0")
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    if not 0 < duration <= 600:
        parser.error("--duration must be in (0, 600] s")
    settings = Settings(
        calls=args.calls,
        warmup=args.warmup,
        chargers=args.chargers,
        duration_s=duration,
        throughput_warmup=args.throughput_warmup,
        profile_prefix=args.profile_proxy,
    )
    return settings, args.json


def main(argv: Sequence[str] | None = None) -> int:
    settings, json_path = parse_args(argv)
    revision = source_revision()
    started = time.perf_counter()
    try:
        with csms_servers(1, csms_answer) as csms:
            results = asyncio.run(run_scenarios(settings, csms))
    except (BenchmarkError, TimeoutError) as err:
        print(f"benchmark failed: {err or type(err).__name__}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(format_report(results, settings, revision))
    if settings.profile_prefix:
        print("\nNote: the proxy ran under cProfile; the figures above are distorted.")
    print(f"\nTotal time {elapsed:.1f} s")
    if json_path:
        Path(json_path).write_text(
            json.dumps(report_json(results, settings, revision, elapsed), indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
