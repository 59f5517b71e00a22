"""A feed of "something that /status shows has changed", for whoever wants to wait on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ChangeFeed:
    """Wakes every waiter when the relay's visible state changes (links, chargers, connectors)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0

    def notify(self) -> None:
        """Record a change and wake the waiters."""
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout_s: float) -> T:
        """Return ``predicate()`` once it is truthy, re-checked after every change.

        Raises:
            TimeoutError: it did not become truthy within ``timeout_s`` seconds.
        """
        async with asyncio.timeout(timeout_s):
            while not (value := predicate()):
                await self._event.wait()
            return value
