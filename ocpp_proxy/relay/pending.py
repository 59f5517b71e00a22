"""Charger CALLs waiting for their one answer, and their deadlines.

A charger CALL gets exactly one CALLRESULT or CALLERROR (OCPP-J 1.6 §4.1.1; 2.0.1 part 4
§4.1.1). Several parties may want to give it: the primary backend's answer, the proxy at the
deadline (``response_timeout``), the proxy when the charger or the primary's link goes away.
Being answered is therefore one state transition of the call, :meth:`PendingCall.settle`,
which only the first of them wins; the others find it settled and do nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ocpp_proxy.clock import Clock, Timer
from ocpp_proxy.protocol.frames import Frame

if TYPE_CHECKING:
    from ocpp_proxy.relay.backend_link import BackendLink, Delivery


class AnsweredBy(StrEnum):
    """Who took the answering of a charger CALL."""

    BACKEND = "backend"  # the primary's (or a successor's) answer
    DEADLINE = "deadline"  # the proxy, when response_timeout passed
    LINK_GONE = "link_gone"  # the proxy, when no backend that got the call can answer it
    CHARGER_GONE = "charger_gone"  # nobody: the charger is gone, it sends the CALL again
    LOCAL = "local"  # the proxy, at once: no backend could answer


@dataclass(slots=True, eq=False)
class PendingCall:
    """A charger CALL that waits for its one answer.

    ``transaction_id`` is the charger-side 1.6 transaction id it refers to or assigns;
    ``targets`` are the backends it was offered to; ``answers`` holds the answers of those that
    are not the primary, in case the primary goes away; ``deliveries`` are a transaction
    message's deliveries by backend id, kept for those that have not confirmed it by the time
    the charger gets its answer.
    """

    frame: Frame
    transaction_id: int | None
    primary: BackendLink | None = None
    targets: tuple[BackendLink, ...] = ()
    answers: dict[str, Frame] = field(default_factory=dict)
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    received_at: float = 0.0  # clock.monotonic() on arrival (s)
    deadline: float = 0.0  # clock.monotonic() by which the primary must have answered (s)
    answered_by: AnsweredBy | None = None
    # Set while the charger's answer waits for backends' confirmations (the store fails).
    confirmed: asyncio.Event | None = None

    @property
    def done(self) -> bool:
        """Whether someone took the answering already."""
        return self.answered_by is not None

    def settle(self, by: AnsweredBy) -> bool:
        """Take the answering of this call; True only for the first taker (no await inside)."""
        if self.answered_by is not None:
            return False
        self.answered_by = by
        return True


class PendingCalls:
    """The charger CALLs of one charge point that wait for an answer, with one deadline timer.

    Args:
        clock: where deadlines are read and set.
        timeout_s: how long the primary backend has to answer (``response_timeout``, s).
        on_deadline: called with each call whose deadline passed and that nobody settled;
            it is settled as :attr:`AnsweredBy.DEADLINE` before the call.
    """

    def __init__(
        self, clock: Clock, timeout_s: float, on_deadline: Callable[[PendingCall], None]
    ) -> None:
        self._clock = clock
        self._timeout_s = timeout_s
        self._on_deadline = on_deadline
        self._calls: dict[str, PendingCall] = {}
        # With one timeout for all, deadlines come in arrival order: one timer for the oldest
        # serves them all (no timer per frame churning the loop's heap).
        self._deadlines: deque[PendingCall] = deque()
        self._timer: Timer | None = None

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[PendingCall]:
        return iter(list(self._calls.values()))

    def add(self, call: PendingCall, *, watch: bool) -> None:
        """Register ``call``; with ``watch``, the proxy answers it at its deadline."""
        call.received_at = now = self._clock.monotonic()
        self._calls[call.frame.unique_id] = call
        if not watch:
            return
        call.deadline = now + self._timeout_s
        self._deadlines.append(call)
        if self._timer is None:
            self._timer = self._clock.call_at(call.deadline, self._fire)

    def settle(self, call: PendingCall, by: AnsweredBy) -> bool:
        """Take the answering of ``call`` for ``by``; False if someone took it already."""
        if not call.settle(by):
            return False
        if self._calls.get(call.frame.unique_id) is call:
            del self._calls[call.frame.unique_id]
        return True

    def waiting_for(self, link: BackendLink) -> list[PendingCall]:
        """Unsettled calls whose answer is to come from ``link``."""
        return [call for call in self._calls.values() if call.primary is link]

    def settle_all(self, by: AnsweredBy) -> list[PendingCall]:
        """Settle every waiting call (the charger is gone); return them."""
        calls = [call for call in self._calls.values() if call.settle(by)]
        self._calls.clear()
        self._deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return calls

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.monotonic()
        while self._deadlines and (self._deadlines[0].done or self._deadlines[0].deadline <= now):
            call = self._deadlines.popleft()
            if self.settle(call, AnsweredBy.DEADLINE):
                self._on_deadline(call)
        if self._deadlines:
            self._timer = self._clock.call_at(self._deadlines[0].deadline, self._fire)
