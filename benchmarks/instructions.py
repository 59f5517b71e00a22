"""Instructions per relayed call: the proxy against the floor, counted, not timed.

``relay.py`` times the proxy and the floor (``bare_relay.py``) on a shared machine, where the
same code measures 40 % apart from one run to the next. This counts the instructions the relay
process executes per relayed Heartbeat under valgrind's callgrind (user space, every thread:
the store's too), the same figure for the same code whatever else the machine does::

    python benchmarks/instructions.py                     # floor and proxy, 400 calls each
    python benchmarks/instructions.py --before /tmp/old   # and the proxy of another checkout
    python benchmarks/instructions.py --option message_log=false   # and with an option set

Each relay runs under ``valgrind --tool=callgrind`` (about 50 times slower) with counting off;
10 chargers boot and send 20 Heartbeats each through it to one CSMS (warm-up), then counting
is switched on (``callgrind_control``) for ``--calls`` more Heartbeats, and off again. Every
feature of the proxy is at its default. The floor's count is what aiohttp, uvloop and the
interpreter need to relay a call at all; the proxy's count over it is issue 11's CPU ratio
without the noise (instructions are not time: the proxy's extra work is interpreted Python,
which runs at about the floor's instructions per cycle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from _peers import (
    HOST,
    BenchmarkError,
    _free_port,
    _write_config,
    connected_chargers,
    csms_servers,
)
from relay import CSMS_COUNT, HeartbeatCharger, csms_answer

CHARGERS = 10
WARMUP_PER_CHARGER = 20
START_TIMEOUT_S = 300.0  # a Python process starts slowly under valgrind


def _command(
    kind: str, folder: Path, port: int, csms_port: int, options: dict[str, Any]
) -> list[str]:
    where = ["--host", HOST, "--port", str(port)]
    if kind == "floor":
        script = Path(__file__).with_name("bare_relay.py")
        return [sys.executable, str(script), *where, "--upstream", f"ws://{HOST}:{csms_port}"]
    config = _write_config(folder, [csms_port], options)
    data = ["--data-dir", str(folder / "data"), "--log-level", "WARNING"]
    return [sys.executable, "-m", "ocpp_proxy", "--config", str(config), *where, *data]


async def _wait_healthy(session: aiohttp.ClientSession, port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        try:
            async with session.get(f"http://{HOST}:{port}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise BenchmarkError(f"the relay on port {port} did not start")


def _collected(out: Path) -> int:
    """The instructions counted (the file's last ``summary:``/``totals:`` line)."""
    counts = [
        int(line.split()[1])
        for line in out.read_text(errors="replace").splitlines()
        if line.startswith(("summary:", "totals:"))
    ]
    if not counts or not counts[-1]:
        raise BenchmarkError(f"no instruction count in {out}")
    return counts[-1]


async def count(
    kind: str,
    csms_port: int,
    calls: int,
    source: Path | None = None,
    options: dict[str, Any] | None = None,
) -> float:
    """Instructions per relayed Heartbeat of ``kind`` ("floor" or "proxy").

    ``source``: a checkout to import ``ocpp_proxy`` from; ``options``: config overrides.
    """
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-instructions-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        out = folder / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        if source is not None:
            env["PYTHONPATH"] = str(source)
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        process = await asyncio.create_subprocess_exec(
            *valgrind,
            f"--callgrind-out-file={out}",
            *_command(kind, folder, port, csms_port, options or {}),
            cwd=folder,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with aiohttp.ClientSession() as session:
                await _wait_healthy(session, port)
            ids = [f"INSTR-{n:02d}" for n in range(CHARGERS)]
            url = f"ws://{HOST}:{port}/charger"
            async with connected_chargers(url, ids, HeartbeatCharger) as chargers:
                await asyncio.gather(*(charger.boot() for charger in chargers))
                await asyncio.gather(*(c.heartbeats(WARMUP_PER_CHARGER) for c in chargers))
                await _toggle(process.pid, "on")
                await asyncio.gather(*(c.heartbeats(calls // CHARGERS) for c in chargers))
                await _toggle(process.pid, "off")
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 120)
        return _collected(out) / (calls // CHARGERS * CHARGERS)


async def _toggle(pid: int, state: str) -> None:
    """Switch callgrind's counting in process ``pid`` on or off."""
    control = await asyncio.create_subprocess_exec(
        "callgrind_control",
        "-i",
        state,
        str(pid),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await control.wait() != 0:
        raise BenchmarkError(f"callgrind_control -i {state} failed")


async def run(
    csms_port: int, calls: int, before: Path | None, options: dict[str, Any]
) -> dict[str, float]:
    figures = {"floor": await count("floor", csms_port, calls)}
    figures["proxy"] = await count("proxy", csms_port, calls)
    if options:
        figures["proxy, " + _named(options)] = await count(
            "proxy", csms_port, calls, options=options
        )
    if before is not None:
        figures["before"] = await count("proxy", csms_port, calls, before)
    return figures


def _named(options: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {json.dumps(value)}" for key, value in options.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="counted calls (default 400)")
    parser.add_argument(
        "--before", type=Path, metavar="DIR", help="also count the proxy of the checkout in DIR"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="also count the proxy with this config option (repeatable), e.g. message_log=false",
    )
    args = parser.parse_args(argv)
    try:
        options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    except ValueError:
        parser.error("--option takes KEY=JSON, e.g. message_log=false")
    if args.calls < CHARGERS:
        parser.error(f"--calls must be >= {CHARGERS}")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 1
    try:
        with csms_servers(CSMS_COUNT, csms_answer) as csms:
            before = args.before.resolve() if args.before else None
            figures = asyncio.run(run(csms.ports[0], args.calls, before, options))
    except (BenchmarkError, OSError, TimeoutError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    floor = figures["floor"]
    print(f"Instructions per relayed Heartbeat ({args.calls} calls, {CHARGERS} chargers)")
    for name, value in figures.items():
        ratio = "" if name == "floor" else f"   {value / floor:.2f} x the floor's"
        print(f"  {name:<28}{value:>12,.0f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
