"""Background tasks with an owner: started by one object, awaited when it closes.

Whoever starts background work (a hub, a journal, a peer's sender) owns a :class:`TaskSet`
and closes it when it closes itself, so that no task outlives what it works on (the store,
above all), and none fails silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

_LOGGER = logging.getLogger(__name__)


class TaskSet:
    """The background tasks of one owner.

    Args:
        owner: a name for log lines (a charge point id, a backend id).
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        # The event loop keeps only weak references to tasks: hold them until they are done.
        self._running: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background; an exception it raises is logged.

        After :meth:`close` the coroutine is closed without running (the owner is gone).
        """
        task = asyncio.get_running_loop().create_task(coroutine)
        if self._closed:
            task.cancel()
        self._running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error(
                "%s: background task %s failed", self.owner, task.get_coro(), exc_info=error
            )

    async def close(self, grace_s: float = 0.0) -> None:
        """Let running tasks finish for up to ``grace_s`` s, cancel the rest, await them all."""
        self._closed = True
        if not self._running:
            return
        if grace_s > 0:
            await asyncio.wait(set(self._running), timeout=grace_s)
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
