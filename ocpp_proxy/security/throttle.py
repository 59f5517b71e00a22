"""Locking out repeated authentication failures, without holding a socket open while locked.

A failure is counted against every key the attempt names: its remote address, and the charge
point id or backend id it claimed (so that guesses spread over many addresses are slowed down
too). After ``threshold`` failures of one key within ``window`` seconds, the key is locked for
``first_delay`` seconds, doubling with each further failure, at most ``max_delay``. While any
of its keys is locked, an attempt is answered at once (HTTP 429 with ``Retry-After``) without
its secret being looked at, so a lock neither holds a connection slot nor tells a guesser
whether a guess was right.

A charge point id's lock spares the address that id last logged in from (its *home*, kept
across restarts in the store's settings as :data:`HOMES_SETTING`): someone guessing a
charger's password from elsewhere does not lock the charger itself out. The state is bounded
by ``max_keys`` (the least recently failing key is forgotten first).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_THRESHOLD = 5
DEFAULT_WINDOW_S = 60.0
DEFAULT_FIRST_DELAY_S = 1.0
DEFAULT_MAX_DELAY_S = 30.0
#: Keys remembered at most; the least recently failing is forgotten first.
DEFAULT_MAX_KEYS = 10_000

#: The store setting that keeps each id's home address (``"<kind>:<id>" -> address``).
HOMES_SETTING = "login_homes"

#: A throttled key: its kind (``address``, ``charge point``, ``backend``, ``api``) and value.
Key = tuple[str, str]


@dataclass(slots=True)
class _Failures:
    times: deque[float]
    locked_until: float = 0.0  # monotonic s


class AuthThrottle:
    """Failure counts and locks per key (address, claimed id).

    Args:
        threshold: failures within ``window`` that go unpunished.
        window: seconds a failure is remembered.
        first_delay: seconds the first lock lasts.
        max_delay: the longest lock (s).
        max_keys: how many keys are remembered at most.
        clock: monotonic seconds (for tests).
    """

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        window: float = DEFAULT_WINDOW_S,
        first_delay: float = DEFAULT_FIRST_DELAY_S,
        max_delay: float = DEFAULT_MAX_DELAY_S,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[Key, _Failures] = OrderedDict()
        self._home: OrderedDict[str, str] = OrderedDict()  # id -> address of its last login

    def keys(self, address: str, kind: str, claimed: str) -> tuple[Key, ...]:
        """The keys an attempt from ``address`` claiming ``claimed`` (a ``kind`` id) counts on.

        The claimed id's key is left out when ``address`` is where that id last logged in.
        """
        if self._home.get(f"{kind}:{claimed}") == address:
            return (("address", address),)
        return (("address", address), (kind, claimed))

    def retry_after(self, keys: Iterable[Key]) -> float:
        """Seconds until an attempt on ``keys`` is looked at again; 0 when none is locked."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            failures = self._failures.get(key)
            if failures is not None and failures.locked_until > now:
                wait = max(wait, failures.locked_until - now)
        return wait

    def failed(self, keys: Iterable[Key]) -> float:
        """Record a failed attempt on each of ``keys``; return the longest lock it started (s)."""
        now = self.clock()
        longest = 0.0
        for key in keys:
            failures = self._failures.pop(key, None)
            if failures is None:
                # Past threshold + 40 the lock is at its cap anyway: no need to remember more.
                failures = _Failures(deque(maxlen=self.threshold + 40))
            times = failures.times
            while times and times[0] <= now - self.window:
                times.popleft()
            times.append(now)
            self._failures[key] = failures
            excess = len(times) - self.threshold
            if excess > 0:
                delay = min(self.first_delay * 2 ** min(excess - 1, 32), self.max_delay)
                failures.locked_until = now + delay
                longest = max(longest, delay)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)
        return longest

    def succeeded(self, address: str, kind: str, claimed: str) -> bool:
        """``claimed`` (a ``kind`` id) logged in from ``address``: its home from now on.

        Returns whether that changed its home (then :meth:`homes` is worth keeping).
        """
        home = f"{kind}:{claimed}"
        changed = self._home.pop(home, None) != address
        self._home[home] = address
        while len(self._home) > self._max_keys:
            self._home.popitem(last=False)
        return changed

    def homes(self) -> dict[str, str]:
        """Each id's home address (``"<kind>:<id>" -> address``), to keep across restarts."""
        return dict(self._home)

    def load_homes(self, homes: Mapping[str, str]) -> None:
        """Take up the homes kept by an earlier run (see :meth:`homes`)."""
        for home, address in list(homes.items())[-self._max_keys :]:
            if isinstance(home, str) and isinstance(address, str):
                self._home[home] = address
