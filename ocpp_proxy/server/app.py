"""The aiohttp application: routes, and the lifetime of the relay behind them."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import WSCloseCode, web

from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import ProxyConfig, ServiceConfig
from ocpp_proxy.event_bus import EventBus
from ocpp_proxy.homeassistant.app import home_assistant_ctx, mqtt_ctx
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.notify.watcher import PublishingArbiter, RelayWatcher
from ocpp_proxy.notify.webhooks import WebhookDispatcher
from ocpp_proxy.policy.home import HomeState
from ocpp_proxy.policy.rules import HomeownerArbiter
from ocpp_proxy.relay.hub import LinkEndpoint
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.security.connections import ConnectionLimiter
from ocpp_proxy.security.networks import NetworkPolicy, network_middleware
from ocpp_proxy.security.throttle import HOMES_SETTING, AuthThrottle
from ocpp_proxy.server.endpoints import backend_endpoint, charger_endpoint
from ocpp_proxy.server.keys import (
    CLOCK,
    CONFIG,
    EVENT_BUS,
    LIMITER,
    METRICS,
    REGISTRY,
    SOCKETS,
    STARTED_AT,
    THROTTLE,
    WEBHOOKS,
)
from ocpp_proxy.server.listeners import INGRESS_ADDRESS, LISTENERS, Listeners, ingress_guard
from ocpp_proxy.store import DATABASE_FILE, Store
from ocpp_proxy.store.backup import restore_snapshot
from ocpp_proxy.transport.upstream import UpstreamClient
from ocpp_proxy.web import install_web

_LOGGER = logging.getLogger(__name__)

#: How often idle hubs are looked for (s).
FREE_IDLE_EVERY_S = 300.0


def new_metrics() -> Metrics:
    """The proxy's metrics, declared with their help texts."""
    metrics = Metrics()
    for name, kind, help_text in (
        ("ocpp_proxy_frames_total", "counter", "OCPP-J frames in and out, by peer kind"),
        ("ocpp_proxy_refusals_total", "counter", "commands refused, by the rule that refused"),
        ("ocpp_proxy_charger_answers_total", "counter", "charger CALLs answered, by whom"),
        ("ocpp_proxy_charger_answer_seconds_total", "counter", "time charger CALLs waited (s)"),
        ("ocpp_proxy_charger_connected", "gauge", "1 while the charger is connected"),
        ("ocpp_proxy_commands_queued", "gauge", "commands waiting for the charger"),
        ("ocpp_proxy_backend_connected", "gauge", "1 while the backend link is up"),
        ("ocpp_proxy_backend_queue_depth", "gauge", "charger messages waiting for a backend"),
        ("ocpp_proxy_backend_dropped_total", "counter", "queued messages dropped (queue full)"),
        ("ocpp_proxy_limit_hits_total", "counter", "requests or frames refused by a limit"),
        ("ocpp_proxy_auth_failures_total", "counter", "failed authentications, by peer kind"),
        ("ocpp_proxy_schema_violations_total", "counter", "frames breaking the OCPP schema"),
        ("ocpp_proxy_store_ok", "gauge", "1 while the store's writes succeed"),
        ("ocpp_proxy_store_failures_total", "counter", "store reads and writes that failed"),
        (
            "ocpp_proxy_messages_at_risk_total",
            "counter",
            "transaction messages answered while neither kept nor confirmed by every backend",
        ),
        (
            "ocpp_proxy_records_dropped_total",
            "counter",
            "session and charger records not written because the store was too slow",
        ),
        (
            "ocpp_proxy_deliveries_given_up_total",
            "counter",
            "transaction messages given up after the most attempts, by backend",
        ),
        ("ocpp_proxy_webhook_attempts_total", "counter", "webhook deliveries tried, by result"),
        ("ocpp_proxy_webhook_dropped_total", "counter", "webhook deliveries dropped: queue full"),
        ("ocpp_proxy_events_dropped_total", "gauge", "events a full subscriber queue lost"),
        ("ocpp_proxy_message_log_frames_total", "counter", "frames handed to the message log"),
        (
            "ocpp_proxy_message_log_frames_buffered",
            "gauge",
            "frames waiting in memory to be written to the message log",
        ),
        (
            "ocpp_proxy_message_log_frames_dropped_total",
            "counter",
            "frames the message log lost: its buffer over its bound, or a failed write",
        ),
    ):
        metrics.describe(name, kind, help_text)
    return metrics


