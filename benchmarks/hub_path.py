"""The proxy's own work per relayed call, without sockets: the part issue 11 is about.

``relay.py`` measures a relayed call end to end, where the sockets, aiohttp and the other
processes take most of the time and the machine's load moves every figure. This runs the
relay itself (a real :class:`~ocpp_proxy.relay.hub.ChargerHub` with a real store in a
temporary directory) in one process, with stand-in sockets that take a frame at once: a
charger Heartbeat CALL in, to one backend, its CALLRESULT back, to the charger. It prints the
CPU time (all threads, the store's included: the message log is written and committed before
the clock stops) per call, with every feature at its default and then with each of the
message log and the schema check off::

    python benchmarks/hub_path.py               # 20,000 calls per case, three rounds
    python benchmarks/hub_path.py --calls 5000 --rounds 1
    python benchmarks/hub_path.py --profile out.prof   # cProfile of the default case

The figures are the median of the rounds. CPU time, not wall time: a loaded machine changes
them less than it changes ``relay.py``'s, but compare runs on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ocpp_proxy.cli import new_event_loop
from ocpp_proxy.config import parse_config
from ocpp_proxy.protocol.versions import OcppVersion
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.store import Store

ANSWER = '[3,"{}",{{"currentTime":"2026-12-01T00:00:00.000Z"}}]'

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "message_log: false": {"message_log": False},
}


class _Socket:
    """A WebSocket that takes every frame at once and keeps the last one."""

    def __init__(self) -> None:
        self.last = ""
        self.count = 0

    async def send_str(self, data: str) -> None:
        self.last = data
        self.count += 1

    async def close(self, **_: Any) -> bool:
        return True


async def _run_case(options: dict[str, Any], calls: int, profile: str | None) -> float:
    """CPU µs per relayed Heartbeat with ``options``."""
    config = parse_config(
        {"inbound_backends": [{"id": "b", "token": "b-secret-token-0123"}], **options}
    )
    with tempfile.TemporaryDirectory(prefix="ocpp-proxy-hub-path-") as tmp:
        async with await Store.open(Path(tmp) / "db.sqlite3") as store:
            hub = ChargerHub("CP_1", config, store)
            charger, backend = _Socket(), _Socket()
            connection = await hub.attach_charger(charger, OcppVersion.V16, "bench")
            link = hub.links["b"]
            await hub.attach_backend(link, backend)
            calls_text = [f'[2,"c{n}","Heartbeat",{{}}]' for n in range(calls)]
            answers = [ANSWER.format(f"c{n}") for n in range(calls)]
            warm = min(1000, calls)
            for n in range(warm):  # warm-up: caches, the store's first batch
                await hub.on_charger_text(connection, calls_text[n])
                await hub.on_backend_text(link, answers[n])
            await store.flush()
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            started = time.process_time()
            for n in range(warm, calls):
                await hub.on_charger_text(connection, calls_text[n])
                await hub.on_backend_text(link, answers[n])
                if n % 250 == 0:  # a full batch of the message log (4 frames a call)
                    await store.flush()  # written as the loop would, none dropped
            await store.flush()
            await hub.journal.settled()
            spent = time.process_time() - started
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile)
            if charger.count < calls or json.loads(charger.last)[1] != f"c{calls - 1}":
                raise RuntimeError("the charger did not get every answer")
            if store.frames_dropped:
                raise RuntimeError(f"the message log dropped {store.frames_dropped} frames")
            await hub.close()
    return spent / (calls - warm) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", metavar="PATH", help="cProfile the default case to PATH")
    parser.add_argument("--case", choices=sorted(CASES), help="only this case")
    args = parser.parse_args(argv)
    if args.calls < 1001 or args.rounds < 1:
        parser.error("--calls must be > 1000 (the warm-up), --rounds >= 1")
    cases = {args.case: CASES[args.case]} if args.case else CASES
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, options in cases.items():
            profile = args.profile if name == "defaults" else None
            with asyncio.Runner(loop_factory=new_event_loop) as runner:  # the proxy's own loop
                figures[name].append(runner.run(_run_case(options, args.calls, profile)))
    print(f"CPU per relayed Heartbeat, no sockets ({args.calls} calls, median of {args.rounds})")
    for name, values in figures.items():
        spread = f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else ""
        print(f"  {name:<22}{statistics.median(values):8.1f} us   {spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
