"""Waiting between attempts to reach a peer: exponential backoff with jitter and a cap.

One helper for every client the proxy keeps connected: the upstream CSMS links
(:mod:`ocpp_proxy.transport.upstream`), Home Assistant's WebSocket API
(:mod:`ocpp_proxy.homeassistant.client`) and the MQTT broker
(:mod:`ocpp_proxy.homeassistant.mqtt`). The n-th wait in a row is drawn uniformly from
``[(1 - jitter) * d, d]`` with ``d = min(first_s * factor**(n-1), max_s)``, so it never
exceeds ``max_s``; the jitter spreads the reconnects of many proxies (and of many chargers'
links) after a shared outage. A connection that stayed up ``stable_after_s`` or longer starts
the sequence again from ``first_s``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock


@dataclass
class Backoff:
    """The waits between connection attempts to one peer (all times in seconds).

    Args:
        first_s: the first wait (s), > 0.
        factor: how much each wait grows over the one before, >= 1.
        max_s: the longest wait (s), >= ``first_s``.
        jitter: the share of a wait drawn at random, 0 (none) to 1 (anywhere in ``[0, d]``).
        stable_after_s: a connection up this long (s) resets the waits to ``first_s``.
        clock: where time is read and slept (tests pass a ``ManualClock``).
        rng: the random source of the jitter.
    """

    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    jitter: float = 0.5
    stable_after_s: float = 30.0
    clock: Clock = SYSTEM_CLOCK
    rng: random.Random = field(default_factory=random.Random)
    _delay_s: float = field(init=False, default=0.0)
    _up_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not (0 < self.first_s <= self.max_s and self.factor >= 1 and 0 <= self.jitter <= 1):
            raise ValueError(
                f"backoff needs 0 < first_s <= max_s, factor >= 1 and 0 <= jitter <= 1; got "
                f"first_s={self.first_s}, max_s={self.max_s}, factor={self.factor}, "
                f"jitter={self.jitter}"
            )
        self._delay_s = self.first_s

    def reset(self) -> None:
        """The next wait is ``first_s`` again (e.g. the peer worked until now)."""
        self._delay_s = self.first_s

    def hold_at_max(self) -> None:
        """The next wait is ``max_s`` (e.g. credentials were refused: retrying fast is futile)."""
        self._delay_s = self.max_s

    def connected(self) -> None:
        """The peer is connected: if it stays up ``stable_after_s``, the waits start over."""
        self._up_since = self.clock.monotonic()

    def next_delay(self) -> float:
        """The next wait (s), and the one after it grows by ``factor`` up to ``max_s``."""
        if self._up_since is not None:
            if self.clock.monotonic() - self._up_since >= self.stable_after_s:
                self.reset()
            self._up_since = None
        wait = self._delay_s * self.rng.uniform(1.0 - self.jitter, 1.0)
        self._delay_s = min(self._delay_s * self.factor, self.max_s)
        return wait

    async def wait(self, delay_s: float | None = None) -> None:
        """Sleep ``delay_s`` (s; default :meth:`next_delay`) on the clock."""
        await self.clock.sleep(self.next_delay() if delay_s is None else delay_s)
