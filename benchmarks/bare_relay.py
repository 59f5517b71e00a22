"""The floor for the relay benchmark: a bare WebSocket relay on the proxy's own stack.

It does what no OCPP relay can do less of: for each charger that connects at
``/charger/<id>`` it dials ``<upstream>/<id>`` and copies text frames both ways, unparsed.
Same stack as ocpp-proxy (aiohttp server, aiohttp client, uvloop where installed), so the
difference between the two is the cost of the proxy's own work (framing, routing, store, log).

Run as a subprocess by ``relay.py`` (``running_floor`` in ``_peers.py``)::

    python benchmarks/bare_relay.py --port 9100 --upstream ws://127.0.0.1:9200

It serves ``/health`` like the proxy, so the benchmark waits on it the same way. Not a product:
no authentication, no pings, no limits, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import aiohttp
from aiohttp import web

SUBPROTOCOLS = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")


async def _pump(source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse, sink) -> None:
    """Copy text frames from ``source`` to ``sink`` until either side closes."""
    async for message in source:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        await sink.send_str(message.data)


async def _charger(request: web.Request) -> web.WebSocketResponse:
    upstream_url = f"{request.app['upstream']}/{request.match_info['cp']}"
    charger = web.WebSocketResponse(protocols=SUBPROTOCOLS, autoping=True, compress=False)
    await charger.prepare(request)
    session: aiohttp.ClientSession = request.app["session"]
    protocols = (charger.ws_protocol,) if charger.ws_protocol else ()
    async with session.ws_connect(
        upstream_url, protocols=protocols, compress=0, autoping=True
    ) as csms:
        to_csms = asyncio.ensure_future(_pump(charger, csms))
        to_charger = asyncio.ensure_future(_pump(csms, charger))
        await asyncio.wait((to_csms, to_charger), return_when=asyncio.FIRST_COMPLETED)
        for task in (to_csms, to_charger):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    await charger.close()
    return charger


async def _health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _session(app: web.Application):
    app["session"] = aiohttp.ClientSession()
    yield
    await app["session"].close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="ws://host:port of the CSMS")
    args = parser.parse_args(argv)
    app = web.Application()
    app["upstream"] = args.upstream.rstrip("/")
    app.router.add_get("/health", _health)
    app.router.add_get("/charger/{cp}", _charger)
    app.cleanup_ctx.append(_session)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=None,
        handle_signals=True,
        loop=loop_factory() if loop_factory else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
