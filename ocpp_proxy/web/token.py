"""``/api/v1/token``: the REST API's token, shown and regenerated through ingress only.

Home Assistant has authenticated whoever opens the page from its sidebar, so that page may show
the homeowner the token to copy into another client, and make a new one. On the direct port
the token is never shown (who knows it needs no reminder; who does not must not learn it).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from ocpp_proxy.server.keys import CONFIG
from ocpp_proxy.web.auth import is_ingress, write_new_token
from ocpp_proxy.web.errors import ApiError
from ocpp_proxy.web.keys import API_TOKEN, ApiToken

_LOGGER = logging.getLogger(__name__)


def _ingress_only(request: web.Request) -> None:
    if not is_ingress(request):
        raise ApiError(
            403, "the token is shown only on the page opened from Home Assistant's sidebar"
        )


def _described(token: ApiToken) -> dict[str, Any]:
    return {
        "token": token.value,
        "source": "api_token option" if token.configured else "generated",
        "file": str(token.path) if token.path is not None else None,
    }


async def get_token(request: web.Request) -> web.Response:
    """``GET /api/v1/token`` (ingress only, else 403): ``{token, source, file}``."""
    _ingress_only(request)
    return web.json_response(_described(request.app[API_TOKEN]))


async def regenerate_token(request: web.Request) -> web.Response:
    """``POST /api/v1/token`` (ingress only, else 403): a new generated token, at once in force.

    409 when the token is the ``api_token`` option: it is changed in the options then.
    """
    _ingress_only(request)
    token = request.app[API_TOKEN]
    if token.configured:
        raise ApiError(409, "the token is set by the api_token option: change it there")
    data_dir = Path(request.app[CONFIG].data_dir)
    token.value = await asyncio.to_thread(write_new_token, data_dir)
    _LOGGER.warning("REST API token regenerated from the ingress page; the old one is void")
    return web.json_response(_described(token))
