"""What the benchmark scripts share: CSMS peers, load chargers, the proxy subprocess, figures.

Not a benchmark itself: ``relay.py`` and ``durability.py`` import it (they run as scripts from
``benchmarks/``, so it is on their ``sys.path``, and on that of their spawned children).

* **CSMS peers** (:func:`csms_servers`): minimal raw ``websockets`` servers in one child process
  (``multiprocessing``, spawn), answering every CALL at once with what an answer function
  returns for its action and payload. They count the CALLs they got per action; ask with
  :meth:`CsmsServers.counts`.
* **Chargers** (:class:`Charger`, :func:`connected_chargers`): raw ``websockets`` clients
  (subprotocol ``ocpp1.6``, no compression, no pings), one CALL at a time, each round trip
  timed with ``time.perf_counter_ns``.
* **Proxy** (:func:`running_proxy`): ``python -m ocpp_proxy`` as a subprocess on a free
  loopback port, with a temporary config file and data dir, log level WARNING, optionally
  under cProfile; ready once ``/health`` answers; stopped with SIGTERM.
* **Figures**: latency summaries (nearest-rank percentiles), throughput with the CPU each
  process used (from ``/proc``), goals with PASS/MISS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

HOST = "127.0.0.1"
SUBPROTOCOL = "ocpp1.6"
#: The heartbeat interval the benchmark CSMS answers a BootNotification with. The proxy's local
#: fallback answers with its configured ``heartbeat_interval`` (300), so this tells them apart.
CSMS_INTERVAL = 12345
CURRENT_TIME = "2025-01-01T00:00:00.000Z"
BOOT_PAYLOAD = '{"chargePointVendor":"Bench","chargePointModel":"Relay"}'
BOOT_ANSWER = {"status": "Accepted", "currentTime": CURRENT_TIME, "interval": CSMS_INTERVAL}

#: Bounds on waiting, so that a benchmark always ends by itself.
POLL_TRIES = 200
POLL_PAUSE_S = 0.05
CONNECT_CONCURRENCY = 20
PROXY_STOP_TIMEOUT_S = 10.0
CSMS_START_TIMEOUT_S = 15.0
CSMS_REPLY_TIMEOUT_S = 5.0

#: What a CSMS answers: (action, CALL payload) -> CALLRESULT payload. It must be a module-level
#: function, since it is handed to the CSMS child process by reference (spawn).
Answer = Callable[[str, Any], Any]


class BenchmarkError(Exception):
    """The benchmark could not measure what it meant to (a peer failed or misbehaved)."""


# --- the CSMS peers (child process) ----------------------------------------------------------

#: CALLs received per action, in the CSMS process (read by the control thread: a plain dict,
#: copied whole under the GIL).
_calls_by_action: dict[str, int] = {}


async def _csms_connection(ws: ServerConnection, answer: Answer) -> None:
    """Answer every CALL at once with ``answer(action, payload)``; count CALLs per action."""
    counts = _calls_by_action
    with contextlib.suppress(ConnectionClosed):
        async for text in ws:
            try:
                frame = json.loads(text)
            except ValueError:
                continue
            if not isinstance(frame, list) or len(frame) < 4 or frame[0] != 2:
                continue
            action = frame[2]
            counts[action] = counts.get(action, 0) + 1
            payload = answer(action, frame[3])
            await ws.send(json.dumps([3, frame[1], payload], separators=(",", ":")))


async def _serve_csms(count: int, answer: Answer, control: Connection) -> None:
    async def handler(ws: ServerConnection) -> None:
        await _csms_connection(ws, answer)

    async with contextlib.AsyncExitStack() as stack:
        ports = []
        for _ in range(count):
            server = await stack.enter_async_context(
                serve(
                    handler,
                    HOST,
                    0,
                    # 2.0.1 too: the relay benchmark's translated scenario dials it so.
                    subprotocols=[SUBPROTOCOL, "ocpp2.0.1"],  # type: ignore[list-item]
                    compression=None,
                    ping_interval=None,
                )
            )
            ports.append(server.sockets[0].getsockname()[1])
        control.send(ports)
        await asyncio.to_thread(_serve_control, control)


def _serve_control(control: Connection) -> None:
    # "counts" asks for the CALLs received so far; anything else, or the parent's end closing
    # (EOFError), means stop.
    with contextlib.suppress(EOFError, OSError):
        while control.recv() == "counts":
            control.send(dict(_calls_by_action))


def csms_process_main(count: int, answer: Answer, control: Connection) -> None:
    """Entry point of the CSMS child process: serve ``count`` CSMS servers until told to stop."""
    asyncio.run(_serve_csms(count, answer, control))


@dataclass(frozen=True)
class CsmsServers:
    ports: list[int]
    pid: int
    control: Connection

    def counts(self) -> dict[str, int]:
        """CALLs the CSMS servers received so far, per action (all servers together)."""
        self.control.send("counts")
        if not self.control.poll(CSMS_REPLY_TIMEOUT_S):
            raise BenchmarkError("the CSMS process did not report its counts")
        return self.control.recv()


@contextlib.contextmanager
def csms_servers(count: int, answer: Answer) -> Iterator[CsmsServers]:
    """Run ``count`` CSMS servers in a child process; yield their ports and its pid."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=csms_process_main, args=(count, answer, theirs), daemon=True)
    process.start()
    try:
        if not ours.poll(CSMS_START_TIMEOUT_S):
            raise BenchmarkError("the CSMS process did not report its ports")
        assert process.pid is not None
        yield CsmsServers(ours.recv(), process.pid, ours)
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


