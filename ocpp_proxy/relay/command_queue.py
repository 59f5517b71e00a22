"""Commands to the charger, one at a time, each under a unique id the proxy chose.

OCPP-J allows one outstanding CALL per direction (OCPP-J 1.6 §4.1.1; OCPP 2.0.1 part 4
§4.1.1). Several backends may send commands at once, so they queue here and go to the charger
one by one. Each goes out under a fresh unique id, so that two backends that happen to use the
same ids never collide; the charger's answer goes back to whoever asked, under their own id.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ocpp_proxy.clock import Clock, Timer
from ocpp_proxy.protocol.frames import Frame, build_call_error, parse_frame, with_unique_id
from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

Respond = Callable[[Frame], Awaitable[None]]

#: Commands that may wait for the charger at once. One charger answers a command in well under
#: a second, and backends send a few a minute; a queue this long means a backend floods.
MAX_QUEUED_COMMANDS = 100


@dataclass(slots=True, eq=False)
class Command:
    """A CALL for the charger and where its answer goes.

    ``frame`` is the CALL as the requester sent it; ``text`` the frame to send (its unique id is
    replaced on sending); ``respond`` receives the charger's CALLRESULT or CALLERROR, or a
    CALLERROR made here when the charger does not answer.
    """

    requester: str
    frame: Frame
    text: str
    respond: Respond
    proxy_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class CommandQueue:
    """The queue of commands to one charger connection.

    Args:
        send: hands a text frame to the charger's send queue (never waits); False if it could
            not.
        clock: where the answer's deadline is set.
        tasks: the owner's task set (a timed-out command's answer is sent from there).
        timeout: seconds to wait for the charger's answer to one command (s).
        generic_error: the version's CALLERROR code for "no answer" (``GenericError``).
        max_queued: commands that may wait at once; past it a command gets a CALLERROR.
        on_full: called when a command is refused because the queue is full (for metrics).
    """

    def __init__(
        self,
        send: Callable[[str], bool],
        *,
        clock: Clock,
        tasks: TaskSet,
        timeout: float,
        generic_error: str,
        max_queued: int = MAX_QUEUED_COMMANDS,
        on_full: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._tasks = tasks
        self._max_queued = max_queued
        self._on_full = on_full
        self._timeout = timeout
        self._generic_error = generic_error
        self._queue: deque[Command] = deque()
        self._in_flight: Command | None = None
        self._timer: Timer | None = None

    @property
    def depth(self) -> int:
        """Commands waiting for the charger, the one in flight included."""
        return len(self._queue) + (self._in_flight is not None)

    @property
    def in_flight(self) -> Command | None:
        """The command the charger has not answered yet, if any."""
        return self._in_flight

    async def submit(self, command: Command) -> None:
        """Queue ``command`` and send it if no other command is in flight.

        When ``max_queued`` commands wait already, ``command`` is answered at once with a
        CALLERROR (GenericError) instead: one flooding backend cannot grow memory without end,
        and the others' commands still go through as the queue drains.
        """
        if len(self._queue) >= self._max_queued:
            _LOGGER.warning(
                "command queue full (%d): %s from %s refused",
                self._max_queued,
                command.frame.action,
                command.requester,
            )
            if self._on_full is not None:
                self._on_full()
            description = f"too many commands waiting for the charge point ({self._max_queued})"
            await command.respond(_error_frame(command, self._generic_error, description))
            return
        self._queue.append(command)
        if self._in_flight is None:
            await self._pump()

    async def on_answer(self, frame: Frame) -> bool:
        """Route the charger's CALLRESULT/CALLERROR; return False if it answers nothing."""
        command = self._in_flight
        if command is None or frame.unique_id != command.proxy_id:
            return False
        self._finish()
        await command.respond(frame)
        await self._pump()
        return True

    async def fail(self, unique_id: str, code: str, description: str) -> bool:
        """Answer the in-flight command with a CALLERROR (e.g. the charger's reply was malformed).

        Returns False if ``unique_id`` is not the in-flight command's.
        """
        command = self._in_flight
        if command is None or unique_id != command.proxy_id:
            return False
        self._finish()
        await command.respond(_error_frame(command, code, description))
        await self._pump()
        return True

    async def fail_all(self, description: str) -> None:
        """Answer every queued and in-flight command with a CALLERROR (charger gone)."""
        commands = list(self._queue)
        if self._in_flight is not None:
            commands.insert(0, self._in_flight)
        self._finish()
        self._queue.clear()
        for command in commands:
            await command.respond(_error_frame(command, self._generic_error, description))

    def _finish(self) -> None:
        self._in_flight = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _pump(self) -> None:
        while self._in_flight is None and self._queue:
            command = self._queue.popleft()
            self._in_flight = command
            self._timer = self._clock.call_at(
                self._clock.monotonic() + self._timeout,
                functools.partial(self._on_timeout, command),
            )
            if self._send(with_unique_id(command.text, command.proxy_id)):
                return
            self._finish()
            await command.respond(
                _error_frame(command, self._generic_error, "the charge point is not connected")
            )

    def _on_timeout(self, command: Command) -> None:
        if self._in_flight is not command:
            return
        self._finish()
        _LOGGER.warning(
            "charge point did not answer %s from %s within %ss",
            command.frame.action,
            command.requester,
            self._timeout,
        )
        description = f"the charge point did not answer within {self._timeout:g} s"
        self._tasks.spawn(self._timed_out(command, description))

    async def _timed_out(self, command: Command, description: str) -> None:
        await command.respond(_error_frame(command, self._generic_error, description))
        await self._pump()


def _error_frame(command: Command, code: str, description: str) -> Frame:
    return parse_frame(build_call_error(command.proxy_id, code, description))
