"""Caps on open WebSockets (per remote address and in total) and the handshake timeout.

A peer over a cap gets HTTP 503 before the WebSocket upgrade, so that one misbehaving host
cannot take every socket (and with it the other chargers' and backends' traffic). The
handshake timeout is aiohttp's keep-alive timer, which aiohttp arms when a TCP connection is
accepted and which closes it when no complete HTTP request has arrived by then: a client
that opens TCP and never finishes its upgrade request is dropped after ``handshake_timeout``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.security.redaction import RedactingAccessLogger

#: The metric every limit hit counts in, labelled ``limit``.
LIMIT_HITS = "ocpp_proxy_limit_hits_total"


class ConnectionLimiter:
    """Counts open WebSockets per remote address and in total.

    Args:
        max_total: the cap on all open WebSockets.
        max_per_address: the cap per remote address.
        metrics: where hits are counted (``ocpp_proxy_limit_hits_total{limit=...}``).
    """

    def __init__(self, max_total: int, max_per_address: int, metrics: Metrics) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._metrics = metrics
        self._open: Counter[str] = Counter()
        self._total = 0

    @property
    def total(self) -> int:
        """WebSockets open now."""
        return self._total

    def acquire(self, address: str) -> str | None:
        """Take a slot for ``address``: None when granted, else the name of the cap hit.

        A granted slot must be given back with :meth:`release`.
        """
        if self._total >= self.max_total:
            limit = "max_connections"
        elif self._open[address] >= self.max_per_address:
            limit = "max_connections_per_address"
        else:
            self._open[address] += 1
            self._total += 1
            return None
        self._metrics.inc(LIMIT_HITS, limit=limit)
        return limit

    def release(self, address: str) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self._total -= 1
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]  # the Counter does not grow with every address ever seen


def server_options(config: ProxyConfig) -> dict[str, Any]:
    """Keyword arguments for ``web.run_app`` / ``web.AppRunner`` that the config implies.

    In: the config. Out: ``keepalive_timeout`` (= ``handshake_timeout``: the time a new
    connection has to send its complete HTTP upgrade request, aiohttp >= 3.10 arms it on
    accept) and the access logger that keeps secrets out of the access log.
    """
    return {
        "keepalive_timeout": config.handshake_timeout,
        "access_log_class": RedactingAccessLogger,
    }
