"""Errors of the REST API as JSON, and the middleware that renders them and counts requests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ocpp_proxy.server.keys import METRICS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A refusal the API answers with ``status`` and ``{"error": message, **details}``."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def response(self) -> web.Response:
        """The JSON response of this error."""
        return web.Response(
            status=self.status,
            text=json.dumps({"error": self.message, **self.details}),
            content_type="application/json",
        )


def bad_request(field: str, message: str) -> ApiError:
    """Invalid input: 400 with the field at fault."""
    return ApiError(400, message, field=field)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render :class:`ApiError` as JSON, and count HTTP requests by route and status."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as error:
        status = error.status
        return error.response()
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else "unmatched"
        request.app[METRICS].inc(
            "ocpp_proxy_http_requests_total", method=request.method, route=path, status=str(status)
        )
