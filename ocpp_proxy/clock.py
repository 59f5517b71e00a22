"""Time as the proxy reads and shows it: an injectable clock, and UTC in ISO 8601.

Code that waits or measures time takes a :class:`Clock` (default :data:`SYSTEM_CLOCK`), so
that tests drive it with a :class:`ManualClock` instead of waiting in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


def iso_utc(timestamp: float | None) -> str | None:
    """Return a Unix time (s) as ``YYYY-MM-DDTHH:MM:SSZ``, or None for None."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class Clock(Protocol):
    """Where the time comes from: wall time, monotonic time and sleeping, all in seconds."""

    def time(self) -> float:
        """Unix time (s)."""
        ...

    def monotonic(self) -> float:
        """A time that never goes back (s), for intervals."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` (s) of this clock's time."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, :func:`asyncio.sleep`."""

    def time(self) -> float:
        """Unix time (s)."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic time (s)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (s) of real time."""
        await asyncio.sleep(seconds)


#: The clock the proxy runs on.
SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when :meth:`advance` moves it (for tests).

    ``sleep`` waits until the clock has been advanced past its end; :meth:`wait_for_sleepers`
    waits until some task sleeps on it, so a test knows a wait has begun and for how long.

    Args:
        start: the Unix time (s) the clock starts at; monotonic time starts at 0.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._start = start
        self._now = 0.0
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    def time(self) -> float:
        """Unix time (s): the start plus how far the clock was advanced."""
        return self._start + self._now

    def monotonic(self) -> float:
        """Seconds the clock was advanced since it was made."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Return once the clock was advanced by ``seconds`` (s) from now."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._now + max(seconds, 0.0), next(self._order), seconds, future)
        heapq.heappush(self._sleepers, entry)
        self._changed.set()
        try:
            await future
        finally:
            if entry in self._sleepers:  # cancelled before its time
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    @property
    def sleeping(self) -> list[float]:
        """The durations (s) asked for by the sleeps still waiting, in the order they end."""
        return [seconds for _, _, seconds, _ in sorted(self._sleepers)]

    async def wait_for_sleepers(self, count: int = 1, timeout_s: float = 5.0) -> list[float]:
        """Wait (up to ``timeout_s`` of real time) until ``count`` sleeps wait; their durations.

        Raises:
            TimeoutError: fewer sleeps waited in time.
        """
        async with asyncio.timeout(timeout_s):
            while len(self._sleepers) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.sleeping

    async def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` (s) on, waking every sleep that ends by then, in order."""
        end = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= end:
            at, _, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, at)
            if not future.done():
                future.set_result(None)
            await asyncio.sleep(0)  # let the woken task run before the next wakes
        self._now = end
