"""Time as the proxy reads it: wall time, a monotonic clock and timers, all injectable.

The relay takes its deadlines (answers from backends, backoff before a resend) and its
retention from a :class:`Clock`, never from :mod:`time` or the event loop directly, so that
tests drive them with a :class:`ManualClock` instead of waiting. Times shown to people are
UTC, ISO 8601 (:func:`iso_utc`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


def iso_utc(timestamp: float | None) -> str | None:
    """Return a Unix time (s) as ``YYYY-MM-DDTHH:MM:SSZ``, or None for None."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class Timer(Protocol):
    """A scheduled callback that can still be called off."""

    def cancel(self) -> None:
        """Do not run the callback (nothing happens if it ran already)."""
        ...


class Clock(Protocol):
    """Where the relay reads time and sets timers."""

    def time(self) -> float:
        """Wall time: seconds since the Unix epoch (s)."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes back, for deadlines (s)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once :meth:`monotonic` reaches ``when`` (s)."""
        ...

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds of this clock."""
        ...


class SystemClock:
    """The real clock: the running event loop's monotonic time and its timers."""

    def time(self) -> float:
        """Wall time (s since the epoch)."""
        return time.time()

    def monotonic(self) -> float:
        """The event loop's clock (s)."""
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Schedule ``callback`` on the running loop at loop time ``when`` (s)."""
        return asyncio.get_running_loop().call_at(when, callback)

    async def sleep(self, delay: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(delay)


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told (:meth:`advance`): for tests and benchmarks.

    Args:
        start: the wall time it shows at first (s since the epoch).
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._wall_offset = start
        self._now = 0.0
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        """Wall time (s): the start plus how far the clock was advanced."""
        return self._wall_offset + self._now

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` when :meth:`advance` passes ``when`` (s)."""
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        """Wait until the clock was advanced by ``delay`` s."""
        done = asyncio.get_running_loop().create_future()
        self.call_at(self._now + delay, lambda: done.done() or done.set_result(None))
        await done

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on, running due callbacks in time order, synchronously."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            if not timer.cancelled:
                timer.callback()
        self._now = target
