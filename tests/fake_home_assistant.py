"""A stand-in for Home Assistant's WebSocket API, as documented on developers.home-assistant.io.

``auth_required`` -> ``{"type": "auth", "access_token"}`` -> ``auth_ok`` / ``auth_invalid``;
then commands with increasing ids: ``get_states`` -> a ``result`` with the state objects,
``subscribe_events`` (``state_changed``) -> a ``result``, then ``event`` messages under the
subscription's id. Only what the proxy uses is implemented.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType, web


class FakeHomeAssistant:
    """Serves ``/api/websocket`` on a loopback port; states are set by the test."""

    def __init__(self, token: str = "good-token") -> None:
        self.token = token
        self.states: dict[str, str] = {}
        self.available = True
        self.auth_attempts = 0
        self._subscriptions: dict[web.WebSocketResponse, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The address of the fake's "web page", as a user would write ``ha_url``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeHomeAssistant:
        app = web.Application()
        app.router.add_get("/api/websocket", self._websocket)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def set_state(self, entity_id: str, state: str | None) -> None:
        """Change (None: remove) an entity's state and tell the subscribers."""
        old = self._state_object(entity_id)
        if state is None:
            self.states.pop(entity_id, None)
        else:
            self.states[entity_id] = state
        new = self._state_object(entity_id)
        for ws, subscription in list(self._subscriptions.items()):
            event = {
                "event_type": "state_changed",
                "data": {"entity_id": entity_id, "old_state": old, "new_state": new},
                "origin": "LOCAL",
                "time_fired": "2026-11-22T01:00:00+00:00",
            }
            await ws.send_json({"id": subscription, "type": "event", "event": event})

    async def go_away(self) -> None:
        """Home Assistant stops: open connections close, new ones are refused."""
        self.available = False
        for ws in list(self._subscriptions):
            await ws.close()

    def come_back(self) -> None:
        """Home Assistant is up again."""
        self.available = True

    def _state_object(self, entity_id: str) -> dict[str, Any] | None:
        state = self.states.get(entity_id)
        if state is None:
            return None
        return {
            "entity_id": entity_id,
            "state": state,
            "attributes": {},
            "last_changed": "2026-11-22T01:00:00+00:00",
            "last_updated": "2026-11-22T01:00:00+00:00",
            "context": {"id": "01", "parent_id": None, "user_id": None},
        }

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.available:
            raise web.HTTPBadGateway()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "auth_required", "ha_version": "2026.11.0"})
        auth = await ws.receive_json(timeout=5)
        self.auth_attempts += 1
        if auth.get("type") != "auth" or auth.get("access_token") != self.token:
            await ws.send_json({"type": "auth_invalid", "message": "Invalid access token"})
            await ws.close()
            return ws
        await ws.send_json({"type": "auth_ok", "ha_version": "2026.11.0"})
        last_id = 0
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                command = message.json()
                ident = command.get("id")
                if not isinstance(ident, int) or ident <= last_id:
                    await ws.send_json(_error(ident, "id_reuse", "Identifier values must increase"))
                    continue
                last_id = ident
                if command.get("type") == "get_states":
                    states = [self._state_object(e) for e in self.states]
                    await ws.send_json(
                        {"id": ident, "type": "result", "success": True, "result": states}
                    )
                elif command.get("type") == "subscribe_events":
                    if command.get("event_type") == "state_changed":
                        self._subscriptions[ws] = ident
                    await ws.send_json(
                        {"id": ident, "type": "result", "success": True, "result": None}
                    )
                else:
                    await ws.send_json(_error(ident, "unknown_command", "Unknown command."))
        finally:
            self._subscriptions.pop(ws, None)
        return ws


def _error(ident: Any, code: str, message: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "result",
        "success": False,
        "error": {"code": code, "message": message},
    }
