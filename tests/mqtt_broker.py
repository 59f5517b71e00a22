"""A real Mosquitto broker for the tests, and an MQTT client that records what is published."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[int]:
    """Start Mosquitto on a free loopback port; yield the port."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (Debian: apt-get install mosquitto)")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
    )
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(10):
        while not any(" running" in line for line in lines):
            line = (await process.stderr.readline()).decode()
            assert line, f"mosquitto exited: {''.join(lines)}"
            lines.append(line)

    async def drain() -> None:  # a full pipe would stall the broker
        assert process.stderr is not None
        while await process.stderr.readline():
            pass

    drainer = asyncio.create_task(drain())
    yield port
    process.terminate()
    await process.wait()
    drainer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drainer


class MqttWatcher:
    """Subscribes to everything on the broker and keeps the last payload of every topic."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.last: dict[str, bytes] = {}
        self.counts: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._client = aiomqtt.Client("127.0.0.1", port, identifier="test-watcher")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> MqttWatcher:
        await self._client.__aenter__()
        await self._client.subscribe("#", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self._client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else b""
            async with self._changed:
                self.last[topic] = payload
                self.counts[topic] = self.counts.get(topic, 0) + 1
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked on every message received."""
        async with asyncio.timeout(timeout), self._changed:
            return await self._changed.wait_for(predicate)

    async def wait_value(self, topic: str, value: str, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.text(topic) == value, timeout)

    def text(self, topic: str) -> str | None:
        payload = self.last.get(topic)
        return None if payload is None else payload.decode()

    def json(self, topic: str) -> Any:
        return json.loads(self.last[topic])

    def configs(self, prefix: str = "homeassistant") -> dict[str, Any]:
        """The discovery configs present now (an empty payload removed one)."""
        return {
            topic: json.loads(payload)
            for topic, payload in self.last.items()
            if topic.startswith(f"{prefix}/") and topic.endswith("/config") and payload
        }

    async def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        await self._client.publish(topic, payload, qos=1, retain=retain)


@pytest.fixture
async def watcher(mosquitto: int) -> AsyncIterator[MqttWatcher]:
    """An MQTT client that records every message on the test broker."""
    recorder = await MqttWatcher(mosquitto).start()
    yield recorder
    await recorder.stop()
