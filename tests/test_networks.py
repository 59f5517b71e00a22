"""LAN-only operation: allowed_networks, lan_only and trusted_proxies.

Real connections over IPv4 (127.0.0.1) and IPv6 (::1): a client outside the allowed networks
gets 403 before the WebSocket upgrade or the API handler; X-Forwarded-For counts only from a
trusted proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ocpp_proxy.config import ConfigError, parse_config
from ocpp_proxy.security.networks import NetworkPolicy, parse_address
from ocpp_proxy.server.app import create_app
from ocpp_proxy.simulator.charger import SimulatedCharger

TOKEN = "admin-token-0123456789"
BACKEND_TOKEN = "backend-token-0123456789"


class DualStack:
    """The proxy listening on 127.0.0.1 and on ::1."""

    def __init__(self, runner: web.AppRunner, v4: int, v6: int) -> None:
        self.runner, self.v4, self.v6 = runner, v4, v6

    def base(self, family: str) -> str:
        return f"127.0.0.1:{self.v4}" if family == "v4" else f"[::1]:{self.v6}"


StartDual = Callable[..., Awaitable[DualStack]]


@pytest.fixture
async def start_dual(tmp_path: Path) -> AsyncIterator[StartDual]:
    runners: list[web.AppRunner] = []

    async def start(**options: Any) -> DualStack:
        options.setdefault("data_dir", str(tmp_path / "data"))
        options.setdefault("api_token", TOKEN)
        options.setdefault("inbound_backends", [{"id": "crm", "token": BACKEND_TOKEN}])
        runner = web.AppRunner(create_app(parse_config(options)), shutdown_timeout=1)
        await runner.setup()
        runners.append(runner)
        v4 = web.TCPSite(runner, "127.0.0.1", 0)
        await v4.start()
        v6 = web.TCPSite(runner, "::1", 0)
        await v6.start()
        ports = {address[0]: address[1] for address in runner.addresses}
        return DualStack(runner, ports["127.0.0.1"], ports["::1"])

    yield start
    for runner in runners:
        await runner.cleanup()


async def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})}) as r,
    ):
        return r.status


async def handshake(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a WebSocket handshake (101 when upgraded)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, protocols=("ocpp1.6",), headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as err:
            return err.status


@pytest.mark.parametrize(
    ("allowed", "v4_status", "v6_status"),
    [
        (["127.0.0.0/8"], 101, 403),
        (["::1/128"], 403, 101),
        (["10.0.0.0/8", "fd00::/8"], 403, 403),
        ([], 101, 101),
    ],
)
async def test_chargers_backends_and_api_clients_from_outside_get_403_before_the_upgrade(
    start_dual: StartDual, allowed: list[str], v4_status: int, v6_status: int
) -> None:
    proxy = await start_dual(allowed_networks=allowed)
    for family, expected in (("v4", v4_status), ("v6", v6_status)):
        base = proxy.base(family)
        assert await handshake(f"ws://{base}/charger/CP_1") == expected, family
        backend = f"ws://{base}/backend?id=crm&token={BACKEND_TOKEN}&charge_point_id=CP_1"
        assert await handshake(backend) == expected, family
        assert await status_of(f"http://{base}/api/v1/status") == (200 if expected == 101 else 403)
        assert await status_of(f"http://{base}/") == (200 if expected == 101 else 403)


async def test_lan_only_lets_loopback_chargers_in_over_both_families(
    start_dual: StartDual,
) -> None:
    proxy = await start_dual(lan_only=True)
    for family in ("v4", "v6"):
        charger = await SimulatedCharger.connect(
            f"ws://{proxy.base(family)}/charger/CP_{family}", f"CP_{family}", log=lambda _: None
        )
        try:
            assert (await charger.boot()).status == "Accepted"
        finally:
            await charger.close()


async def test_a_forged_forwarded_for_counts_only_from_a_trusted_proxy(
    start_dual: StartDual,
) -> None:
    forged = {"X-Forwarded-For": "192.168.1.5"}
    # The peer (127.0.0.1) is not allowed; claiming a LAN address changes nothing...
    proxy = await start_dual(allowed_networks=["192.168.1.0/24"])
    assert await status_of(f"http://{proxy.base('v4')}/api/v1/status", forged) == 403
    assert await handshake(f"ws://{proxy.base('v4')}/charger/CP_1", forged) == 403
    await proxy.runner.cleanup()
    # ...unless the peer is a trusted proxy: then the client is the address it forwards.
    proxy = await start_dual(allowed_networks=["192.168.1.0/24"], trusted_proxies=["127.0.0.1"])
    assert await status_of(f"http://{proxy.base('v4')}/api/v1/status", forged) == 200
    assert await handshake(f"ws://{proxy.base('v4')}/charger/CP_1", forged) == 101
    outside = {"X-Forwarded-For": "192.168.1.5, 203.0.113.7"}  # the right-most hop counts
    assert await status_of(f"http://{proxy.base('v4')}/api/v1/status", outside) == 403
    # The peer alone, without the header, is not in the allowed networks.
    assert await status_of(f"http://{proxy.base('v4')}/api/v1/status") == 403
    # From ::1, which is no trusted proxy, the header is ignored.
    assert await status_of(f"http://{proxy.base('v6')}/api/v1/status", forged) == 403
    await proxy.runner.cleanup()
    # An allowed peer that forges an outside address is still let in (the header is ignored).
    proxy = await start_dual(allowed_networks=["127.0.0.1/32"])
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    assert await status_of(f"http://{proxy.base('v4')}/api/v1/status", spoof) == 200


@pytest.mark.parametrize(
    ("address", "lan"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.254", True),
        ("172.32.0.1", False),
        ("192.168.178.20", True),
        ("169.254.10.1", True),
        ("8.8.8.8", False),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd12:3456:789a::1", True),
        ("2001:db8::1", False),
        ("::ffff:192.168.1.2", True),
        ("::ffff:8.8.8.8", False),
        ("not-an-address", False),
    ],
)
def test_lan_only_means_loopback_rfc1918_link_local_and_ula(address: str, lan: bool) -> None:
    policy = NetworkPolicy(lan_only=True)
    assert policy.allows(parse_address(address)) is lan


def test_the_ingress_proxy_is_always_allowed_as_the_app() -> None:
    policy = NetworkPolicy(["192.168.1.0/24"], always=("172.30.32.2",))
    assert policy.allows(parse_address("172.30.32.2"))
    assert not policy.allows(parse_address("172.30.32.3"))


def test_bad_networks_are_named_in_the_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"allowed_networks": ["192.168.1.0/24", "lan"]})
    assert err.value.key == "allowed_networks[1]" and "CIDR" in err.value.reason
    with pytest.raises(ConfigError) as err:
        parse_config({"trusted_proxies": ["300.1.1.1"]})
    assert err.value.key == "trusted_proxies[0]"
