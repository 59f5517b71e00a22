"""Time as the proxy reads it: wall time, a monotonic clock, timers and sleeps, all injectable.

The relay takes its deadlines (answers from backends, backoff before a resend) and its
retention, and the clients their reconnect waits, from a :class:`Clock`, never from
:mod:`time` or the event loop directly, so that tests drive them with a :class:`ManualClock`
instead of waiting. Times shown to people are UTC, ISO 8601 (:func:`iso_utc`).
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
    """Where the proxy reads time, sets timers and sleeps; every figure in seconds."""

    def time(self) -> float:
        """Wall time: seconds since the Unix epoch (s)."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes back, for deadlines and intervals (s)."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once :meth:`monotonic` reaches ``when`` (s)."""
        ...

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds of this clock."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, the running loop's timers.

    ``time()`` is wall time (s since the epoch), ``monotonic()`` :func:`time.monotonic` (s):
    the functions themselves, so that the relay's dozen readings per frame cost no Python call.
    """

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)  # (in this class body, `time` is this from here on)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Schedule ``callback`` on the running loop for monotonic time ``when`` (s)."""
        delay = max(0.0, when - time.monotonic())
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, delay: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(delay)


#: The clock the proxy runs on.
SYSTEM_CLOCK: Clock = SystemClock()


class _ManualTimer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told (:meth:`advance`): for tests and benchmarks.

    Timers and sleeps run in time order as :meth:`advance` passes them. :meth:`wait_for_sleepers`
    waits (in real time, bounded) until some task sleeps on the clock, so a test knows a wait
    has begun and for how long.

    Args:
        start: the wall time it shows at first (s since the epoch); monotonic time starts at 0.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._wall_offset = start
        self._now = 0.0
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()
        self._sleeps: dict[int, tuple[float, float]] = {}  # key -> (due, seconds asked)
        self._slept = asyncio.Event()

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
        key = next(self._order)
        self._sleeps[key] = (self._now + max(delay, 0.0), delay)
        self._slept.set()
        done = asyncio.get_running_loop().create_future()
        timer = self.call_at(
            self._now + max(delay, 0.0), lambda: done.done() or done.set_result(None)
        )
        try:
            await done
        finally:
            timer.cancel()
            self._sleeps.pop(key, None)

    @property
    def sleeping(self) -> list[float]:
        """The durations (s) asked for by the sleeps still waiting, in the order they end."""
        return [seconds for _, seconds in sorted(self._sleeps.values())]

    async def wait_for_sleepers(self, count: int = 1, timeout_s: float = 5.0) -> list[float]:
        """Wait (up to ``timeout_s`` of real time) until ``count`` sleeps wait; their durations.

        Raises:
            TimeoutError: fewer sleeps waited in time.
        """
        async with asyncio.timeout(timeout_s):
            while len(self._sleeps) < count:
                self._slept.clear()
                await self._slept.wait()
        return self.sleeping

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` on, running due timers in time order, synchronously.

        Sleeps that end by then are woken (they stop counting in :attr:`sleeping` at once);
        their tasks run after the caller next yields, and read the clock as it is then.
        """
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            self._fire_next()
        self._now = target
        self._sleeps = {k: v for k, v in self._sleeps.items() if v[0] > target}

    async def step(self, seconds: float) -> None:
        """Move the clock ``seconds`` on one due timer at a time, letting woken tasks run.

        Unlike :meth:`advance`, a task woken from :meth:`sleep` runs (and reads the clock)
        at its own wake-up time, before the next timer fires.
        """
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            self._fire_next()
            self._sleeps = {k: v for k, v in self._sleeps.items() if v[0] > self._now}
            for _ in range(3):  # the woken task, then what it awaits at once
                await asyncio.sleep(0)
        self._now = target
        self._sleeps = {k: v for k, v in self._sleeps.items() if v[0] > target}

    def _fire_next(self) -> None:
        when, _, timer = heapq.heappop(self._timers)
        self._now = max(self._now, when)
        if not timer.cancelled:
            timer.callback()
