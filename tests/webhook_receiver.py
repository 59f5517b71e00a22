"""A real HTTP receiver of webhooks (aiohttp), that can be down, slow or failing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    """One POST the receiver got, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def signature_ok(secret: str, received: Received, now: float, tolerance_s: float = 300) -> bool:
    """Check a delivery as a receiver would (DOCS.md, "Webhooks"): the timestamp is recent and
    the HMAC-SHA256 of ``<timestamp>.<body>`` under the shared secret matches the header."""
    timestamp = received.headers.get("X-OCPP-Proxy-Timestamp", "")
    header = received.headers.get("X-OCPP-Proxy-Signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(header, "sha256=" + expected)


class Receiver:
    """POSTs to ``url`` are recorded; answers are taken from ``answers`` (then 200).

    ``hold`` (when set) makes each request wait until it is released, like a slow receiver.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: deque[int] = deque()
        self.hold: asyncio.Event | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Any]:
        """The bodies answered with 2xx, in order."""
        return [r.json for r in self.received if 200 <= r.status < 300]

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.hold is not None:
            await self.hold.wait()
        status = self.answers.popleft() if self.answers else 200
        self.received.append(Received(dict(request.headers), body, status))
        self._changed.set()
        self._changed = asyncio.Event()
        return web.Response(status=status, text="ok" if status < 300 else "failing")

    async def wait_until(self, predicate: Any, timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked after each request."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                changed = self._changed
                await changed.wait()
            return value


def free_port() -> int:
    """A port nothing listens on (for a receiver that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def now() -> float:
    return time.time()
