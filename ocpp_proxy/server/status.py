"""``/status`` and ``/health`` (the page at ``/`` is ``ocpp_proxy.web``)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from ocpp_proxy import __version__
from ocpp_proxy.clock import iso_utc
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.authorization import ShareSessions, mask_card
from ocpp_proxy.server.keys import CONFIG, REGISTRY, STARTED_AT


async def status(request: web.Request) -> web.Response:
    """``GET /status``: chargers, their connectors and backends, and which backend is primary."""
    config = request.app[CONFIG]
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "version": __version__,
            "started_at": iso_utc(request.app[STARTED_AT]),
            "mode": "relay" if config.backend_ids else "local",
            "preferred_provider": config.preferred_provider or None,
            "rules": rules_in_force(request.app),
            "security": security_in_force(config),
            "store": registry.health.snapshot(),
            "message_log": {"enabled": config.message_log, **registry.store.message_log_counts()},
            "chargers": [hub.snapshot() for hub in registry],
            # A charger's connection taken over by another (issue 16): who, from where, when.
            "replacements": list(registry.replacements),
        }
    )


def rules_in_force(app: web.Application) -> dict[str, Any]:
    """The homeowner's rules as the arbiter applies them now (see ``ocpp_proxy.policy.rules``)."""
    config, home = app[CONFIG], app[REGISTRY].home
    return {
        "allow_shared_charging": home.shared_charging_allowed(config.allow_shared_charging),
        "override": home.override_state(config.override_input_boolean, config.presence_sensor),
        "presence": {
            "sensor": config.presence_sensor or None,
            "someone_home": home.someone_home,
            "blocks_backends": config.presence_blocks_backends,
        },
        "home_assistant_connected": home.ha_connected,
        "allowed_providers": list(config.allowed_providers),
        "disallowed_providers": list(config.disallowed_providers),
        "config_changes_granted": [
            b.id
            for b in (*config.ocpp_services, *config.inbound_backends)
            if b.allow_config_changes
        ],
        "rate_limit_seconds": config.rate_limit_seconds,
        "max_current_a": home.max_current_a,
        "charging_schedule": [dataclasses.asdict(p) for p in config.charging_schedule],
        "authorization": authorization_in_force(app),
    }


def authorization_in_force(app: web.Application) -> dict[str, Any]:
    """How cards are authorized (``ocpp_proxy.policy.authorization``); card ids masked."""
    config = app[CONFIG]
    return {
        "mode": str(config.authorization),
        "offline": str(config.offline_authorization),
        "known_card_days": config.known_card_days,
        "routes": [
            {
                "match": r.match if r.match.endswith("*") else mask_card(r.match),
                "backend": r.backend,
            }
            for r in config.id_tag_routes
        ],
        "private_backends": [
            b.id
            for b in (*config.ocpp_services, *config.inbound_backends)
            if b.share_sessions is ShareSessions.OWN
        ],
        "home_cards": len(app[REGISTRY].cards.home_cards()),
    }


def security_in_force(config: ProxyConfig) -> dict[str, Any]:
    """How chargers are let in (``ocpp_proxy.security``), never with a secret.

    ``charger_auth``: ``"basic"`` when ``chargers`` lists who may connect (security profiles
    1 and 2), ``"open"`` when any id may; ``tls``: the charger side serves ``wss://``;
    ``client_certificates``: chargers must present a certificate (profile 3).
    """
    return {
        "charger_auth": "basic" if config.chargers else "open",
        "tls": bool(config.ssl_certfile),
        "client_certificates": bool(config.ssl_certfile and config.ssl_client_ca),
    }


async def health(request: web.Request) -> web.Response:
    """``GET /health``: liveness, for watchdogs."""
    return web.json_response(
        {"status": "ok", "uptime_s": round(time.time() - request.app[STARTED_AT], 1)}
    )
