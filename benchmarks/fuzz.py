"""Fuzz benchmark: many arbitrary and near-valid frames through a proxy subprocess.

Run by hand from the repository root::

    python benchmarks/fuzz.py                  # 100,000 cases (half from a charger, half
                                               # from a backend)
    python benchmarks/fuzz.py --cases 20000 --seed 3

The cases come from the generators of ``tests/test_fuzz.py`` (``tests/fuzz_frames.py``), here
driven by a seeded ``random.Random``: arbitrary text, and valid OCPP-J 1.6 frames with mutated
message type ids, unique ids of odd types and lengths, unknown actions, payload values of the
wrong type, deep nesting, huge numbers, unicode, truncation; CALLs whose JSON repeats a key
(at the top of the payload or deeper: a backend's must get a CALLERROR), and DataTransfers of
5-60 kB (over the message log's 4 KiB cut).

* **Proxy**: ``python -m ocpp_proxy`` as a subprocess (``_peers.running_proxy``), log level
  WARNING, ``max_frame_bytes`` 65536, ``message_log_max_mb`` 1, one CSMS service and one
  inbound backend ``fleet``; its stdout and stderr go to a log file, whose ERROR lines are
  counted. At the end its message log is read: the frame text kept must be within 1 MiB and
  no row longer than the 4 KiB cut (plus its note).
* **CSMS**: one minimal raw ``websockets`` server in a child process (``_peers``), answering
  every CALL at once (BootNotification ``Accepted``, everything else ``{}``).
* **Charger side**: a raw ``websockets`` charger ``CP_FUZZ`` sends each case, then a probe
  Heartbeat, and reads until the probe's answer (10 s at most): so each case is done before the
  next. **Backend side**, at the same time: the inbound backend, for charger ``CP_TARGET`` (a
  raw charger here that answers every command with ``{}``), sends each case, then a probe
  ``GetConfiguration``.
* Every frame the proxy sends to either is checked to be well-formed OCPP-J (strict JSON, the
  shape of its message type).

It prints, per side and in all: cases sent, answers received to the cases (probes not
counted), of them CALLERRORs, malformed answers, probes not answered in time, connection drops
(the side reconnects and goes on), and then proxy crashes (the process died: must be 0) and
ERROR lines in the proxy's log. Exit status 1 if the proxy crashed, an answer was malformed,
an ERROR was logged, a backend's repeated-key CALL got anything but a CALLERROR, or the message
log broke its bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _peers import (
    BOOT_ANSWER,
    HOST,
    SUBPROTOCOL,
    BenchmarkError,
    Proxy,
    csms_servers,
    running_proxy,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fuzz_frames import SENTINEL_PREFIX, fuzz_frame, is_call, repeats_a_key, well_formed

TOKEN = "fuzz-benchmark-token"
PROBE_TIMEOUT_S = 10.0
PROGRESS_EVERY = 10_000
MAX_FRAME_BYTES = 65536
MESSAGE_LOG_MAX_MB = 1
#: The longest row the message log may hold: the 4 KiB cut and its note.
MAX_LOGGED_ROW = 4096 + 64


def csms_answer(action: str, payload: Any) -> Any:
    """What the CSMS answers (module level: handed to the CSMS child process)."""
    return BOOT_ANSWER if action == "BootNotification" else {}


@dataclass
class Side:
    """What one side (charger or backend) sent and saw."""

    name: str
    cases: int = 0
    answers: int = 0
    call_errors: int = 0
    malformed: list[str] = field(default_factory=list)
    probes_lost: int = 0
    #: Well-formed CALLs (within the size limit) that got no answer.
    unanswered: int = 0
    drops: int = 0
    #: CALLs whose JSON repeats a key, and of them those answered other than by a CALLERROR.
    repeated_keys: int = 0
    repeated_keys_passed: int = 0


async def _target(url: str, stop: asyncio.Event) -> None:
    """The charger the backend's commands reach: answers every CALL with ``{}``."""
    while not stop.is_set():
        with contextlib.suppress(ConnectionClosed, OSError, InvalidHandshake):
            async with connect(url, subprotocols=[SUBPROTOCOL], compression=None) as ws:  # type: ignore[list-item]
                async for text in ws:
                    frame = json.loads(text)
                    if frame[0] == 2:
                        await ws.send(json.dumps([3, frame[1], {}]))
        await asyncio.sleep(0.2)


async def _open(url: str) -> ClientConnection:
    return await connect(
        url,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        ping_interval=None,
        open_timeout=10,
        close_timeout=2,
        max_size=None,
    )


async def _drive(
    side: Side, url: str, probe_action: str, direction: str, cases: int, seed: int, proxy: Proxy
) -> None:
    rng = random.Random(seed)
    ws = await _open(url)
    try:
        for serial in range(cases):
            if proxy.process.returncode is not None:
                return
            text = fuzz_frame(rng, serial, direction)
            sentinel = f"{SENTINEL_PREFIX}{serial}"
            side.cases += 1
            answers = 0
            repeated = repeats_a_key(text)
            side.repeated_keys += repeated
            try:
                await ws.send(text)
                await ws.send(f'[2,"{sentinel}","{probe_action}",{{}}]')
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    while True:
                        reply = str(await ws.recv())
                        try:
                            frame = well_formed(reply)
                        except AssertionError as err:
                            side.malformed.append(f"{text[:120]!r} -> {err}")
                            continue
                        if frame[1] == sentinel:
                            break
                        side.answers += 1
                        answers += 1
                        side.call_errors += frame[0] == 4
                        side.repeated_keys_passed += repeated and frame[0] != 4
                if answers == 0 and is_call(text, MAX_FRAME_BYTES):
                    side.unanswered += 1
            except TimeoutError:
                side.probes_lost += 1
            except ConnectionClosed:
                side.drops += 1
                with contextlib.suppress(Exception):
                    await ws.close()
                if proxy.process.returncode is not None:
                    return
                ws = await _open(url)
            if serial and serial % PROGRESS_EVERY == 0:
                print(f"  {side.name}: {serial:,} cases", file=sys.stderr, flush=True)
    finally:
        await ws.close()


