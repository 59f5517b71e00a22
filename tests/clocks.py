"""A clock the test moves by hand, for retries and grace periods."""

from __future__ import annotations

import asyncio
import itertools
import time

from ocpp_proxy.clock import Clock


class ManualClock(Clock):
    """Wall time that stands still until :meth:`advance`; sleepers wake when it passes."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self._pending: dict[int, tuple[float, float]] = {}  # key -> (target, seconds asked)
        self._keys = itertools.count()
        self._moved = asyncio.Event()
        self._slept = asyncio.Event()

    @property
    def sleeping(self) -> list[float]:
        """What each sleeper whose time has not come asked to wait (s)."""
        return [seconds for _, seconds in self._pending.values()]

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        key = next(self._keys)
        target = self.now + max(0.0, seconds)
        self._pending[key] = (target, seconds)
        self._slept.set()
        self._slept = asyncio.Event()
        try:
            while self.now < target:
                moved = self._moved
                await moved.wait()
        finally:
            self._pending.pop(key, None)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds``; sleepers whose time has come stop counting at once."""
        self.now += seconds
        self._pending = {k: v for k, v in self._pending.items() if v[0] > self.now}
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait_for_sleeper(self, timeout: float = 5.0) -> float:
        """Wait until someone sleeps on this clock; return the longest wait asked for (s)."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                slept = self._slept
                await slept.wait()
        return max(self.sleeping)
