"""Reading OCPP-J text frames from the aiohttp WebSockets that chargers and backends open.

The proxy's own client to upstream CSMSs reads its frames itself, on picows
(:mod:`ocpp_proxy.transport.upstream`), with the same rules.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

_LOGGER = logging.getLogger(__name__)


async def pump_frames(
    ws: web.WebSocketResponse, on_text: Callable[[str], Awaitable[None]], peer: str
) -> None:
    """Feed every text frame of ``ws`` to ``on_text`` until the socket closes.

    OCPP-J uses text frames (OCPP-J 1.6 §3.2); a binary frame is decoded as UTF-8 for chargers
    that send them anyway. An exception while handling one frame is logged and the link stays
    up: one bad frame must never drop a charger or a backend.
    """
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            text = message.data
        elif message.type is WSMsgType.BINARY:
            try:
                text = message.data.decode("utf-8")
            except UnicodeDecodeError:
                _LOGGER.warning("%s sent a binary frame that is not UTF-8; dropped", peer)
                continue
        else:
            if message.type is WSMsgType.ERROR:
                _LOGGER.info("%s: WebSocket error: %s", peer, ws.exception())
            continue
        try:
            await on_text(text)
        except Exception:
            _LOGGER.exception("%s: error while relaying a frame: %.200s", peer, text)
