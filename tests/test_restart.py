"""Restart recovery with real processes: the proxy is killed with SIGKILL mid-session."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.store import DATABASE_FILE, Store
from tests.conftest import service, tx_ids
from tests.peers import Csms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProxyProcess:
    """``python -m ocpp_proxy`` in a subprocess, on a fixed port and data dir."""

    def __init__(
        self, tmp_path: Path, options: dict[str, Any], extra_args: tuple[str, ...] = ()
    ) -> None:
        self.extra_args = extra_args
        self.port = free_port()
        self.data_dir = tmp_path / "data"
        self.config = tmp_path / "config.json"
        self.config.write_text(json.dumps({"api_public_read": True, **options}))
        self.log = tmp_path / "proxy.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocpp_proxy",
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
            stdout=self.log.open("ab"),
            stderr=asyncio.subprocess.STDOUT,
        )
        await self.until(lambda status: status is not None, "the proxy to answer /status")

    async def status(self) -> dict[str, Any] | None:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.port}/status") as response,
            ):
                return await response.json()
        except aiohttp.ClientConnectionError:
            return None

    async def until(self, predicate: Any, what: str, timeout: float = 15.0) -> dict[str, Any]:
        """Poll /status (a separate process has no event to wait on) until ``predicate``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    assert self.process is not None and self.process.returncode is None, (
                        self.log.read_text()
                    )
                    status = await self.status()
                    if predicate(status):
                        return status  # type: ignore[return-value]
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def backend(self, backend_id: str) -> dict[str, Any]:
        status = await self.status()
        assert status is not None
        return next(b for b in status["chargers"][0]["backends"] if b["id"] == backend_id)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup, no flush
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@pytest.fixture
async def csms_pair() -> AsyncIterator[tuple[Csms, Csms]]:
    a = await Csms("a", first_transaction_id=100).start()
    b = await Csms("b", first_transaction_id=5000).start()
    yield a, b
    await a.stop()
    await b.stop()


def backend_state(backend_id: str, **wanted: Any) -> Any:
    def check(status: dict[str, Any] | None) -> bool:
        if not status or not status["chargers"]:
            return False
        backend = next(b for b in status["chargers"][0]["backends"] if b["id"] == backend_id)
        return all(backend[key] == value for key, value in wanted.items())

    return check


def energies(csms: Csms) -> list[str]:
    return [
        r.payload["meterValue"][0]["sampledValue"][0]["value"] for r in csms.calls("MeterValues")
    ]


async def test_sigkill_mid_session_every_backend_gets_the_session_exactly_once(
    tmp_path: Path, csms_pair: tuple[Csms, Csms]
) -> None:
    a, b = csms_pair
    proxy = ProxyProcess(
        tmp_path, {"ocpp_services": [service(a), service(b)], "response_timeout": 3}
    )
    await proxy.start()
    url = f"ws://127.0.0.1:{proxy.port}/charger/CP_1"
    charger = await SimulatedCharger.connect(url, "CP_1", log=lambda _: None)
    try:
        await charger.boot()
        transaction_id = await charger.start_transaction(1, "TAG1", 0)
        await charger.meter_values(1, transaction_id, 1000, 7000)
        await charger.meter_values(1, transaction_id, 2000, 7000)
        await proxy.until(backend_state("b", queue_depth=0), "b to confirm all it got")

        await b.stop()  # b goes away; what follows waits for it in the outbox
        await proxy.until(backend_state("b", state="connecting"), "the proxy to notice b is gone")
        await charger.meter_values(1, transaction_id, 3000, 7000)
        await proxy.until(backend_state("b", queue_depth=1), "the message kept for b")

        await proxy.kill()
        await charger.wait_closed(timeout=5)
    finally:
        await charger.close()

    await proxy.start()
    await b.start()
    charger = await SimulatedCharger.connect(url, "CP_1", log=lambda _: None)
    try:
        await charger.meter_values(1, transaction_id, 4000, 7000)
        await charger.stop_transaction(transaction_id, 5000)
        # The transaction id counter survived too: the next session gets a new id.
        next_id = await charger.start_transaction(1, "TAG1", 5000)
        assert next_id == transaction_id + 1
        await charger.stop_transaction(next_id, 5500)
        await a.wait_for_call("StopTransaction", 2, timeout=15)
        await b.wait_for_call("StopTransaction", 2, timeout=15)
        await proxy.until(backend_state("b", queue_depth=0), "b to confirm everything")
    finally:
        await charger.close()
        await proxy.stop()

    for csms, first in ((a, 100), (b, 5000)):
        assert len(csms.calls("StartTransaction")) == 2
        assert tx_ids(csms, "MeterValues") == [first] * 4
        assert energies(csms) == ["1000", "2000", "3000", "4000"]
        assert tx_ids(csms, "StopTransaction") == [first, first + 1]
        assert [r.payload["meterStop"] for r in csms.calls("StopTransaction")] == [5000, 5500]

    store = await Store.open(proxy.data_dir / DATABASE_FILE)
    try:
        first_session, second_session = sorted(await store.sessions(), key=lambda s: s.id)
        assert first_session.transaction_id == str(transaction_id)
        assert (first_session.meter_start_wh, first_session.meter_stop_wh) == (0, 5000)
        assert first_session.energy_kwh == 5.0
        assert first_session.owner == "a"
        assert first_session.stopped_at is not None
        assert first_session.backend_transaction_ids == {"a": "100", "b": "5000"}
        samples = await store.session_samples(first_session.id)
        assert [s.value for s in samples if s.measurand.startswith("Energy")] == [
            1000,
            2000,
            3000,
            4000,
        ]
        assert second_session.backend_transaction_ids == {"a": "101", "b": "5001"}
        assert await store.outbox_depths("CP_1") == {}
    finally:
        await store.close()


