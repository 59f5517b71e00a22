"""Typed keys of the objects the aiohttp application shares."""

from __future__ import annotations

from aiohttp import web

from ocpp_proxy.clock import Clock
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.event_bus import EventBus
from ocpp_proxy.metrics import Metrics
from ocpp_proxy.notify.webhooks import WebhookDispatcher
from ocpp_proxy.relay.registry import HubRegistry
from ocpp_proxy.security.connections import ConnectionLimiter
from ocpp_proxy.security.throttle import AuthThrottle

CONFIG = web.AppKey("config", ProxyConfig)
REGISTRY = web.AppKey("registry", HubRegistry)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
STARTED_AT = web.AppKey("started_at", float)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", ConnectionLimiter)
THROTTLE = web.AppKey("throttle", AuthThrottle)
#: The clock of the relay, the clients' reconnect waits and webhook retries.
CLOCK = web.AppKey("clock", Clock)  # type: ignore[type-abstract]
EVENT_BUS = web.AppKey("event_bus", EventBus)
WEBHOOKS = web.AppKey("webhooks", WebhookDispatcher)
