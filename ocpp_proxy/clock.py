"""Time as the proxy shows it: UTC, ISO 8601."""

from __future__ import annotations

import asyncio
import time


def iso_utc(timestamp: float | None) -> str | None:
    """Return a Unix time (s) as ``YYYY-MM-DDTHH:MM:SSZ``, or None for None."""
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class Clock:
    """Wall time and waiting, injectable: tests pass a clock they advance by hand."""

    def time(self) -> float:
        """Now, as Unix time (s)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (s)."""
        await asyncio.sleep(max(0.0, seconds))
