"""Who may connect at all: ``allowed_networks``, ``lan_only`` and ``trusted_proxies``.

With ``allowed_networks`` (CIDRs) or ``lan_only`` set, every HTTP request, including the
WebSocket handshakes of chargers and inbound backends, from an address outside them is
refused with 403 before its handler runs (so before any WebSocket upgrade). ``lan_only``
stands for loopback, RFC 1918, link-local and IPv6 unique local addresses (:data:`LAN`).
Outbound links (``ocpp_services``) are not affected.

The address checked is the TCP peer's. ``X-Forwarded-For`` is believed only when the peer is
one of ``trusted_proxies``: then the right-most address in it that is not itself a trusted
proxy is the client's. A forged header from anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiohttp import web

from ocpp_proxy.config import ProxyConfig

_LOGGER = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What ``lan_only`` allows: loopback, RFC 1918, link-local (RFC 3927, RFC 4291), IPv6 ULA
#: (RFC 4193).
LAN: Final = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
)


def parse_address(text: str | None) -> Address | None:
    """An IP address (an IPv4-mapped IPv6 one as IPv4; a zone id dropped), or None."""
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class NetworkPolicy:
    """Which client addresses may connect.

    Args:
        allowed: CIDRs allowed (with ``lan_only``, :data:`LAN` is added); none: everyone.
        lan_only: allow the LAN ranges.
        trusted_proxies: CIDRs of reverse proxies whose ``X-Forwarded-For`` is believed.
        always: addresses always allowed (the Home Assistant ingress proxy, as the app).
    """

    def __init__(
        self,
        allowed: Iterable[str] = (),
        *,
        lan_only: bool = False,
        trusted_proxies: Iterable[str] = (),
        always: Iterable[str] = (),
    ) -> None:
        networks = [*allowed, *(LAN if lan_only else ())]
        self.enabled = bool(networks)
        self._allowed: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in (*networks, *always)
        )
        self._trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted_proxies
        )

    @classmethod
    def from_config(cls, config: ProxyConfig, always: Iterable[str] = ()) -> NetworkPolicy:
        """The policy of ``config``'s ``allowed_networks``, ``lan_only``, ``trusted_proxies``."""
        return cls(
            config.allowed_networks,
            lan_only=config.lan_only,
            trusted_proxies=config.trusted_proxies,
            always=always,
        )

    def client(self, remote: str | None, forwarded_for: str | None) -> Address | None:
        """The client's address, or None when it cannot be told (then it is refused).

        The peer's, or, when the peer is a trusted proxy, from its ``X-Forwarded-For``.
        """
        address = parse_address(remote)
        if address is None or not forwarded_for or not _within(address, self._trusted):
            return address
        for hop in reversed(forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:
                return None  # a trusted proxy passed on garbage: do not guess
            if not _within(address, self._trusted):
                return address
        return address

    def allows(self, address: Address | None) -> bool:
        """Whether ``address`` may connect (everyone when no network is configured)."""
        if not self.enabled:
            return True
        return address is not None and _within(address, self._allowed)


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def network_middleware(
    policy: NetworkPolicy, on_refusal: Callable[[], None] | None = None
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware that answers 403 to clients outside ``policy`` before any handler runs."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if policy.enabled:
            client = policy.client(request.remote, request.headers.get("X-Forwarded-For"))
            if not policy.allows(client):
                _LOGGER.warning(
                    "%s %s from %s refused: not in allowed_networks",
                    request.method,
                    request.path,
                    client or request.remote,
                )
                if on_refusal is not None:
                    on_refusal()
                return web.json_response(
                    {"error": "this address may not connect", "field": "allowed_networks"},
                    status=403,
                )
        return await handler(request)

    return middleware
