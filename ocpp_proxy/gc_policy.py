"""When Python's cyclic garbage collector may stop the relay, and for how long.

A full collection (generation 2) walks every object the interpreter tracks, and the event loop
waits meanwhile. With 2,000 chargers connected that is about 700,000 objects and 300-600 ms on
the project's VM, every 20-30 s in steady state: the slowest MeterValues answers of
``benchmarks/fleet.py`` were exactly those stalls (docs/benchmarks.md). A home's proxy has
fewer objects, on a slower CPU.

Objects that survived a full collection were reachable then, and most stay so (the imported
libraries, the hubs, the sockets). :class:`GcPolicy` moves them out of the collector's sight
after each full collection (:func:`gc.freeze`), so that the next one walks only what was
promoted since. Garbage cycles among frozen objects are kept until the policy lets the
collector see everything again (:func:`gc.unfreeze`), once per :data:`FULL_SWEEP_INTERVAL_S`:
memory held that way is bounded by what becomes cyclic garbage in that time, and paid for
with one long collection per interval instead of one every half minute. Freezing does not keep
objects alive: reference counting frees them as before.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

#: How often every object is offered to the collector again (s).
FULL_SWEEP_INTERVAL_S = 3600.0


class GcPolicy:
    """Freezes what survives each full collection; unfreezes everything once an interval.

    Args:
        monotonic: the clock the interval is measured on (s); :func:`time.monotonic` if None.
        full_sweep_interval_s: how often frozen objects are offered to the collector again (s).
    """

    def __init__(
        self,
        monotonic: Callable[[], float] | None = None,
        full_sweep_interval_s: float = FULL_SWEEP_INTERVAL_S,
    ) -> None:
        self._monotonic = monotonic or time.monotonic
        self._interval_s = full_sweep_interval_s
        self._last_sweep = 0.0
        self._installed = False

    def install(self) -> None:
        """Freeze what is alive now (startup's objects) and follow every full collection."""
        if self._installed:
            return
        gc.collect()
        gc.freeze()
        self._last_sweep = self._monotonic()
        gc.callbacks.append(self._after_collection)
        self._installed = True

    def uninstall(self) -> None:
        """Stop following collections and give every frozen object back to the collector."""
        if not self._installed:
            return
        gc.callbacks.remove(self._after_collection)
        gc.unfreeze()
        self._installed = False

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # Called at the start and the stop of every collection, in whichever thread ran it.
        if phase != "stop" or info["generation"] != 2:
            return
        now = self._monotonic()
        if now - self._last_sweep >= self._interval_s:
            # Everything is seen by the next full collection, which frees the cycles kept.
            self._last_sweep = now
            gc.unfreeze()
        else:
            gc.freeze()
