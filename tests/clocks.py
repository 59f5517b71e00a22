"""A manual clock that also tells the test when someone waits on it (retries, grace periods)."""

from __future__ import annotations

import asyncio
import itertools
import time

from ocpp_proxy.clock import ManualClock


class SteppedClock(ManualClock):
    """:class:`ManualClock` starting at the real time, whose sleepers a test can wait for."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__(time.time() if start is None else start)
        self._sleepers: dict[int, tuple[float, float]] = {}  # key -> (due, seconds asked)
        self._keys = itertools.count()
        self._slept = asyncio.Event()

    @property
    def now(self) -> float:
        """Wall time (s), as :meth:`time`."""
        return self.time()

    @property
    def sleeping(self) -> list[float]:
        """What each sleeper whose time has not come asked to wait (s)."""
        return [seconds for _, seconds in self._sleepers.values()]

    async def sleep(self, delay: float) -> None:
        key = next(self._keys)
        self._sleepers[key] = (self.monotonic() + delay, delay)
        self._slept.set()
        self._slept = asyncio.Event()
        try:
            await super().sleep(delay)
        finally:
            self._sleepers.pop(key, None)

    def advance(self, seconds: float) -> None:
        """Move on by ``seconds``; sleepers whose time has come stop counting at once."""
        super().advance(seconds)
        due = self.monotonic()
        self._sleepers = {k: v for k, v in self._sleepers.items() if v[0] > due}

    async def wait_for_sleeper(self, timeout: float = 5.0) -> float:
        """Wait until someone sleeps on this clock; return the longest wait asked for (s)."""
        async with asyncio.timeout(timeout):
            while not self._sleepers:
                slept = self._slept
                await slept.wait()
        return max(self.sleeping)
