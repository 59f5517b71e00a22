"""Fixtures: the proxy on an ephemeral port, and CSMS peers beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import parse_config
from ocpp_proxy.relay.hub import ChargerHub
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.security.connections import server_options
from ocpp_proxy.security.tls import server_ssl_context
from ocpp_proxy.server.app import create_app
from ocpp_proxy.server.keys import REGISTRY
from ocpp_proxy.server.listeners import LISTENERS, start_listeners
from ocpp_proxy.simulator.charger import SimulatedCharger
from ocpp_proxy.web.keys import API_TOKEN
from tests.browser import browser  # noqa: F401  (the page tests' fixture, for every module)
from tests.peers import Csms


@dataclass
class Proxy:
    """A running proxy: its app, its port, and shortcuts to what a user would look at."""

    app: web.Application
    runner: web.AppRunner
    port: int
    tls: bool = False
    ingress_port: int | None = None  # the ingress listener's port, when started with one

    @property
    def base(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def charger_url(self, charge_point_id: str = "CP_1") -> str:
        return f"{self.base}/charger/{charge_point_id}"

    @property
    def registry(self) -> HubRegistry:
        return self.app[REGISTRY]

    def hub(self, charge_point_id: str = "CP_1") -> ChargerHub:
        hub = self.registry.get(charge_point_id)
        assert hub is not None, f"no charge point {charge_point_id} yet"
        return hub

    async def recorded(self) -> None:
        """Wait until what the relay writes behind the frames' path (sessions) is written."""
        for hub in self.registry:
            await hub.journal.settled()

    async def get_json(self, path: str) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()

    @property
    def api_token(self) -> str:
        """The REST API's bearer token (configured, or generated at start)."""
        return self.app[API_TOKEN].value

    @property
    def auth(self) -> dict[str, str]:
        """Headers that authenticate a REST API request on the direct port."""
        return {"Authorization": f"Bearer {self.api_token}"}

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One API request with ``token`` (default: the API token); the status and the JSON."""
        headers = {"Authorization": f"Bearer {token or self.api_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, f"http://127.0.0.1:{self.port}{path}", json=body, headers=headers
            ) as response,
        ):
            return response.status, await response.json()

    async def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        """POST ``body`` as JSON with the API token; return the status and the JSON answer."""
        return await self.call("POST", path, body)

    async def stop(self) -> None:
        await self.runner.cleanup()


StartProxy = Callable[..., Awaitable[Proxy]]


@pytest.fixture
async def start_proxy(tmp_path: Path) -> AsyncIterator[StartProxy]:
    """Start a proxy with config options given as keyword arguments (as in the config file).

    ``clock`` is the clock its links wait on between connection attempts.
    """
    proxies: list[Proxy] = []

    async def start(
        clock: Clock = SYSTEM_CLOCK, *, ingress_peer: str | None = None, **options: Any
    ) -> Proxy:
        """``ingress_peer``: also start the ingress listener, trusting this address (the
        Supervisor's in Home Assistant; 127.0.0.1 stands in for it in tests)."""
        options.setdefault("response_timeout", 2)
        options.setdefault("drain_timeout", 1)
        options.setdefault("data_dir", str(tmp_path / "data"))
        options.setdefault("api_public_read", True)
        config = parse_config(options)
        # As cli.serve runs it: the handshake timeout, the redacting access log, TLS.
        peers = frozenset({ingress_peer}) if ingress_peer else frozenset()
        app = create_app(config, clock=clock, ingress_peers=peers)
        runner = web.AppRunner(app, shutdown_timeout=1, **server_options(config))
        await runner.setup()
        ssl_context = server_ssl_context(config)
        await start_listeners(
            runner,
            config,
            ssl_context,
            host="127.0.0.1",
            port=0,
            ingress_port=0 if ingress_peer else None,
        )
        ingress_ports = app[LISTENERS].ingress_ports
        proxy = Proxy(
            runner.app,
            runner,
            runner.addresses[0][1],
            tls=ssl_context is not None,
            ingress_port=next(iter(ingress_ports)) if ingress_ports else None,
        )
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


@pytest.fixture
async def start_csms() -> AsyncIterator[Callable[..., Awaitable[Csms]]]:
    """Start CSMS peers; each is stopped at the end of the test."""
    started: list[Csms] = []

    async def start(name: str, version: str = "1.6", **kwargs: Any) -> Csms:
        csms = await Csms(name, version, **kwargs).start()
        started.append(csms)
        return csms

    yield start
    for csms in started:
        await csms.stop()


def service(csms: Csms, **extra: Any) -> dict[str, Any]:
    """An ``ocpp_services`` entry pointing at ``csms``."""
    return {"id": csms.name, "url": csms.url, "version": csms.version, **extra}


ConnectCharger = Callable[..., Awaitable[SimulatedCharger]]


@pytest.fixture
async def connect_charger() -> AsyncIterator[ConnectCharger]:
    chargers: list[SimulatedCharger] = []

    async def connect(
        proxy: Proxy, charge_point_id: str = "CP_1", **kwargs: Any
    ) -> SimulatedCharger:
        kwargs.setdefault("log", lambda _line: None)
        kwargs.setdefault("response_timeout", 10)
        charger = await SimulatedCharger.connect(
            proxy.charger_url(charge_point_id), charge_point_id, **kwargs
        )
        chargers.append(charger)
        return charger

    yield connect
    for charger in chargers:
        await charger.close()


def tx_ids(csms: Csms, action: str) -> list[int]:
    return [r.payload["transactionId"] for r in csms.calls(action)]
