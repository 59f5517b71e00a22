"""Soak benchmark: many chargers, several backends, backend restarts and a proxy crash.

Run by hand from the repository root::

    python benchmarks/soak.py                                  # 200 chargers x 3 backends, 10 min
    python benchmarks/soak.py --duration 120 --chargers 50     # a short run

What it does
------------
* **Backends**: ``--backends`` minimal CSMS servers (raw ``websockets``, in this process so
  that they can be restarted and record what they get), each answering every CALL at once:
  BootNotification ``Accepted``, StartTransaction with the next ``transactionId`` of its own
  counter, anything else ``{}``. Each records every CALL it receives: charge point id, unique
  id, action, payload. Every ``--restart-every`` s (30) the next backend in turn is stopped
  (its server closed with its connections) and started again on the same port 2 s later.
* **Proxy**: ``python -m ocpp_proxy`` as a subprocess on a loopback port (log level WARNING,
  ``_peers``' config: the backends as ``ocpp_services``, the first preferred, the defaults
  otherwise, connection caps raised for the chargers), killed with **SIGKILL** at 40 % of the
  time and started again at once with the same config, data dir and port.
* **Outage**: at 60 % of the time every backend is stopped; 10 % later the proxy is SIGKILLed
  and started again while they are all down (it answers the chargers alone meanwhile); 10 %
  later again every backend comes back. Nothing answered during the outage may be lost.
* **Chargers**: ``--chargers`` raw ``websockets`` OCPP 1.6 chargers in this process. Each boots
  once, then runs sessions one after the other: StartTransaction, MeterValues every
  ``--interval`` s (3) ``--samples`` times (4), StopTransaction. Like a real charger it keeps
  its transaction messages in a queue while offline and sends them one at a time; a message
  whose answer did not come (the link dropped, or no answer in 30 s) is sent again, under the
  same unique id, after it reconnected (backoff 0.5 s doubling to 5 s, with jitter). The
  MeterValues of a session are queued on time whether online or not; the next message after a
  StartTransaction waits for its answer (it carries the transactionId).
* **Identity**: every transaction message carries a per-charger sequence number as its
  timestamp (StartTransaction and StopTransaction ``timestamp``, MeterValues
  ``meterValue[0].timestamp``): a message is (charger, action, timestamp). The transactionId
  is not part of it, since the proxy rewrites it per backend; instead each backend's
  MeterValues and StopTransaction are checked to carry the id that backend gave the session's
  StartTransaction.
* **End**: the chargers stop starting sessions, finish the one under way and empty their
  queues (bounded), then ``/status`` is polled until every backend queue of every charger is
  empty (``queue_depth`` 0; bounded).

It prints
---------
* messages the chargers had answered, per action, and how many sends were repeats;
* per backend, CALLs delivered per action;
* **lost**: transaction messages answered to the charger but never delivered to a backend
  (per backend; must be 0); **duplicated**: delivered to a backend more than once (same
  charger, action and timestamp), and of those how many under the same unique id;
  **wrong transaction id**: MeterValues or StopTransaction with another id than the one that
  backend gave the session;
* messages still unanswered in a charger's queue at the end, backend queues not drained;
* the proxy's peak RSS (VmHWM) of each of the two proxy processes, and ERROR lines in its log.

Exit status 1 if anything was lost, a proxy exited by itself, or the end could not drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from _peers import (
    HOST,
    SUBPROTOCOL,
    BenchmarkError,
    Proxy,
    _free_port,
    _proxy_command,
    _stop_process,
    _write_config,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
ANSWER_TIMEOUT_S = 30.0
BACKEND_DOWN_S = 2.0
DRAIN_TIMEOUT_S = 120.0
TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


def stamp(seq: int) -> str:
    """The timestamp that carries a message's sequence number."""
    return (EPOCH + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the backends ----------------------------------------------------------------------------


@dataclass
class Delivery:
    charge_point_id: str
    unique_id: str
    action: str
    payload: Any


class Backend:
    """A minimal CSMS that records every CALL and can be restarted on its port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.received: list[Delivery] = []
        self.restarts = 0
        self._server: Server | None = None
        self._next_tx = itertools.count(1)
        #: (charge point id, StartTransaction timestamp) -> the transactionId given.
        self.given: dict[tuple[str, str], int] = {}

    async def _handle(self, ws: ServerConnection) -> None:
        cp = (ws.request.path if ws.request else "/").rsplit("/", 1)[-1]
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                if frame[0] != 2:
                    continue
                _, unique_id, action, payload = frame
                self.received.append(Delivery(cp, unique_id, action, payload))
                answer: dict[str, Any] = {}
                if action == "BootNotification":
                    answer = {"status": "Accepted", "currentTime": stamp(0), "interval": 3600}
                elif action == "StartTransaction":
                    key = (cp, payload.get("timestamp"))
                    if key not in self.given:  # the same start again gets the same id
                        self.given[key] = next(self._next_tx)
                    answer = {"transactionId": self.given[key], "idTagInfo": {"status": "Accepted"}}
                await ws.send(json.dumps([3, unique_id, answer]))

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            HOST,
            self.port,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


# --- the chargers ----------------------------------------------------------------------------


@dataclass
class Message:
    unique_id: str
    action: str
    payload: dict[str, Any]
    answered: asyncio.Future[Any]
    sends: int = 0


@dataclass
class Totals:
    answered: Counter[str] = field(default_factory=Counter)
    resends: int = 0
    connects: int = 0
    #: (charger, action, timestamp) of every answered transaction message.
    answered_keys: set[tuple[str, str, str]] = field(default_factory=set)
    #: (charger, MeterValues/Stop timestamp) -> the timestamp of its session's start.
    session_of: dict[tuple[str, str], str] = field(default_factory=dict)
    local_answers: int = 0


class SoakCharger:
    def __init__(self, cp: str, url: str, totals: Totals, interval: float, samples: int) -> None:
        self.cp = cp
        self.url = url
        self.totals = totals
        self.interval = interval
        self.samples = samples
        self.queue: deque[Message] = deque()
        self.wakeup = asyncio.Event()
        self.stopping = False
        self.produced_all = False
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._energy = 0
        self._ws: ClientConnection | None = None

    def enqueue(self, action: str, payload: dict[str, Any]) -> Message:
        message = Message(
            f"{self.cp}-{next(self._ids)}",
            action,
            payload,
            asyncio.get_running_loop().create_future(),
        )
        self.queue.append(message)
        self.wakeup.set()
        return message

    async def produce(self) -> None:
        """Boot once, then sessions until told to stop (the last one is finished)."""
        try:
            await self.enqueue(
                "BootNotification", {"chargePointVendor": "Soak", "chargePointModel": "S1"}
            ).answered
            while not self.stopping:
                start_ts = stamp(next(self._seq))
                start = self.enqueue(
                    "StartTransaction",
                    {
                        "connectorId": 1,
                        "idTag": "SOAK",
                        "meterStart": self._energy,
                        "timestamp": start_ts,
                    },
                )
                tx = (await start.answered)["transactionId"]
                for _ in range(self.samples):
                    await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))
                    self._energy += 100
                    ts = stamp(next(self._seq))
                    self.totals.session_of[(self.cp, ts)] = start_ts
                    self.enqueue(
                        "MeterValues",
                        {
                            "connectorId": 1,
                            "transactionId": tx,
                            "meterValue": [
                                {
                                    "timestamp": ts,
                                    "sampledValue": [{"value": str(self._energy), "unit": "Wh"}],
                                }
                            ],
                        },
                    )
                    if self.stopping:
                        break
                ts = stamp(next(self._seq))
                self.totals.session_of[(self.cp, ts)] = start_ts
                self.enqueue(
                    "StopTransaction",
                    {"transactionId": tx, "meterStop": self._energy, "timestamp": ts},
                )
                await asyncio.sleep(self.interval * random.uniform(0.2, 0.5))
        finally:
            self.produced_all = True
            self.wakeup.set()

    async def _connect(self) -> ClientConnection:
        delay = 0.5
        while True:
            try:
                ws = await connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=None,
                    ping_interval=None,
                    open_timeout=10,
                    close_timeout=1,
                )
                self.totals.connects += 1
                return ws
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 5.0)

    async def send_all(self) -> None:
        """Send the queue one message at a time; resend after a reconnect; stop when drained."""
        while True:
            if not self.queue:
                if self.produced_all:
                    break
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if self._ws is None:
                self._ws = await self._connect()
            message = self.queue[0]
            message.sends += 1
            if message.sends > 1:
                self.totals.resends += 1
            try:
                await self._ws.send(
                    json.dumps([2, message.unique_id, message.action, message.payload])
                )
                async with asyncio.timeout(ANSWER_TIMEOUT_S):
                    while True:
                        frame = json.loads(await self._ws.recv())
                        if frame[0] == 2:  # a command: not expected, answer it anyway
                            await self._ws.send(json.dumps([3, frame[1], {}]))
                        elif frame[1] == message.unique_id:
                            break
            except (ConnectionClosed, TimeoutError, OSError):
                with contextlib.suppress(Exception):
                    await self._ws.close()
                self._ws = None
                continue
            self.queue.popleft()
            self._answered(message, frame)
        if self._ws is not None:
            await self._ws.close()

    def _answered(self, message: Message, frame: list[Any]) -> None:
        payload = frame[2] if frame[0] == 3 else {}
        if message.action == "BootNotification" and payload.get("interval") != 3600:
            self.totals.local_answers += 1
        self.totals.answered[message.action] += 1
        if message.action in TRANSACTION_ACTIONS:
            self.totals.answered_keys.add((self.cp, message.action, _timestamp(message.payload)))
        if not message.answered.done():
            message.answered.set_result(payload)


def _timestamp(payload: dict[str, Any]) -> str:
    if "meterValue" in payload:
        return payload["meterValue"][0]["timestamp"]
    return payload["timestamp"]


# --- the proxy -------------------------------------------------------------------------------


@dataclass
class ProxyRun:
    folder: Path
    config: Path
    port: int
    data_dir: Path
    log: Path
    proxy: Proxy | None = None
    peaks_mb: list[float] = field(default_factory=list)
    exited_by_itself: list[int] = field(default_factory=list)

    async def start(self, session: aiohttp.ClientSession) -> Proxy:
        command = _proxy_command(self.config, self.port, self.data_dir, None)
        with self.log.open("ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=log_file, stderr=log_file, cwd=self.folder
            )
        self.proxy = Proxy(process, self.port, self.log, self.data_dir)
        await self.proxy.wait_healthy(session)
        return self.proxy

    def record_peak(self) -> None:
        if self.proxy is not None and (memory := self.proxy.memory()) is not None:
            self.peaks_mb.append(memory.peak_rss_mb)

    async def kill(self) -> None:
        assert self.proxy is not None
        if self.proxy.process.returncode is not None:
            self.exited_by_itself.append(self.proxy.process.returncode)
        self.record_peak()
        self.proxy.process.send_signal(signal.SIGKILL)
        await self.proxy.process.wait()


async def _queue_depths(session: aiohttp.ClientSession, proxy: Proxy) -> int:
    async with session.get(f"{proxy.http_url}/status") as response:
        status = await response.json()
    return sum(link["queue_depth"] for hub in status["chargers"] for link in hub["backends"])


# --- the run ---------------------------------------------------------------------------------


async def _restarter(backends: list[Backend], every: float, stop: asyncio.Event) -> None:
    for backend in itertools.cycle(backends):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        await backend.stop()
        await asyncio.sleep(BACKEND_DOWN_S)
        await backend.start()
        backend.restarts += 1


async def run(args: argparse.Namespace) -> int:
    backends = [Backend(f"csms{i}") for i in range(1, args.backends + 1)]
    for backend in backends:
        await backend.start()
    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-soak-") as tmp:
        folder = Path(tmp)
        options = {
            "max_connections": args.chargers * 2 + 50,
            "max_connections_per_address": args.chargers * 2 + 50,
            "api_public_read": True,
        }
        config = _write_config(folder, [b.port for b in backends], options)
        run_ = ProxyRun(folder, config, _free_port(), folder / "data", folder / "proxy.log")
        async with aiohttp.ClientSession() as session:
            proxy = await run_.start(session)
            base = f"ws://{HOST}:{run_.port}/charger"
            chargers = [
                SoakCharger(
                    f"SOAK{i:04d}", f"{base}/SOAK{i:04d}", totals, args.interval, args.samples
                )
                for i in range(1, args.chargers + 1)
            ]
            started = time.monotonic()
            stop_restarts = asyncio.Event()
            restarter = asyncio.create_task(_restarter(backends, args.restart_every, stop_restarts))
            producers = [asyncio.create_task(c.produce()) for c in chargers]
            senders = [asyncio.create_task(c.send_all()) for c in chargers]
            drained = True
            depth = -1

            def say(what: str) -> None:
                print(f"[{time.monotonic() - started:5.0f} s] {what}", file=sys.stderr)

            try:
                await asyncio.sleep(args.duration * 0.4)
                say("SIGKILL the proxy")
                await run_.kill()
                proxy = await run_.start(session)
                say("proxy restarted")
                await asyncio.sleep(args.duration * 0.2)
                # Outage: every backend down, the proxy answers alone and is SIGKILLed and
                # restarted meanwhile; the backends must still get every session when back.
                stop_restarts.set()
                await restarter
                say("every backend down")
                for backend in backends:
                    await backend.stop()
                await asyncio.sleep(args.duration * 0.1)
                say("SIGKILL the proxy during the outage")
                await run_.kill()
                proxy = await run_.start(session)
                say("proxy restarted; backends still down")
                await asyncio.sleep(args.duration * 0.1)
                for backend in backends:
                    await backend.start()
                say("every backend back")
                stop_restarts = asyncio.Event()
                restarter = asyncio.create_task(
                    _restarter(backends, args.restart_every, stop_restarts)
                )
                await asyncio.sleep(max(0.0, args.duration - (time.monotonic() - started)))
                say("stopping the chargers")
                stop_restarts.set()
                await restarter
                for charger in chargers:
                    charger.stopping = True
                try:
                    async with asyncio.timeout(DRAIN_TIMEOUT_S):
                        await asyncio.gather(*producers)
                        await asyncio.gather(*senders)
                except TimeoutError:
                    drained = False

                deadline = time.monotonic() + DRAIN_TIMEOUT_S
                while time.monotonic() < deadline:
                    depth = await _queue_depths(session, proxy)
                    if depth == 0:
                        break
                    await asyncio.sleep(0.5)
                drained = drained and depth == 0
                await asyncio.sleep(1)  # the last answers reach the backends' records
                run_.record_peak()
                if proxy.process.returncode is not None:
                    run_.exited_by_itself.append(proxy.process.returncode)
            finally:
                for task in (*producers, *senders, restarter):
                    task.cancel()
                await asyncio.gather(*producers, *senders, restarter, return_exceptions=True)
                await _stop_process(proxy.process)
                for backend in backends:
                    await backend.stop()
            errors = [
                line
                for line in run_.log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " CRITICAL " in line
            ]
            elapsed = time.monotonic() - started
    unanswered = sum(len(c.queue) for c in chargers)
    report, lost = _report(totals, backends, run_, errors, unanswered, depth, elapsed, args)
    print(report)
    return 1 if lost or run_.exited_by_itself or not drained else 0


def _report(
    totals: Totals,
    backends: list[Backend],
    run_: ProxyRun,
    errors: list[str],
    unanswered: int,
    depth: int,
    elapsed: float,
    args: argparse.Namespace,
) -> tuple[str, int]:
    actions = ["BootNotification", *TRANSACTION_ACTIONS]
    lines = [
        f"soak: {args.chargers} chargers x {args.backends} backends, {elapsed:.0f} s in all "
        f"({args.duration:.0f} s of sessions, then draining); backend restarts: "
        + ", ".join(f"{b.name} {b.restarts}" for b in backends)
        + "; proxy SIGKILLed and restarted twice, the second time with every backend down",
        "",
        f"{'':28}" + "".join(f"{a:>20}" for a in actions),
        f"{'answered to the chargers':28}" + "".join(f"{totals.answered[a]:>20,}" for a in actions),
    ]
    total_lost = 0
    detail: list[str] = []
    for backend in backends:
        delivered: Counter[tuple[str, str, str]] = Counter()
        unique: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        per_action: Counter[str] = Counter()
        wrong_tx = 0
        for d in backend.received:
            per_action[d.action] += 1
            if d.action in TRANSACTION_ACTIONS:
                key = (d.charge_point_id, d.action, _timestamp(d.payload))
                delivered[key] += 1
                unique[key].add(d.unique_id)
                if d.action != "StartTransaction":
                    start_ts = totals.session_of.get((d.charge_point_id, key[2]))
                    given = backend.given.get((d.charge_point_id, start_ts or ""))
                    wrong_tx += d.payload.get("transactionId") != given
        lost = len(totals.answered_keys - set(delivered))
        total_lost += lost
        duplicated = sum(1 for n in delivered.values() if n > 1)
        same_id = sum(1 for k, n in delivered.items() if n > len(unique[k]))
        lines.append(
            f"{'delivered to ' + backend.name:28}"
            + "".join(f"{per_action[a]:>20,}" for a in actions)
        )
        detail.append(
            f"{backend.name}: lost {lost}, duplicated {duplicated} (of them {same_id} under the "
            f"same unique id), wrong transaction id {wrong_tx}"
        )
    lines += [
        "",
        *detail,
        f"sends repeated after a reconnect or timeout: {totals.resends:,}; "
        f"charger connections opened: {totals.connects:,}",
        f"BootNotifications answered by the proxy itself: {totals.local_answers}",
        f"still unanswered in the chargers' queues at the end: {unanswered}",
        f"backend queue depth at the end: {depth}",
        "proxy peak RSS (VmHWM): "
        + ", ".join(f"{mb:.1f} MB" for mb in run_.peaks_mb)
        + (f" (max {max(run_.peaks_mb):.1f} MB)" if run_.peaks_mb else ""),
        f"proxy exits not caused by the benchmark: {len(run_.exited_by_itself)}",
        f"ERROR lines in the proxy's log: {len(errors)}",
        *(f"  {line[:300]}" for line in errors[:10]),
        f"LOST: {total_lost}",
    ]
    return "\n".join(lines), total_lost


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=600.0, help="s of sessions (600)")
    parser.add_argument("--chargers", type=int, default=200, help="chargers (200)")
    parser.add_argument("--backends", type=int, default=3, help="CSMS backends (3)")
    parser.add_argument("--interval", type=float, default=3.0, help="s between MeterValues (3)")
    parser.add_argument("--samples", type=int, default=4, help="MeterValues per session (4)")
    parser.add_argument(
        "--restart-every", type=float, default=30.0, help="s between backend restarts (30)"
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except BenchmarkError as err:
        print(f"soak: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
