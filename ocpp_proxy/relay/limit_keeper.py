"""Keeps the homeowner's current limit on one charger: set on connect, on boot, on change.

See :mod:`ocpp_proxy.policy.limits` for the profile itself. The limit is sent once the charger
has booted (or after ``response_timeout`` if it reconnects without booting), again after every
BootNotification (a rebooted charger may have lost it), and whenever the homeowner changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ocpp_proxy.clock import iso_utc
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.policy.limits import (
    clear_profile,
    limit_periods,
    set_profile,
    stack_level_from,
    stack_level_query,
)
from ocpp_proxy.protocol.frames import CALLRESULT
from ocpp_proxy.protocol.versions import OcppVersion

_LOGGER = logging.getLogger(__name__)

#: The audit log's actor for the proxy's own commands on the homeowner's behalf.
PROXY = "proxy"


class Commander(Protocol):
    """Sends a command as the homeowner and returns its outcome (see ChargerHub)."""

    def __call__(self, action: str, payload: dict[str, Any], actor: str = ...) -> Awaitable[Any]:
        """Send ``action`` with ``payload``; the result has ``decision`` and ``answer``."""
        ...


class LimitKeeper:
    """Holds the homeowner's limit on one charger.

    Args:
        charge_point_id: the charger.
        config: the proxy's configuration (``max_current_a``, ``charging_schedule``).
        home: the homeowner's inputs (``max_current_a`` at run time).
        command: sends a command as the homeowner and returns a ``HomeownerResult``.
        version: returns the charger's OCPP version now.
        on_change: called when :attr:`state` changes (``/status`` shows it).
    """

    def __init__(
        self,
        charge_point_id: str,
        config: ProxyConfig,
        home: HomeState,
        command: Commander,
        version: Callable[[], OcppVersion],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.id = charge_point_id
        self.config = config
        self.home = home
        self._command = command
        self._version = version
        self._on_change = on_change
        self._lock = asyncio.Lock()
        self._booted = asyncio.Event()
        self._held = False  # the charger holds the proxy's profile (as far as we know)
        self.state: dict[str, Any] = {"status": "none"}

    def connected(self) -> None:
        """The charger connected: after its boot (or a grace period), set the limit."""
        self._booted.clear()

    async def after_connect(self) -> None:
        """Wait for the boot (at most ``response_timeout``), then apply the limit."""
        # A charger that reconnects without booting takes commands all the same.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._booted.wait(), self.config.response_timeout)
        await self.apply()

    def booted(self) -> bool:
        """The charger's BootNotification was accepted; True if this is a re-boot to act on."""
        first = not self._booted.is_set()
        self._booted.set()
        return not first

    async def apply(self) -> None:
        """Send the limit now (or clear the proxy's profile when there is no limit)."""
        async with self._lock:
            periods = limit_periods(self.home.max_current_a, self.config.charging_schedule)
            version = self._version()
            if periods is None:
                if self._held:
                    await self._command(*clear_profile(version), actor=PROXY)
                    self._held = False
                self.state = {"status": "none"}
                self._on_change()
                return
            query = await self._command(*stack_level_query(version), actor=PROXY)
            answer = query.answer.payload if query.answer is not None else None
            stack_level = stack_level_from(answer)
            result = await self._command(
                *set_profile(
                    version,
                    periods,
                    stack_level=stack_level,
                    daily=bool(self.config.charging_schedule),
                ),
                actor=PROXY,
            )
            status = _status(result)
            self._held = status == "Accepted"
            self.state = {
                "status": status,
                "max_current_a": self.home.max_current_a,
                "schedule": [list(p) for p in periods] if self.config.charging_schedule else None,
                "stack_level": stack_level,
                "updated_at": iso_utc(time.time()),
            }
            self._on_change()
            if self._held:
                _LOGGER.info("%s: the homeowner's limit is set (%s)", self.id, periods)
            else:
                _LOGGER.error(
                    "%s: the charger did not take the homeowner's limit: %s", self.id, status
                )


def _status(result: Any) -> str:
    if not result.decision.allowed:
        return f"refused: {result.decision.reason}"
    answer = result.answer
    if answer is None:
        return "not sent"
    if answer.message_type == CALLRESULT:
        return str((answer.payload or {}).get("status", "Accepted"))
    return f"{answer.error[0]}: {answer.error[1]}" if answer.error else "error"
