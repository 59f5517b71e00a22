"""Time as the proxy reads and shows it: an injectable clock, and UTC in ISO 8601.

Code that waits or measures time takes a :class:`Clock` (default :data:`SYSTEM_CLOCK`): the
relay's deadlines (answers from backends, backoff before a resend) and retention, the upstream
links' reconnect backoff. Tests drive it with a :class:`ManualClock` instead of waiting in real
time.
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
    """Where the time comes from: wall time, monotonic time, timers and sleeping, in seconds."""

    def time(self) -> float:
        """Unix time (s)."""
        ...

    def monotonic(self) -> float:
        """A time that never goes back (s), for intervals and deadlines."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once :meth:`monotonic` reaches ``when`` (s)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` (s) of this clock's time."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, the running loop's timers."""

    def time(self) -> float:
        """Unix time (s)."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic time (s)."""
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Schedule ``callback`` on the running loop for monotonic time ``when`` (s)."""
        # The loop keeps its own clock (uvloop's differs from time.monotonic): go by the delay.
        return asyncio.get_running_loop().call_later(when - time.monotonic(), callback)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (s) of real time."""
        await asyncio.sleep(seconds)


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
    """A clock that moves only when :meth:`advance` moves it (for tests).

    ``sleep`` waits until the clock has been advanced past its end; :meth:`wait_for_sleepers`
    waits until some task sleeps on it, so a test knows a wait has begun and for how long.
    Timers (:meth:`call_at`) run when the clock passes their time.

    Args:
        start: the Unix time (s) the clock starts at; monotonic time starts at 0.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._start = start
        self._now = 0.0
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, float, asyncio.Future[None]]] = []
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._changed = asyncio.Event()

    def time(self) -> float:
        """Unix time (s): the start plus how far the clock was advanced."""
        return self._start + self._now

    def monotonic(self) -> float:
        """Seconds the clock was advanced since it was made."""
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` when the clock is advanced to ``when`` (s) or past it."""
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        return timer

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
        """Move the clock ``seconds`` (s) on, waking every sleep and timer due by then, in order.

        Each woken sleep runs before the next wakes.
        """
        end = self._now + seconds
        while (due := self._next_due(end)) is not None:
            if self._fire(due):
                await asyncio.sleep(0)  # let the woken task run before the next wakes
        self._now = end

    def advance_now(self, seconds: float) -> None:
        """Move the clock ``seconds`` (s) on within this loop turn.

        Timers due run at once; sleeps due are woken, and run once the caller yields.
        """
        end = self._now + seconds
        while (due := self._next_due(end)) is not None:
            self._fire(due)
        self._now = end

    def _next_due(self, end: float) -> float | None:
        times = [heap[0][0] for heap in (self._sleepers, self._timers) if heap]
        due = min(times, default=None)
        return due if due is not None and due <= end else None

    def _fire(self, due: float) -> bool:
        """Run the earliest timer or wake the earliest sleep at ``due``; True for a sleep."""
        self._now = max(self._now, due)
        if self._timers and self._timers[0][0] == due:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
            return False
        _, _, _, future = heapq.heappop(self._sleepers)
        if not future.done():
            future.set_result(None)
        return True
