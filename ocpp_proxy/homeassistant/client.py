"""Reads the presence and override entities from Home Assistant's WebSocket API.

Inside Home Assistant the app talks to ``ws://supervisor/core/websocket`` with the
``SUPERVISOR_TOKEN`` the Supervisor gives it; outside, to ``<ha_url>/api/websocket`` with a
long-lived ``ha_token``. The protocol (developers.home-assistant.io, "WebSocket API"):
``auth_required`` -> ``auth`` -> ``auth_ok`` / ``auth_invalid``; then commands with increasing
ids: ``subscribe_events`` for ``state_changed`` and ``get_states`` for the current states.

``HomeState.ha_connected`` is true only while authenticated and subscribed. Whenever the
connection is lost, the entities' states become unknown, so the arbiter fails closed until
Home Assistant answers again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ocpp_proxy.backoff import Backoff
from ocpp_proxy.clock import SYSTEM_CLOCK, Clock
from ocpp_proxy.config import ProxyConfig
from ocpp_proxy.policy.home import HomeState

_LOGGER = logging.getLogger(__name__)

SUPERVISOR_WEBSOCKET = "ws://supervisor/core/websocket"
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class AuthenticationError(Exception):
    """Home Assistant refused the token (``auth_invalid``)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where Home Assistant's WebSocket API is, and the token to present."""

    url: str
    token: str


def endpoint(config: ProxyConfig, environ: Mapping[str, str] | None = None) -> Endpoint | None:
    """The WebSocket API to use: the Supervisor's inside the app, else ``ha_url``; None: none.

    ``ha_url`` is the address of Home Assistant's web page (``http://host:8123``); the
    WebSocket API is ``ws://host:8123/api/websocket`` (``wss://`` for ``https://``).
    """
    environ = os.environ if environ is None else environ
    supervisor_token = environ.get("SUPERVISOR_TOKEN")
    if supervisor_token:
        return Endpoint(SUPERVISOR_WEBSOCKET, supervisor_token)
    if not config.ha_url:
        return None
    parts = urlsplit(config.ha_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    path = parts.path.rstrip("/")
    if not path.endswith("/api/websocket"):
        path += "/api/websocket"
    return Endpoint(urlunsplit((scheme, parts.netloc, path, "", "")), config.ha_token)


class HomeAssistantReader:
    """Keeps :class:`HomeState` in step with the presence and override entities.

    Args:
        endpoint: the WebSocket API and token.
        home: the homeowner's inputs to feed.
        presence_entity: the presence sensor's entity id ("" = none).
        override_entity: the override ``input_boolean`` ("" = none).
        session: the HTTP client session to connect with.
        on_change: called after every change of ``home`` (e.g. to wake ``/status`` waiters).
        min_backoff_s: first wait before reconnecting; doubled up to ``max_backoff_s``
            (with jitter, see :mod:`ocpp_proxy.backoff`).
        clock: the clock the waits are slept on.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        home: HomeState,
        *,
        presence_entity: str,
        override_entity: str,
        session: aiohttp.ClientSession,
        on_change: Callable[[], None] | None = None,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.endpoint = endpoint
        self.home = home
        self.entities = {
            entity: setter
            for entity, setter in (
                (presence_entity, home.set_presence_state),
                (override_entity, home.set_override_state),
            )
            if entity
        }
        self._session = session
        self._on_change = on_change
        self._backoff = Backoff(min_backoff_s, max_s=max_backoff_s, clock=clock)
        self._was_up = False

    async def run(self) -> None:
        """Connect, follow the entities, and reconnect with exponential backoff; until cancelled."""
        while True:
            try:
                await self._follow()
                reason = "connection closed"
            except AuthenticationError:
                reason = "the token was refused (auth_invalid)"
                # Repeated failed logins can get this address banned (HA's ip_ban): go slow.
                self._backoff.hold_at_max()
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from err  # shutting down, not a failure
                reason = f"{type(err).__name__}: {err}"
            if self._was_up:
                self._backoff.reset()  # it worked until now: retry soon
            wait = self._backoff.next_delay()
            self._disconnected(reason, wait)
            await self._backoff.wait(wait)

    async def _follow(self) -> None:
        self._was_up = False
        # get_states answers with every entity of the house in one message: allow a big one.
        async with self._session.ws_connect(
            self.endpoint.url, heartbeat=30, max_msg_size=_MAX_MESSAGE_BYTES
        ) as ws:
            first = await ws.receive_json(timeout=10)
            if first.get("type") != "auth_required":
                raise ValueError(f"expected auth_required, got {first.get('type')!r}")
            await ws.send_json({"type": "auth", "access_token": self.endpoint.token})
            answer = await ws.receive_json(timeout=10)
            if answer.get("type") == "auth_invalid":
                raise AuthenticationError(answer.get("message", ""))
            if answer.get("type") != "auth_ok":
                raise ValueError(f"expected auth_ok, got {answer.get('type')!r}")
            await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
            await ws.send_json({"id": 2, "type": "get_states"})
            pending = {1, 2}
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = message.json()
                for item in data if isinstance(data, list) else [data]:
                    self._on_message(item, pending)

    def _on_message(self, message: dict[str, Any], pending: set[int]) -> None:
        kind = message.get("type")
        if kind == "result":
            if not message.get("success"):
                raise ValueError(f"command {message.get('id')} failed: {message.get('error')}")
            if message.get("id") == 2:
                states = {s.get("entity_id"): s for s in message.get("result") or ()}
                for entity, setter in self.entities.items():
                    state = states.get(entity)
                    if state is None:
                        _LOGGER.warning("Home Assistant has no entity %s", entity)
                    setter(state.get("state") if state else None)
            pending.discard(message.get("id", 0))
            if not pending and not self.home.ha_connected:
                self.home.ha_connected = True
                self._was_up = True
                _LOGGER.info("Home Assistant connected; following %s", ", ".join(self.entities))
                self._changed()
        elif kind == "event" and message.get("id") == 1:
            data = (message.get("event") or {}).get("data") or {}
            setter = self.entities.get(data.get("entity_id"))
            if setter is not None:
                new_state = data.get("new_state")
                setter(new_state.get("state") if new_state else None)
                self._changed()

    def _disconnected(self, reason: str, retry_in: float) -> None:
        was_connected = self.home.ha_connected
        self.home.ha_connected = False
        # Unknown while away: the arbiter fails closed rather than trust a stale state.
        for setter in self.entities.values():
            setter(None)
        log = _LOGGER.warning if was_connected else _LOGGER.info
        log("Home Assistant not connected (%s); retrying in %.0f s", reason, retry_in)
        self._changed()

    def _changed(self) -> None:
        self.home.changed()
        if self._on_change is not None:
            self._on_change()