C = TypeVar("C", bound=Charger)


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
async def connected_chargers(
    base_url: str, ids: Sequence[str], kind: Callable[[ClientConnection], C]
) -> AsyncIterator[list[C]]:
    """Connect one ``kind`` charger per id to ``<base_url>/<id>``; close them all afterwards."""
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    results = await asyncio.gather(
        *(_open_charger(f"{base_url}/{cp}", limit) for cp in ids), return_exceptions=True
    )
    sockets = [r for r in results if isinstance(r, ClientConnection)]
    try:
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BenchmarkError(f"{len(failures)} charger(s) could not connect: {failures[0]!r}")
        yield [kind(ws) for ws in sockets]
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the proxy (subprocess) ------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_rss_mb: float


class Proxy:
    """A running proxy subprocess and how to reach it; ``data_dir`` is its data dir."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        port: int,
        log: Path,
        data_dir: Path,
        *,
        reports_links: bool = True,
    ) -> None:
        self.process = process
        #: False for the bare relay (``bare_relay.py``), which has no ``/status`` to poll.
        self.reports_links = reports_links
        self.http_url = f"http://{HOST}:{port}"
        self.charger_url = f"ws://{HOST}:{port}/charger"
        self.log = log
        self.data_dir = data_dir

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

    async def message_log(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """``/status``'s message log counts (logged, buffered, dropped) once its buffer is written.

        Polled a bounded number of times; the last answer is returned either way.
        """
        log: dict[str, Any] = {}
        for _ in range(POLL_TRIES):
            async with session.get(f"{self.http_url}/status") as response:
                log = (await response.json())["message_log"]
            if not log.get("buffered"):
                break
            await asyncio.sleep(POLL_PAUSE_S)
        return log

    async def link_states(self, session: aiohttp.ClientSession) -> dict[str, list[str]]:
        """Charger id -> the states of its backend links, from ``/status``."""
        async with session.get(f"{self.http_url}/status") as response:
            status = await response.json()
        return {
            hub["id"]: [link["state"] for link in hub["backends"]] for hub in status["chargers"]
        }

    async def wait_links_up(self, session: aiohttp.ClientSession, ids: Sequence[str]) -> None:
        """Poll ``/status`` until every backend link of every charger in ``ids`` is connected."""
        if not self.reports_links:
            return
        states: dict[str, list[str]] = {}
        for _ in range(POLL_TRIES):
            states = await self.link_states(session)
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

    async def stop(self) -> None:
        """Stop the proxy with SIGTERM (SIGKILL if it lingers); nothing if it has exited."""
        await _stop_process(self.process)


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


def _write_config(folder: Path, csms_ports: Sequence[int], options: dict[str, Any]) -> Path:
    config = {
        "ocpp_version": "1.6",
        "response_timeout": 10.0,
        "preferred_provider": "csms1",
        # Every load charger connects from 127.0.0.1: lift the per-address cap meant for a LAN.
        "max_connections": 100_000,
        "max_connections_per_address": 100_000,
        "api_public_read": True,  # the scripts read /status without the API token
        "ocpp_services": [
            {"id": f"csms{index}", "url": f"ws://{HOST}:{port}", "version": "1.6"}
            for index, port in enumerate(csms_ports, start=1)
        ],
        **options,
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
async def _running(
    session: aiohttp.ClientSession,
    folder: Path,
    command: Sequence[str],
    port: int,
    *,
    reports_links: bool = True,
    source: Path | None = None,
) -> AsyncIterator[Proxy]:
    """Start ``command`` (a relay listening on ``port``), wait for ``/health``, stop it after.

    With ``source``, the ``ocpp_proxy`` package is imported from that directory (a checkout of
    another commit, to measure before and after in one run).
    """
    log = folder / "relay.log"
    env = {**os.environ, "PYTHONPATH": str(source)} if source is not None else None
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log_file, stderr=log_file, cwd=folder, env=env
        )
    relay = Proxy(process, port, log, folder / "data", reports_links=reports_links)
    try:
        await relay.wait_healthy(session)
        yield relay
    finally:
        await _stop_process(process)


@contextlib.asynccontextmanager
async def running_proxy(
    session: aiohttp.ClientSession,
    csms_ports: Sequence[int],
    profile: str | None,
    options: dict[str, Any] | None = None,
    source: Path | None = None,
) -> AsyncIterator[Proxy]:
    """A proxy subprocess relaying to the CSMS servers on ``csms_ports``, ready for chargers.

    ``options`` are added to (or override) the config file's top-level options; ``source`` is
    a directory to import ``ocpp_proxy`` from instead of the installed one. The data dir is
    deleted when the context ends, after the proxy stopped.
    """
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-bench-") as tmp:
        folder = Path(tmp)
        config = _write_config(folder, csms_ports, options or {})
        port = _free_port()
        command = _proxy_command(config, port, folder / "data", profile)
        async with _running(session, folder, command, port, source=source) as proxy:
            yield proxy


@contextlib.asynccontextmanager
async def running_floor(session: aiohttp.ClientSession, csms_port: int) -> AsyncIterator[Proxy]:
    """The bare relay (``bare_relay.py``, same stack, no OCPP work) in front of one CSMS."""
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-floor-") as tmp:
        port = _free_port()
        script = Path(__file__).with_name("bare_relay.py")
        command = [
            sys.executable,
            str(script),
            "--host",
            HOST,
            "--port",
            str(port),
            "--upstream",
            f"ws://{HOST}:{csms_port}",
        ]
        async with _running(session, Path(tmp), command, port, reports_links=False) as floor:
            yield floor


#: nginx as a plain WebSocket forwarder: one process (no master, no daemon), no logs, loopback.
NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen {host}:{port};
        location = /health {{ return 200 "ok"; }}
        location /charger/ {{
            proxy_pass http://{host}:{csms_port}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


def nginx_path() -> str | None:
    """The nginx binary on PATH (or in /usr/sbin), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


