"""The manual clock, started at the real time, with a wait for a sleep of a given length."""

from __future__ import annotations

import time

from ocpp_proxy.clock import ManualClock


class SteppedClock(ManualClock):
    """:class:`ManualClock` starting now (signatures carry real-looking timestamps)."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__(time.time() if start is None else start)

    @property
    def now(self) -> float:
        """Wall time (s), as :meth:`time`."""
        return self.time()

    async def wait_for_sleeper(self, seconds: float | None = None, timeout_s: float = 5.0) -> float:
        """Wait until a sleep of ``seconds`` (any, if None) waits; return its length (s).

        Other tasks (the upstream links' backoff) may sleep on the same clock.
        """
        while True:
            sleeping = self.sleeping
            if seconds is None and sleeping:
                return max(sleeping)
            if seconds is not None and seconds in sleeping:
                return seconds
            await self.wait_for_sleepers(len(sleeping) + 1, timeout_s)
