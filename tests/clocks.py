"""A manual clock that also tells the test when someone waits on it (retries, grace periods)."""

from __future__ import annotations

import time

from ocpp_proxy.clock import ManualClock


class SteppedClock(ManualClock):
    """:class:`ManualClock` starting at the real time, whose sleepers a test can wait for."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__(time.time() if start is None else start)

    @property
    def now(self) -> float:
        """Wall time (s), as :meth:`time`."""
        return self.time()

    async def wait_for_sleeper(self, timeout: float = 5.0) -> float:
        """Wait until someone sleeps on this clock; return the longest wait asked for (s)."""
        return max(await self.wait_for_sleepers(1, timeout_s=timeout))