@pytest.mark.parametrize(("version", "kill"), [("1.6", True), ("2.0.1", False)])
async def test_restart_with_every_backend_down_loses_nothing_of_the_session(
    tmp_path: Path, version: str, kill: bool
) -> None:
    a = await Csms("a", version, first_transaction_id=100).start()
    b = await Csms("b", version, first_transaction_id=5000).start()
    await a.stop()
    await b.stop()  # every backend is down for the whole session: the proxy answers it
    proxy = ProxyProcess(
        tmp_path,
        {
            "ocpp_version": version,
            "ocpp_services": [service(a), service(b)],
            "response_timeout": 3,
        },
    )
    await proxy.start()
    url = f"ws://127.0.0.1:{proxy.port}/charger/CP_1"
    charger = await SimulatedCharger.connect(url, "CP_1", version, log=lambda _: None)
    try:
        await charger.boot()
        await charger.status(1, "Charging")
        transaction_id = await charger.start_transaction(1, "TAG1", 0)
        await charger.meter_values(1, transaction_id, 1000, 7000)
        await charger.meter_values(1, transaction_id, 2000, 7000)
        await charger.stop_transaction(transaction_id, 3000)
        await proxy.until(backend_state("b", queue_depth=4), "the session kept for b")
        if kill:
            await proxy.kill()  # SIGKILL: no cleanup, no flush
        else:
            await proxy.stop()  # SIGTERM
        await charger.wait_closed(timeout=5)
    finally:
        await charger.close()

    await proxy.start()
    await a.start()
    await b.start()
    # The charger comes back without booting again: what the backends learn of it is kept.
    charger = await SimulatedCharger.connect(url, "CP_1", version, log=lambda _: None)
    try:
        for csms in (a, b):
            await csms.wait_until(lambda csms=csms: len(csms.calls()) >= 6, timeout=15)
        await proxy.until(backend_state("b", queue_depth=0), "b to confirm everything")
        await proxy.until(backend_state("a", queue_depth=0), "a to confirm everything")
    finally:
        await charger.close()
        await proxy.stop()
        await a.stop()
        await b.stop()

    session = (
        ["StartTransaction", "MeterValues", "MeterValues", "StopTransaction"]
        if version == "1.6"
        else ["TransactionEvent"] * 4
    )
    for csms, first in ((a, 100), (b, 5000)):
        assert [r.action for r in csms.calls()] == [
            "BootNotification",
            "StatusNotification",
            *session,
        ]
        if version == "1.6":
            assert tx_ids(csms, "MeterValues") == [first, first]
            assert tx_ids(csms, "StopTransaction") == [first]
        else:
            events = [r.payload["eventType"] for r in csms.calls("TransactionEvent")]
            assert events == ["Started", "Updated", "Updated", "Ended"]


async def test_the_command_serves_ingress_apart_and_stops_cleanly(tmp_path: Path) -> None:
    ingress = free_port()
    proxy = ProxyProcess(
        tmp_path,
        {"api_public_read": False, "preferred_provider": "nobody"},
        ("--ingress-port", str(ingress), "--keep-running"),
    )
    await proxy.start()  # answers /status: the conflicting option did not stop it
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{ingress}/health") as response:
                assert response.status == 200  # the container's own health check
            async with session.get(f"http://127.0.0.1:{ingress}/api/v1/status") as response:
                assert response.status == 403  # loopback is not the Supervisor
            async with session.get(f"http://127.0.0.1:{proxy.port}/api/v1/status") as response:
                assert response.status == 401  # the main port wants the token
    finally:
        await proxy.stop()
    assert proxy.process is not None and proxy.process.returncode == 0
    log = proxy.log.read_text()
    token = (proxy.data_dir / "api_token").read_text().strip()
    assert token not in log and str(proxy.data_dir / "api_token") in log
    assert "preferred_provider: must be empty or the id" in log
    assert "running without a preferred provider" in log