def create_app(
    config: ProxyConfig,
    *,
    clock: Clock = SYSTEM_CLOCK,
    ingress_peers: frozenset[str] = frozenset({INGRESS_ADDRESS}),
) -> web.Application:
    """Build the proxy's application for ``config``.

    Serve it with a runner and :func:`ocpp_proxy.server.listeners.start_listeners`.
    ``clock`` drives the relay's deadlines, backoff and retention, the upstream links' waits
    between connection attempts, webhook retries and the grace period before ``backend.down``
    (tests pass a :class:`~ocpp_proxy.clock.ManualClock`); ``ingress_peers`` are the addresses
    trusted on the ingress port (the Supervisor's).
    """
    app = web.Application(middlewares=[ingress_guard])
    app[LISTENERS] = Listeners(ingress_peers=ingress_peers)
    app[CONFIG] = config
    app[CLOCK] = clock
    app[EVENT_BUS] = bus = EventBus()
    app[SOCKETS] = set()
    app[STARTED_AT] = time.time()
    app[METRICS] = new_metrics()
    app[LIMITER] = ConnectionLimiter(
        config.max_connections, config.max_connections_per_address, app[METRICS]
    )
    app[THROTTLE] = AuthThrottle()
    app[METRICS].gauge_source(lambda: [("ocpp_proxy_events_dropped_total", (), bus.dropped)])
    # First of all: clients outside allowed_networks get 403 before any handler or upgrade.
    # As the Home Assistant app, the ingress proxy is always let in.
    policy = NetworkPolicy.from_config(
        config, always=(INGRESS_ADDRESS,) if os.environ.get("SUPERVISOR_TOKEN") else ()
    )
    metrics = app[METRICS]
    app.middlewares.insert(
        0,
        network_middleware(
            policy, lambda: metrics.inc("ocpp_proxy_limit_hits_total", limit="allowed_networks")
        ),
    )
    app.cleanup_ctx.append(_relay)
    # After the relay: both feed and follow its registry.
    app.cleanup_ctx.extend((home_assistant_ctx, mqtt_ctx))
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/charger", charger_endpoint)
    app.router.add_get("/charger/{charge_point_id}", charger_endpoint)
    app.router.add_get("/backend", backend_endpoint)
    install_web(app)  # the REST API, its short aliases (/status, /override, ...) and the page
    return app


async def _relay(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    data_dir = Path(config.data_dir)
    await asyncio.to_thread(data_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
    # A data folder restored from a Home Assistant backup holds the snapshot, not the database.
    await asyncio.to_thread(restore_snapshot, data_dir)
    # mkdir's mode does not apply to a folder that exists already (or passes through umask).
    try:
        await asyncio.to_thread(data_dir.chmod, 0o700)
    except OSError as err:  # not ours to change (a mounted volume): say so, carry on
        _LOGGER.warning("cannot make %s private (0700): %s", data_dir, err.strerror or err)
    store = await Store.open(
        data_dir / DATABASE_FILE,
        message_log_days=config.message_log_days,
        message_log_max_rows=config.message_log_max_rows,
        message_log_max_bytes=int(config.message_log_max_mb * 2**20),
        audit_log_days=config.audit_log_days,
    )
    # For the webhooks (the upstream links dial with picows: transport/upstream.py).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def upstream(
        link: LinkEndpoint, service: ServiceConfig, charge_point_id: str
    ) -> UpstreamClient:
        return UpstreamClient(
            link,
            service,
            charge_point_id,
            ping_interval=config.ping_interval,
            max_frame_bytes=config.max_frame_bytes,
            clock=app[CLOCK],
        )

    try:
        settings = await store.settings()
        app[THROTTLE].load_homes(settings.get(HOMES_SETTING) or {})
        home = HomeState(
            override_api=bool(settings.get("override", False)),
            max_current_a=settings.get("max_current_a", config.max_current_a),
            shared_charging=settings.get("shared_charging"),
        )
        registry = HubRegistry(
            config,
            store,
            home=home,
            metrics=app[METRICS],
            arbiter=PublishingArbiter(HomeownerArbiter(config, home), app[EVENT_BUS]),
            upstream_factory=upstream,
            clock=app[CLOCK],
        )
        await registry.restore()
        app[REGISTRY] = registry
        sweeper = asyncio.create_task(_free_idle_hubs(registry), name="ocpp-proxy idle hubs")
        # Events for other systems: taken off the relay's change feed, delivered elsewhere.
        watcher = RelayWatcher(registry, app[EVENT_BUS], config, app[CLOCK])
        webhooks = WebhookDispatcher(
            store.webhooks, app[EVENT_BUS], session, app[CLOCK], app[METRICS]
        )
        await webhooks.start(config.webhooks)
        app[WEBHOOKS] = webhooks
        watcher.start()
        try:
            yield
        finally:
            sweeper.cancel()
            await watcher.close()
            await webhooks.close()
        await registry.close()
    finally:
        await session.close()
        await store.close()


async def _free_idle_hubs(registry: HubRegistry) -> None:
    """Every :data:`FREE_IDLE_EVERY_S`, free the hubs idle long enough (issue 16)."""
    while True:
        await asyncio.sleep(FREE_IDLE_EVERY_S)
        try:
            await registry.free_idle()
        except Exception:
            _LOGGER.exception("freeing idle charge points failed")


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"proxy shutting down")
