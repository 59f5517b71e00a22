"""The Home Assistant parts of the proxy's aiohttp application (``cleanup_ctx`` entries)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ocpp_proxy.homeassistant.client import HomeAssistantReader, endpoint
from ocpp_proxy.server.keys import CLOCK, CONFIG, REGISTRY

_LOGGER = logging.getLogger(__name__)


async def home_assistant_ctx(app: web.Application) -> AsyncIterator[None]:
    """Follow the presence and override entities while the app runs, when configured.

    Needs a connection (``SUPERVISOR_TOKEN`` inside the app, else ``ha_url``) and at least one
    entity; without the connection the configured entities stay unknown (fail closed).
    """
    config, registry = app[CONFIG], app[REGISTRY]
    entities = [e for e in (config.presence_sensor, config.override_input_boolean) if e]
    where = endpoint(config)
    if not entities:
        yield
        return
    if where is None:
        _LOGGER.warning(
            "%s configured but no Home Assistant connection (ha_url or the app's "
            "SUPERVISOR_TOKEN): backends may only read the charger",
            ", ".join(entities),
        )
        yield
        return
    async with aiohttp.ClientSession() as session:
        reader = HomeAssistantReader(
            where,
            registry.home,
            presence_entity=config.presence_sensor,
            override_entity=config.override_input_boolean,
            session=session,
            on_change=registry.changes.notify,
            clock=app[CLOCK],
        )
        task = asyncio.create_task(reader.run(), name="home-assistant")
        try:
            yield
        finally:
            await _stop(task)


async def mqtt_ctx(app: web.Application) -> AsyncIterator[None]:
    """Publish the chargers and the proxy to Home Assistant through MQTT, when a broker is set."""
    config = app[CONFIG]
    if not config.mqtt_host:
        _LOGGER.info("MQTT: no broker configured; no entities in Home Assistant")
        yield
        return
    from ocpp_proxy.homeassistant.mqtt import MqttBridge

    bridge = MqttBridge(config, app[REGISTRY], clock=app[CLOCK])
    task = asyncio.create_task(bridge.run(), name="mqtt")
    try:
        yield
    finally:
        await _stop(task)


async def _stop(task: asyncio.Task[None], timeout_s: float = 5.0) -> None:
    """Cancel a background task and wait for it, but never hold up the shutdown for long."""
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    if not done:
        _LOGGER.warning("%s did not stop within %.0f s; left behind", task.get_name(), timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        _LOGGER.error("%s failed", task.get_name(), exc_info=task.exception())