def error_lines(log: Path) -> list[str]:
    """The ERROR (and CRITICAL) records in the proxy's log, first line of each."""
    text = log.read_text(errors="replace")
    return [line for line in text.splitlines() if re.match(r"^\S+ \S+ (ERROR|CRITICAL) ", line)]


def message_log_size(data_dir: Path) -> tuple[int, int, int]:
    """Rows, characters of frame text in all, and the longest row of the proxy's message log."""
    with contextlib.closing(sqlite3.connect(data_dir / "ocpp-proxy.sqlite3")) as db:
        # Frames are kept in blocks (a JSON array of records, the frame's text 7th).
        row = db.execute(
            "SELECT count(*), coalesce(sum(length(json_extract(record.value, '$[6]'))), 0), "
            "coalesce(max(length(json_extract(record.value, '$[6]'))), 0) "
            "FROM message_log_blocks, json_each(message_log_blocks.body) AS record"
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _report(sides: list[Side], crashed: bool, errors: list[str], seconds: float) -> str:
    rows = [
        ("cases sent", "cases"),
        ("answers to the cases", "answers"),
        ("  of them CALLERRORs", "call_errors"),
        ("well-formed CALLs unanswered", "unanswered"),
        ("probes not answered in 10 s", "probes_lost"),
        ("connection drops", "drops"),
        ("CALLs repeating a key", "repeated_keys"),
        ("  of them not CALLERRORed", "repeated_keys_passed"),
    ]
    width = 30
    lines = [f"{'':{width}} " + " ".join(f"{s.name:>10}" for s in sides) + f" {'total':>10}"]
    for label, attr in rows:
        values = [getattr(s, attr) for s in sides]
        lines.append(
            f"{label:{width}} " + " ".join(f"{v:>10,}" for v in values) + f" {sum(values):>10,}"
        )
    malformed = [len(s.malformed) for s in sides]
    lines.append(
        f"{'malformed answers':{width}} "
        + " ".join(f"{v:>10,}" for v in malformed)
        + f" {sum(malformed):>10,}"
    )
    lines.append(f"proxy crashes (process died): {int(crashed)}")
    lines.append(f"ERROR lines in the proxy's log: {len(errors)}")
    total = sum(s.cases for s in sides)
    lines.append(f"time: {seconds:.1f} s ({total / seconds:,.0f} cases/s)")
    for side in sides:
        lines.extend(f"  malformed ({side.name}): {m}" for m in side.malformed[:5])
    lines.extend(f"  {line[:300]}" for line in errors[:10])
    return "\n".join(lines)


async def run(cases: int, seed: int, keep_log: str | None = None) -> int:
    options = {
        "max_frame_bytes": MAX_FRAME_BYTES,
        "message_log_max_mb": MESSAGE_LOG_MAX_MB,
        "response_timeout": 2,
        "inbound_backends": [{"id": "fleet", "token": TOKEN}],
    }
    with csms_servers(1, csms_answer) as csms:
        async with (
            aiohttp.ClientSession() as session,
            running_proxy(session, csms.ports, None, options) as proxy,
        ):
            base = f"ws://{HOST}:{proxy.http_url.rsplit(':', 1)[1]}"
            stop = asyncio.Event()
            target = asyncio.create_task(_target(f"{base}/charger/CP_TARGET", stop))
            charger, backend = Side("charger"), Side("backend")
            started = time.perf_counter()
            try:
                await asyncio.sleep(0.5)  # the target and the upstream link connect
                await asyncio.gather(
                    _drive(
                        charger,
                        f"{base}/charger/CP_FUZZ",
                        "Heartbeat",
                        "charger",
                        (cases + 1) // 2,
                        seed,
                        proxy,
                    ),
                    _drive(
                        backend,
                        f"{base}/backend?id=fleet&charge_point_id=CP_TARGET&token={TOKEN}",
                        "GetConfiguration",
                        "backend",
                        cases // 2,
                        seed + 1,
                        proxy,
                    ),
                )
            finally:
                seconds = time.perf_counter() - started
                stop.set()
                target.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await target
            await asyncio.sleep(1)  # the log written behind
            crashed = proxy.process.returncode is not None
            errors = error_lines(proxy.log)
            rows, kept, longest = await asyncio.to_thread(message_log_size, proxy.data_dir)
            if keep_log:
                shutil.copyfile(proxy.log, keep_log)
            print(_report([charger, backend], crashed, errors, seconds))
            print(
                f"message log: {rows:,} rows, {kept:,} characters of frames "
                f"(bound {MESSAGE_LOG_MAX_MB * 2**20:,}), longest row {longest:,}"
            )
            bad = crashed or errors or charger.malformed or backend.malformed
            bad = bad or charger.unanswered or backend.unanswered
            bad = bad or backend.repeated_keys_passed
            bad = bad or kept > MESSAGE_LOG_MAX_MB * 2**20 or longest > MAX_LOGGED_ROW
            return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--log", help="copy the proxy's log (with tracebacks) to this file")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args.cases, args.seed, args.log))
    except BenchmarkError as err:
        print(f"fuzz: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
