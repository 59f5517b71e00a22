"""Slowing down repeated authentication failures from one address.

After ``threshold`` failures from an address within ``window`` seconds, each further failure
from that address waits before its HTTP 401: ``first_delay``, doubling, at most ``max_delay``.
Only failures wait: a right secret is answered at once. The state is per address (no global
lock), so other addresses are never slowed; it is bounded by ``max_addresses``.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

DEFAULT_THRESHOLD = 5
DEFAULT_WINDOW_S = 60.0
DEFAULT_FIRST_DELAY_S = 1.0
DEFAULT_MAX_DELAY_S = 30.0
#: Addresses remembered at most; the least recently failing is forgotten first.
DEFAULT_MAX_ADDRESSES = 10_000


class AuthThrottle:
    """Failure counts per remote address, and the delay the next failure gets.

    Args:
        threshold: failures within ``window`` that go unpunished.
        window: seconds a failure is remembered.
        first_delay: seconds the first failure past the threshold waits.
        max_delay: the cap of the delay (s).
        max_addresses: how many addresses are remembered at most.
        clock: monotonic seconds (for tests).
    """

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        window: float = DEFAULT_WINDOW_S,
        first_delay: float = DEFAULT_FIRST_DELAY_S,
        max_delay: float = DEFAULT_MAX_DELAY_S,
        max_addresses: int = DEFAULT_MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def failed(self, address: str) -> float:
        """Record a failure from ``address``; return the seconds to wait before answering it."""
        now = self._clock()
        # Past threshold + 40 the delay is at its cap anyway: no need to remember more.
        times = self._failures.pop(address, None) or deque(maxlen=self.threshold + 40)
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        self._failures[address] = times
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
        excess = len(times) - self.threshold
        if excess <= 0:
            return 0.0
        return min(self.first_delay * 2 ** min(excess - 1, 32), self.max_delay)