@contextlib.asynccontextmanager
async def running_nginx(
    session: aiohttp.ClientSession, csms_port: int, binary: str
) -> AsyncIterator[Proxy]:
    """nginx forwarding ``/charger/<id>`` to ``<CSMS>/<id>``: the reference the issue names."""
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-nginx-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        config = folder / "nginx.conf"
        config.write_text(
            NGINX_CONFIG.format(folder=folder, host=HOST, port=port, csms_port=csms_port)
        )
        command = [binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        async with _running(session, folder, command, port, reports_links=False) as nginx:
            yield nginx


# --- figures ---------------------------------------------------------------------------------


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


def message_log_goal(name: str, log: dict[str, Any] | None) -> Goal:
    """The goal that the message log dropped no frame, from ``/status``'s counts (None: n/a)."""
    dropped = log.get("dropped") if log else None
    return Goal(name, dropped, "frames", "0", None if dropped is None else dropped == 0)


def message_log_line(log: dict[str, Any]) -> str:
    """``/status``'s message log counts in words."""
    return (
        f"{log.get('logged', 0)} frames logged, {log.get('dropped', 0)} dropped, "
        f"{log.get('buffered', 0)} still buffered"
    )


def optional(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``-`` if there is none."""
    return "-" if value is None else format(value, spec)
