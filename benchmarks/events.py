"""Events benchmark: what the webhook events cost the relay, in microseconds.

Run by hand from the repository root::

    python benchmarks/events.py               # 200 hubs, 2000 rounds
    python benchmarks/events.py --hubs 2000

What is measured (in this process, no sockets; the relay never waits for a webhook):

1. ``EventBus.publish`` with one subscriber (the webhook dispatcher's queue): the only work an
   arbiter refusal adds on the frame path.
2. One pass of the relay watcher over ``--hubs`` charge points where nothing changed: the work
   each change notice of the relay (a StatusNotification, a MeterValues of a running session)
   causes after the frame went on, in the watcher's own task. Hubs are real
   :class:`~ocpp_proxy.relay.hub.ChargerHub` objects of a :class:`HubRegistry` on a temporary
   SQLite store, without chargers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocpp_proxy.config import parse_config
from ocpp_proxy.event_bus import LIMIT_CHANGED, EventBus
from ocpp_proxy.notify.watcher import RelayWatcher
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.store import Store


def per_call_us(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):.2f} us, max {max(samples):.2f} us"


async def main(hubs: int, rounds: int) -> None:
    bus = EventBus()
    queue = bus.subscribe(max_queue=rounds + 1)
    publish = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        bus.publish(LIMIT_CHANGED, None, max_current_a=16.0)
        publish.append((time.perf_counter_ns() - start) / 1000)
    assert queue.qsize() == rounds
    print(f"EventBus.publish, 1 subscriber: {per_call_us(publish)}")

    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(Path(folder) / "events.sqlite3")
        config = parse_config({"data_dir": folder})
        registry = HubRegistry(config, store)
        for index in range(hubs):
            await registry.open(f"CP_{index}")
        watcher = RelayWatcher(registry, bus, config)
        watcher._observe(publish=False)  # the baseline, as start() takes it
        passes = []
        for _ in range(max(1, rounds // 10)):
            start = time.perf_counter_ns()
            watcher._observe(publish=True)
            passes.append((time.perf_counter_ns() - start) / 1000)
        print(f"watcher pass over {hubs} hubs, nothing changed: {per_call_us(passes)}")
        await registry.close()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hubs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.hubs, arguments.rounds))
