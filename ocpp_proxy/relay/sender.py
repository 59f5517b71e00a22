"""The send queue of one peer: frames are handed over at once and written by the peer's own task.

No write to one peer may wait in another peer's read loop: a backend that stops reading fills
its socket buffer, and a write to it then blocks. So every peer (the charger, each backend)
gets a :class:`PeerSender`: putting a frame in it never waits. A write the socket takes at once
(the usual case: aiohttp writes to the transport synchronously unless its buffer is over its
limit) is done right there, at no extra cost; a write that would wait, and every frame behind
it, is finished by the sender's own task, in order, each within ``write_timeout_s``. A peer
that falls behind (its queue over ``max_queued``, or one write stuck past the timeout) is
reported through ``on_stalled``; the owner decides what to do (drop a backend's connection;
never the charger's).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ocpp_proxy.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

#: Frames that may wait for one peer. A peer answers one CALL at a time, so more than this
#: many frames waiting means it does not read.
MAX_QUEUED_FRAMES = 1_000
#: How long one frame may take to be written (s) before the peer counts as stalled.
WRITE_TIMEOUT_S = 10.0


class Peer(Protocol):
    """The WebSocket of a connected peer (aiohttp's client and server sockets both fit)."""

    async def send_str(self, data: str) -> None:
        """Send one text frame."""
        ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> bool:
        """Close the WebSocket."""
        ...


class PeerSender:
    """Frames on their way to one peer.

    Args:
        peer: the WebSocket to write to.
        name: the peer's name, for log lines.
        tasks: the owner's task set; the writer task runs there.
        on_stalled: called once, with the reason, when the peer falls behind; the sender takes
            no more frames then. None for a peer never given up on (the charger): its writes
            may take as long as they take, and a frame past ``max_queued`` is refused alone.
        max_queued: frames that may wait (:data:`MAX_QUEUED_FRAMES` if None).
        write_timeout_s: the longest one write may take (s), with ``on_stalled``
            (:data:`WRITE_TIMEOUT_S` if None).
    """

    def __init__(
        self,
        peer: Peer,
        name: str,
        tasks: TaskSet,
        *,
        on_stalled: Callable[[str], None] | None,
        max_queued: int | None = None,
        write_timeout_s: float | None = None,
    ) -> None:
        self.peer = peer
        self.name = name
        self._on_stalled = on_stalled
        self._max_queued = MAX_QUEUED_FRAMES if max_queued is None else max_queued
        self._write_timeout_s = WRITE_TIMEOUT_S if write_timeout_s is None else write_timeout_s
        self._queue: deque[str] = deque()
        # A write begun in send() that has to wait: the coroutine, and what it waits for.
        self._unfinished: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._writing = False  # the task writes: new frames queue behind
        self._ready = asyncio.Event()
        self._closed = False
        self._stalled = False
        self._writer = tasks.spawn(self._write_all())

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self._queue)

    @property
    def open(self) -> bool:
        """Whether frames are still taken."""
        return not (self._closed or self._stalled)

    def send(self, text: str) -> bool:
        """Queue ``text`` for the peer (never waits); False if the peer takes no more frames."""
        if not self.open:
            return False
        if len(self._queue) >= self._max_queued:
            if self._on_stalled is None:
                _LOGGER.warning("%s: %d frames waiting; one refused", self.name, self._max_queued)
                return False
            self._stall(f"{self._max_queued} frames waiting to be written")
            return False
        if self._queue or self._writing:
            self._queue.append(text)  # behind a write that waits: in order, by the task
            return True
        write = self.peer.send_str(text)
        try:
            waiting = write.send(None)  # run the write until it completes or must wait
        except StopIteration:
            return True
        except (ConnectionError, RuntimeError) as err:
            self._failed(err)
            return False
        self._unfinished = (write, waiting)
        self._writing = True
        self._ready.set()
        return True

    async def close(self) -> None:
        """Stop writing (what is still queued is not sent) and wait for the writer to end."""
        self._closed = True
        self._queue.clear()
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        self._drop_unfinished()

    def _drop_unfinished(self) -> None:
        if self._unfinished is not None:
            self._unfinished[0].close()
            self._unfinished = None

    def _failed(self, err: Exception) -> None:
        # The socket closed under us; its reader notices and detaches the peer.
        _LOGGER.info("%s: send failed: %s", self.name, err)
        self._queue.clear()
        self._closed = True

    def _stall(self, reason: str) -> None:
        if self._stalled:
            return
        self._stalled = True
        self._queue.clear()
        _LOGGER.warning("%s does not take frames (%s)", self.name, reason)
        if self._on_stalled is not None:
            self._on_stalled(reason)

    async def _write_all(self) -> None:
        timeout = self._write_timeout_s if self._on_stalled is not None else None
        while True:
            await self._ready.wait()
            try:
                async with asyncio.timeout(timeout):
                    if self._unfinished is not None:
                        await self._finish(*self._unfinished)
                        self._unfinished = None
                while self._queue:
                    text = self._queue.popleft()
                    async with asyncio.timeout(timeout):
                        await self.peer.send_str(text)
                self._writing = False
            except TimeoutError:
                self._drop_unfinished()
                self._stall(f"a write took longer than {self._write_timeout_s:g} s")
                return
            except (ConnectionError, RuntimeError) as err:
                self._drop_unfinished()
                self._failed(err)
                return
            self._ready.clear()

    @staticmethod
    async def _finish(write: Coroutine[Any, Any, None], waiting: Any) -> None:
        """Drive a write begun in :meth:`send` to its end, as a task would have."""
        while True:
            if waiting is None:  # a bare yield: give the loop one turn
                await asyncio.sleep(0)
            else:  # a future: once done, the write reads its outcome itself when resumed
                await asyncio.wait((waiting,))
            try:
                waiting = write.send(None)
            except StopIteration:
                return
