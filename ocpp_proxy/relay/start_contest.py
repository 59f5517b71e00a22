"""Remote starts that race for one connector: gathered briefly, then one wins.

Two backends that start a session on the same connector at the same moment cannot both have
it. Their starts are gathered for a short window (``start_race_window``) and the winner is the
first in the proxy's preference order (``preferred_provider``, then config order); the others
are refused. Without a race a start waits that window and goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock


class StartContest:
    """Decides the winner among remote starts for one connector within a window.

    Args:
        window_s: how long the first start waits for competitors (s).
        rank: a backend's place in the preference order (lower wins).
        clock: the window is slept on it.
    """

    def __init__(
        self, window_s: float, rank: Callable[[str], int], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._window_s = window_s
        self._clock = clock
        self._rank = rank
        self._rounds: dict[int | None, dict[str, asyncio.Future[str]]] = {}

    async def enter(self, connector: int | None, backend_id: str) -> str:
        """Join the round for ``connector``; return the winning backend's id."""
        entrants = self._rounds.get(connector)
        if entrants is not None:
            future = entrants.setdefault(backend_id, asyncio.get_running_loop().create_future())
            return await future
        future = asyncio.get_running_loop().create_future()
        entrants = self._rounds[connector] = {backend_id: future}
        try:
            await self._clock.sleep(self._window_s)  # the window itself: competitors join meanwhile
        finally:
            # Settled even if this task is cancelled, so that no competitor waits forever.
            del self._rounds[connector]
            winner = min(entrants, key=self._rank)
            for waiting in entrants.values():
                if not waiting.done():
                    waiting.set_result(winner)
        return winner
